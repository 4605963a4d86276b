"""Environment markers, evaluated for the environment a model will run in, never the auditor's.

An audit describes where the model will run, not the machine that runs the audit. So by
default no marker is evaluated: every dependency is audited, whatever its marker, in every
input format (the marker is kept as evidence). Only when the user names a :class:`Target`
(``--python-version``, ``--platform``, or ``[audit] python_version``/``platform`` in the
policy) are markers evaluated, and a dependency whose marker is false for it is left out and
listed as excluded, with the marker, in every report format.

A target names only some of the marker variables (a Python version, an operating system), so
markers are evaluated with three values: true, false, or *open* when the answer depends on a
variable the target leaves unnamed (``platform_machine``, ``implementation_name``...). An open
marker keeps its dependency: only a marker that is false whatever the unnamed variables are
excludes one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from msgspec import Struct

from modelshield.core.errors import ConfigError
from modelshield.core.policy import PLATFORMS, PYTHON_VERSION, AuditSettings

if TYPE_CHECKING:
    from packaging.markers import Marker

_PLATFORMS: Mapping[str, tuple[str, str, str]] = {
    # name -> (sys_platform, platform_system, os_name)
    "linux": ("linux", "Linux", "posix"),
    "macos": ("darwin", "Darwin", "posix"),
    "windows": ("win32", "Windows", "nt"),
}


class Target(Struct, frozen=True):
    """The environment the dependencies are audited for (None fields are left open)."""

    python_version: str | None = None
    """``3.11`` (``python_version``) or ``3.11.4`` (``python_full_version`` as well)."""
    platform: str | None = None
    """``linux``, ``macos`` or ``windows``: sets ``sys_platform``, ``platform_system`` and
    ``os_name``."""

    def __post_init__(self) -> None:
        """Reject versions and platforms that are not understood (never guess)."""
        if self.python_version is not None and not PYTHON_VERSION.match(self.python_version):
            raise ConfigError(
                f"python version {self.python_version!r} is not of the form 3.11 or 3.11.4"
            )
        if self.platform is not None and self.platform.lower() not in _PLATFORMS:
            raise ConfigError(f"platform {self.platform!r} is not one of: {', '.join(PLATFORMS)}")

    @property
    def is_open(self) -> bool:
        """Whether nothing is named (then no marker is evaluated)."""
        return self.python_version is None and self.platform is None

    @classmethod
    def named(
        cls, settings: AuditSettings, python_version: str | None, platform: str | None
    ) -> Target | None:
        """The target the command line names, else the policy's, else None (no target)."""
        target = cls(
            python_version if python_version is not None else settings.python_version,
            platform if platform is not None else settings.platform,
        )
        return None if target.is_open else target

    def environment(self) -> dict[str, str]:
        """The marker variables the target names."""
        env: dict[str, str] = {}
        if self.python_version is not None:
            m = PYTHON_VERSION.match(self.python_version)
            if m is not None:
                env["python_version"] = f"{m[1]}.{m[2]}"
                if m[3] is not None:
                    env["python_full_version"] = self.python_version
        if self.platform is not None:
            sys_platform, system, os_name = _PLATFORMS[self.platform.lower()]
            env.update(sys_platform=sys_platform, platform_system=system, os_name=os_name)
        return env

    def describe(self) -> str:
        """``python 3.11, linux``, for messages."""
        parts = []
        if self.python_version is not None:
            parts.append(f"python {self.python_version}")
        if self.platform is not None:
            parts.append(self.platform.lower())
        return ", ".join(parts) or "no target"


class MarkerEvaluator:
    """Three-valued evaluation of markers for one target (results cached per marker text)."""

    def __init__(self, target: Target) -> None:
        """Evaluate for ``target``; variables it does not name are open."""
        self.target = target
        self.env = target.environment()
        self._atoms: dict[tuple[str, str], bool | None] = {}

    def evaluate(self, marker: Marker | str, extras: Iterable[str] | None = None) -> bool | None:
        """True or False when the target decides the marker, None when it is open.

        ``extras``: the extras the dependency is requested under (pyproject's optional
        groups), or None when unknown (an ``extra == ...`` clause is then open). A marker that
        cannot be parsed is open (the dependency is kept).
        """
        from packaging.markers import InvalidMarker
        from packaging.markers import Marker as MarkerClass

        try:
            parsed = marker if isinstance(marker, MarkerClass) else MarkerClass(marker)
        except InvalidMarker:
            return None
        env = dict(self.env)
        if extras is not None:
            env["extra"] = ",".join(sorted(extras))
        return self._evaluate(parsed._markers, env)

    def _evaluate(self, markers: list[Any], env: Mapping[str, str]) -> bool | None:
        groups: list[list[bool | None]] = [[]]
        for item in markers:
            if isinstance(item, list):
                groups[-1].append(self._evaluate(item, env))
            elif isinstance(item, tuple):
                groups[-1].append(self._atom(item, env))
            elif item == "or":
                groups.append([])
        return _any(_all(group) for group in groups)

    def _atom(self, atom: tuple[Any, Any, Any], env: Mapping[str, str]) -> bool | None:
        from packaging._parser import Variable
        from packaging.markers import Marker, UndefinedComparison, UndefinedEnvironmentName

        lhs, op, rhs = atom
        variable = lhs.value if isinstance(lhs, Variable) else rhs.value
        if variable not in env:
            return None
        text = f"{lhs.serialize()} {op.serialize()} {rhs.serialize()}"
        if variable == "extra":
            # As pip does: the requirement applies when the marker holds for any extra the
            # dependency is requested under.
            wanted = [e for e in env["extra"].split(",") if e] or [""]
            return any(Marker(text).evaluate({"extra": e}) for e in wanted)
        key = (text, env[variable])
        if key not in self._atoms:
            try:
                self._atoms[key] = Marker(text).evaluate({variable: env[variable]})
            except (UndefinedComparison, UndefinedEnvironmentName, ValueError, TypeError):
                self._atoms[key] = None
        return self._atoms[key]


def _all(values: Iterable[bool | None]) -> bool | None:
    seen_open = False
    for v in values:
        if v is False:
            return False
        if v is None:
            seen_open = True
    return None if seen_open else True


def _any(values: Iterable[bool | None]) -> bool | None:
    seen_open = False
    for v in values:
        if v is True:
            return True
        if v is None:
            seen_open = True
    return None if seen_open else False


def reachable(
    nodes: Iterable[str],
    roots: Iterable[str],
    edges: Iterable[tuple[str, str, bool | None]],
) -> dict[str, bool | None]:
    """Which nodes of a lock file's graph the target installs.

    ``edges`` are ``(parent, child, marker value)``. A root is installed; a node is installed
    when an installed parent requires it under a marker that is true (true), possibly when
    under an open marker or an open parent (None), and not at all (False) when every way to it
    from the roots passes a false marker. A node the roots cannot reach at all, whatever the
    markers (nothing requires it, or only a cycle of its own does), is kept (None): the lock
    file does not say what brings it in.
    """
    order = {False: 0, None: 1, True: 2}
    state: dict[str, bool | None] = dict.fromkeys(nodes, False)
    children: dict[str, list[tuple[str, bool | None]]] = {}
    for parent, child, value in edges:
        children.setdefault(parent, []).append((child, value))
    # What the roots reach along every edge, markers ignored.
    root_set = {n for n in roots if n in state}
    reached = set(root_set)
    stack = list(reached)
    while stack:
        for child, _ in children.get(stack.pop(), ()):
            if child in state and child not in reached:
                reached.add(child)
                stack.append(child)
    todo = []
    for node in state:
        if node not in reached:
            state[node] = None  # an entry point of its own
            todo.append(node)
        elif node in root_set:
            state[node] = True
            todo.append(node)
    while todo:
        parent = todo.pop()
        for child, value in children.get(parent, ()):
            if child not in state:
                continue
            through = min((state[parent], value), key=lambda v: order[v])
            if order[through] > order[state[child]]:
                state[child] = through
                todo.append(child)
    return state
