"""Which files the search of a directory finds: what a repository holds, less what is not
the project's.

Under a directory named as an input (never for a path named explicitly, which is always read):

* directories that hold no project content are left out: version control (``.git``, ``.hg``,
  ``.svn``), virtual environments (``.venv``, or any directory holding a ``pyvenv.cfg``),
  ``node_modules``, ``__pycache__`` and the caches of Python tools (:data:`SKIPPED_DIRS`);
* paths matching an ``exclude`` pattern (``.gitignore`` syntax, relative to the directory the
  pattern was given for: the policy file's, or the working directory for ``--exclude``);
* inside a git work tree, what its ``.gitignore`` files and ``.git/info/exclude`` ignore, as
  git reads them (nested files, negation, directory patterns; the user's global excludes file
  is not read, so that every machine finds the same files).

In a git work tree a file that git *tracks* is never left out by the first and the last rule:
a committed file is part of what ships, and a pickle force-added under an ignored name or into
``__pycache__`` must not slip past the scan. Git itself is asked which files it tracks (``git
ls-files``, run with the repository's filesystem monitor off, only when something would be
left out); when it cannot answer, ``.gitignore`` files are not applied at all.

Every path left out is recorded as an :class:`~modelshield.core.findings.Excluded`, so that
reports say what was not looked at.
"""

# Paths stay strings, made absolute without resolving links (os.path.abspath, not
# Path.resolve): they are compared with the policy's root once per file and finding.
# ruff: noqa: PTH100, PTH113, PTH118, PTH120

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from msgspec import Struct

from modelshield.core.findings import Excluded

if TYPE_CHECKING:
    from modelshield.core.policy import Policy

SKIPPED_DIRS: frozenset[str] = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
        ".hypothesis",
        ".modelshield",  # modelshield's own state: the governance database of `ci --record`
    }
)
"""Directory names left out of a search unless named explicitly (directories holding a
``pyvenv.cfg`` too: virtual environments under any name)."""

MAX_LISTED = 1_000
"""Excluded paths recorded one by one; the rest are counted."""

MAX_IGNORE_FILE_BYTES = 4 * 1024 * 1024
"""A larger ``.gitignore`` file is not applied (more is scanned, never less)."""

GIT_TIMEOUT_S = 60.0
"""How long ``git ls-files`` may take before ``.gitignore`` files are not applied."""


class Discovery(Struct, frozen=True):
    """How the search of a named directory chooses files."""

    exclude: tuple[tuple[str, str], ...] = ()
    """``(base directory, pattern)`` pairs: ``.gitignore``-syntax patterns relative to their
    base (absolute)."""
    gitignore: bool = True
    """Inside a git work tree, leave out what git ignores (never a tracked file)."""
    skip_dirs: frozenset[str] = SKIPPED_DIRS
    """Directory names left out (and directories holding ``pyvenv.cfg``)."""
    skip_hidden: bool = False
    """Also leave out every directory whose name starts with a dot (the dependency audit's
    search, which looks for dependency files where projects keep them)."""

    @classmethod
    def from_policy(
        cls,
        policy: Policy,
        extra_exclude: Sequence[str] = (),
        *,
        gitignore: bool | None = None,
        cwd: str | None = None,
    ) -> Discovery:
        """The policy's ``exclude`` (relative to its root) and ``gitignore``, plus patterns
        given on the command line (relative to ``cwd``, by default the working directory)."""
        root = policy.root or os.getcwd()  # noqa: PTH109 (a str)
        here = os.path.abspath(cwd) if cwd is not None else os.getcwd()  # noqa: PTH109
        pairs = [(root, p) for p in policy.exclude] + [(here, p) for p in extra_exclude]
        return cls(
            exclude=tuple(pairs),
            gitignore=policy.gitignore if gitignore is None else gitignore,
        )


class ExcludedLog:
    """The paths left out during a search: the first :data:`MAX_LISTED`, and a count."""

    def __init__(self) -> None:
        """An empty log."""
        self.listed: list[Excluded] = []
        self.total = 0

    def add(self, path: str, reason: str, pattern: str) -> None:
        """Record one path left out."""
        self.total += 1
        if len(self.listed) < MAX_LISTED:
            self.listed.append(Excluded(path, reason, pattern))


def walk(
    root: str,
    rules: Discovery | None = None,
    log: ExcludedLog | None = None,
    *,
    empty_is_a_problem: bool = True,
) -> Iterator[tuple[str, str | None]]:
    """Yield ``(path, problem)`` for every file found under the directory ``root``, sorted per
    directory, leaving out what ``rules`` say (recorded in ``log``).

    Directory links are not followed (no loops); links to files are yielded. A directory that
    cannot be listed yields a problem, and so does a ``root`` under which no file is found
    (unless ``empty_is_a_problem`` is false: the caller says it in its own words).
    """
    rules = rules or Discovery()
    log = log or ExcludedLog()
    before = log.total
    excludes = _Patterns.of(rules.exclude)
    git = _GitTree.find(root) if rules.gitignore else None
    if git is not None and git.ignored(os.path.abspath(root), True) is not None:
        git = None  # an ignored directory named explicitly: read what it holds
    # Directories left out by a rule but entered because git tracks files in them, with the
    # rule: below them only tracked files are read.
    tracked_only: dict[str, tuple[str, str]] = {}
    unreadable: list[OSError] = []
    found = 0
    for dirpath, dirs, files in os.walk(root, followlinks=False, onerror=unreadable.append):
        while unreadable:
            err = unreadable.pop(0)
            yield os.fspath(err.filename or dirpath), _unlistable(err)
        inherited = tracked_only.get(dirpath)
        kept: list[str] = []
        for name in sorted(dirs):
            full = os.path.join(dirpath, name)
            why = _dir_rule(full, name, rules, excludes)
            if why is not None and why[0] == "exclude":
                log.add(full, *why)
                continue
            if why is None:
                why = inherited or (None if git is None else _ignored_by_git(git, full, True))
            if why is not None:
                if git is not None and name != ".git" and git.holds_tracked(full):
                    tracked_only[full] = why  # what git tracks in it is still read
                else:
                    log.add(full, *why)
                    continue
            kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            full = os.path.join(dirpath, name)
            pattern = excludes.match(full, False)
            if pattern is not None:
                log.add(full, "exclude", pattern)
                continue
            why = inherited or (None if git is None else _ignored_by_git(git, full, False))
            if why is not None and git is not None and not git.tracked(full):
                log.add(full, *why)
                continue
            found += 1
            yield full, None
    for err in unreadable:
        yield os.fspath(err.filename or root), _unlistable(err)
    if not found and not unreadable and empty_is_a_problem:
        left = log.total - before
        more = f" ({left} path{'s' if left != 1 else ''} left out: see excluded)" if left else ""
        yield root, f"the directory holds no file to scan{more}"


def _ignored_by_git(git: _GitTree, path: str, is_dir: bool) -> tuple[str, str] | None:
    """``("gitignore", pattern)`` when git ignores ``path`` and says what it tracks (when it
    cannot, nothing is left out as ignored: a tracked file might be)."""
    pattern = git.ignored(os.path.abspath(path), is_dir)
    if pattern is None or not git.knows_tracked:
        return None
    return ("gitignore", pattern)


def _unlistable(error: OSError) -> str:
    return f"cannot list directory: {error.strerror or error}"


def _dir_rule(
    full: str, name: str, rules: Discovery, excludes: _Patterns
) -> tuple[str, str] | None:
    """Why a directory is left out by the default list or a pattern, or None."""
    pattern = excludes.match(full, True)
    if pattern is not None:
        return ("exclude", pattern)
    if name in rules.skip_dirs:
        return ("default", name)
    if rules.skip_hidden and name.startswith("."):
        return ("default", f"{name} (a hidden directory)")
    if rules.skip_dirs and os.path.isfile(os.path.join(full, "pyvenv.cfg")):
        return ("default", f"{name} (a virtual environment)")
    return None


def _gitignore_spec(lines: Iterable[str]) -> Any:
    import pathspec  # only when a pattern is to be matched: it costs start-up time

    return pathspec.GitIgnoreSpec.from_lines(lines)


class _Patterns:
    """``exclude`` patterns grouped by base directory."""

    def __init__(self, groups: list[tuple[str, Any]]) -> None:
        self.groups = groups

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]]) -> _Patterns:
        by_base: dict[str, list[str]] = {}
        for base, pattern in pairs:
            by_base.setdefault(os.path.abspath(base), []).append(pattern)
        return cls([(base, _gitignore_spec(p)) for base, p in by_base.items()])

    def match(self, path: str, is_dir: bool) -> str | None:
        """The pattern that leaves ``path`` out, or None."""
        if not self.groups:
            return None
        full = os.path.abspath(path)
        for base, spec in self.groups:
            rel = _relative(full, base)
            if rel is None:
                continue
            result = spec.check_file(rel + "/" if is_dir else rel)
            if result.include:
                return str(spec.patterns[result.index].pattern)
        return None


def _relative(path: str, base: str) -> str | None:
    """``path`` relative to ``base`` in POSIX form, or None when it is not below it."""
    try:
        rel = os.path.relpath(path, base)
    except ValueError:
        return None
    if rel == os.curdir or rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return None
    return rel.replace(os.sep, "/")


class _GitTree:
    """A git work tree: its ignore files, read as git reads them, and what it tracks."""

    def __init__(self, top: str, git_dir: str | None) -> None:
        self.top = top
        self.git_dir = git_dir
        self._specs: dict[str, tuple[Any, list[str]] | None] = {}
        self._tracked: frozenset[str] | None = None
        self._tracked_dirs: frozenset[str] = frozenset()
        self._asked = False

    @classmethod
    def find(cls, start: str) -> _GitTree | None:
        """The work tree holding ``start``, or None outside one."""
        here = Path(os.path.abspath(start))
        for candidate in (here, *here.parents):
            dot = candidate / ".git"
            if dot.is_dir():
                return cls(str(candidate), str(dot))
            if dot.is_file():
                return cls(str(candidate), _linked_git_dir(dot))
        return None

    def _spec(self, directory: str) -> tuple[Any, list[str]] | None:
        if directory not in self._specs:
            lines = _read_lines(os.path.join(directory, ".gitignore"))
            self._specs[directory] = (_gitignore_spec(lines), lines) if lines else None
        return self._specs[directory]

    def _info_exclude(self) -> tuple[Any, list[str]] | None:
        key = "\x00info/exclude"
        if key not in self._specs:
            lines = (
                _read_lines(os.path.join(self.git_dir, "info", "exclude")) if self.git_dir else []
            )
            self._specs[key] = (_gitignore_spec(lines), lines) if lines else None
        return self._specs[key]

    def ignored(self, path: str, is_dir: bool) -> str | None:
        """The pattern (``file:LINE: pattern``) that makes git ignore the absolute ``path``,
        or None. The deepest ``.gitignore`` with a matching pattern decides; the last
        matching pattern of a file wins; ``info/exclude`` comes last."""
        if _relative(path, self.top) is None:
            return None
        directory = os.path.dirname(path)
        while True:
            entry = self._spec(directory)
            if entry is not None:
                verdict = _check(entry, path, directory, is_dir)
                if verdict is not None:
                    name = _relative(os.path.join(directory, ".gitignore"), self.top)
                    return _describe(name, entry, verdict) if verdict[0] else None
            if directory == self.top or len(directory) <= len(self.top):
                break
            directory = os.path.dirname(directory)
        entry = self._info_exclude()
        if entry is not None:
            verdict = _check(entry, path, self.top, is_dir)
            if verdict is not None and verdict[0]:
                return _describe(".git/info/exclude", entry, verdict)
        return None

    def _ask_git(self) -> None:
        if self._asked:
            return
        self._asked = True
        import subprocess  # only when something would be left out: start-up time

        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env["GIT_OPTIONAL_LOCKS"] = "0"
        try:
            proc = subprocess.run(
                ["git", "-c", "core.fsmonitor=false", "ls-files", "-z", "--cached", "--full-name"],
                cwd=self.top,
                env=env,
                capture_output=True,
                timeout=GIT_TIMEOUT_S,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.SubprocessError):
            return
        if proc.returncode != 0:
            return
        names = [os.fsdecode(n) for n in proc.stdout.split(b"\0") if n]
        self._tracked = frozenset(names)
        dirs: set[str] = set()
        for name in names:
            parent = name.rpartition("/")[0]
            while parent and parent not in dirs:
                dirs.add(parent)
                parent = parent.rpartition("/")[0]
        self._tracked_dirs = frozenset(dirs)

    @property
    def knows_tracked(self) -> bool:
        """Whether git said what it tracks (else nothing may be left out as ignored)."""
        self._ask_git()
        return self._tracked is not None

    def tracked(self, path: str) -> bool:
        """Whether git tracks the file (False when git cannot tell)."""
        self._ask_git()
        if self._tracked is None:
            return False
        rel = _relative(os.path.abspath(path), self.top)
        return rel is not None and rel in self._tracked

    def holds_tracked(self, path: str) -> bool:
        """Whether git tracks a file under the directory (False when git cannot tell)."""
        self._ask_git()
        if self._tracked is None:
            return False
        rel = _relative(os.path.abspath(path), self.top)
        return rel is not None and rel in self._tracked_dirs


def _check(
    entry: tuple[Any, list[str]], path: str, directory: str, is_dir: bool
) -> tuple[bool, str] | None:
    spec, _ = entry
    rel = _relative(path, directory)
    if rel is None:
        return None
    result = spec.check_file(rel + "/" if is_dir else rel)
    if result.include is None:
        return None
    return bool(result.include), str(spec.patterns[result.index].pattern)


def _describe(name: str | None, entry: tuple[Any, list[str]], verdict: tuple[bool, str]) -> str:
    _, lines = entry
    pattern = verdict[1]
    name = name or ".gitignore"
    line = next((i for i, text in enumerate(lines, 1) if text.strip() == pattern.strip()), 0)
    return f"{name}:{line}: {pattern}" if line else f"{name}: {pattern}"


def _read_lines(path: str) -> list[str]:
    try:
        with open(path, "rb") as fh:  # noqa: PTH123 (a str path)
            data = fh.read(MAX_IGNORE_FILE_BYTES + 1)
    except OSError:
        return []
    if len(data) > MAX_IGNORE_FILE_BYTES:
        return []
    return data.decode("utf-8", "surrogateescape").splitlines()


def _linked_git_dir(dot_git: Path) -> str | None:
    """The git directory a ``.git`` file (a linked work tree, a submodule) points to; the
    common directory holds ``info/exclude``."""
    try:
        text = dot_git.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if not text.startswith("gitdir:"):
        return None
    git_dir = (dot_git.parent / text[len("gitdir:") :].strip()).resolve()
    common = git_dir / "commondir"
    try:
        return str((git_dir / common.read_text(encoding="utf-8").strip()).resolve())
    except OSError:
        return str(git_dir)
