"""Helpers shared by the input parsers: reading bounded text, and turning PEP 508 requirements
into :class:`~modelshield.audit.inputs.dependency.Dependency` values.

``packaging``'s requirement, marker and file-name parsers are imported on first use: together
they take longer to import than a pinned requirements file takes to audit, and such a file
(``name==version`` lines) needs none of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from msgspec import Struct, field

from modelshield.audit.inputs.dependency import Dependency
from modelshield.core.findings import Location
from modelshield.core.limits import Limits

if TYPE_CHECKING:
    from packaging.markers import Marker
    from packaging.requirements import Requirement

_NAME_SEPARATORS = re.compile(r"[-_.]+")


def canonical_name(name: str) -> str:
    """A distribution name normalised as PEP 503 defines it (``Foo_Bar.baz`` -> ``foo-bar-baz``).

    The same result as ``packaging.utils.canonicalize_name``, without importing that module.
    """
    return _NAME_SEPARATORS.sub("-", name).lower()


class RunningEnvironment(Mapping[str, str]):
    """The running interpreter's PEP 508 marker environment, computed when first read."""

    def __init__(self) -> None:
        """Nothing is computed until a marker needs it."""
        self._values: dict[str, str] | None = None

    def _get(self) -> dict[str, str]:
        if self._values is None:
            from packaging.markers import default_environment

            self._values = {k: str(v) for k, v in default_environment().items()}
        return self._values

    def __getitem__(self, key: str) -> str:
        """One variable, e.g. ``python_version``."""
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        """The variable names."""
        return iter(self._get())

    def __len__(self) -> int:
        """How many variables there are."""
        return len(self._get())

    def __repr__(self) -> str:
        """The variables, as a dict shows them."""
        return repr(self._get())


class InputError(ValueError):
    """An input cannot be read or parsed; becomes an error record naming the file."""

    def __init__(self, message: str, line: int | None = None) -> None:
        """Say what is wrong and, when known, on which line."""
        super().__init__(message)
        self.line = line


class ParseOptions(Struct, frozen=True):
    """Settings every parser receives."""

    limits: Limits = field(default_factory=Limits)
    """Bounds (file size, include depth)."""
    environment: Mapping[str, str] = field(default_factory=RunningEnvironment)
    """The PEP 508 marker environment requirements are evaluated against (the current one)."""


def read_text(path: Path, limits: Limits) -> tuple[str, int]:
    """The file's text and size; raises InputError when unreadable, too large or not UTF-8.

    Manifests are read whole, so the bound is ``limits.max_document_bytes`` (the largest
    document modelshield reads into memory), not the much larger model-file bound.
    """
    cap = limits.max_document_bytes
    try:
        with path.open("rb") as fh:
            data = fh.read(cap + 1)
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror or e}") from e
    if len(data) > cap:
        raise InputError(f"larger than {cap} bytes (limits.max_document_bytes); not read")
    try:
        return data.decode("utf-8-sig"), len(data)
    except UnicodeDecodeError as e:
        raise InputError(f"not UTF-8 text: {e}") from e


def marker_applies(marker: Marker | str | None, env: Mapping[str, str], extra: str = "") -> bool:
    """Whether a PEP 508 marker holds in ``env``; an unknown variable counts as holding.

    Failing open here only means *more* dependencies are audited, never fewer.
    """
    if marker is None or marker == "":
        return True
    from packaging.markers import InvalidMarker, Marker, UndefinedEnvironmentName

    try:
        m = marker if isinstance(marker, Marker) else Marker(marker)
        return m.evaluate({**env, "extra": extra})
    except (InvalidMarker, UndefinedEnvironmentName, ValueError, TypeError):
        return True


def version_from_filename(url_or_path: str) -> tuple[str, str] | None:
    """``(name, version)`` from a wheel or sdist file name at the end of a URL or path."""
    import urllib.parse

    from packaging.utils import (
        InvalidSdistFilename,
        InvalidWheelFilename,
        parse_sdist_filename,
        parse_wheel_filename,
    )

    path = urllib.parse.urlsplit(url_or_path).path if "://" in url_or_path else url_or_path
    filename = urllib.parse.unquote(path.rstrip("/").rsplit("/", 1)[-1])
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
            return str(name), str(version)
        if filename.endswith((".tar.gz", ".zip")):
            sname, sversion = parse_sdist_filename(filename)
            return str(sname), str(sversion)
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return None


_VCS = r"^(git|hg|svn|bzr)\+"


def url_dependency(
    url: str, name: str | None, location: Location, line: int | None, origin: str
) -> Dependency:
    """A dependency installed from a URL or path: auditable when the file name has a version."""
    vcs = re.match(_VCS, url, re.IGNORECASE) is not None
    parsed = version_from_filename(url) if not vcs else None
    if parsed is not None:
        file_name, version = parsed
        shown = name or file_name
        return Dependency(
            name=shown,
            canonical=canonical_name(shown),
            location=location,
            version=version,
            line=line,
            origin=origin,
            evidence={"url": url},
        )
    egg = re.search(r"[#&]egg=([A-Za-z0-9._-]+)", url)
    shown = name or (egg.group(1) if egg else url)
    kind = "a version-control URL" if vcs else "a URL or local path"
    return Dependency(
        name=shown,
        canonical=canonical_name(shown) if (name or egg) else shown,
        location=location,
        unauditable=f"installed from {kind} ({url}), not a PyPI release",
        line=line,
        origin=origin,
        evidence={"url": url},
    )


def requirement_dependency(
    req: Requirement, location: Location, line: int | None, origin: str = "declared"
) -> Dependency:
    """A PEP 508 requirement as a dependency: pinned for ``==X``/``===X``, else a range."""
    if req.url:
        return url_dependency(req.url, req.name, location, line, origin)
    clauses = list(req.specifier)
    version = None
    if len(clauses) == 1 and (
        clauses[0].operator == "==="
        or (clauses[0].operator == "==" and "*" not in clauses[0].version)
    ):
        version = clauses[0].version
    return Dependency(
        name=req.name,
        canonical=canonical_name(req.name),
        location=location,
        version=version,
        specifiers=() if version is not None else (str(req.specifier),),
        extras=tuple(sorted(req.extras)),
        line=line,
        origin=origin,
    )


def parse_requirement(text: str, line: int | None = None) -> Requirement:
    """Parse a PEP 508 string; raises InputError with the line on failure."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        return Requirement(text)
    except InvalidRequirement as e:
        # Quote little: an include can name any file, and reports are often published.
        shown = text if len(text) <= 60 else text[:57] + "..."
        reason = str(e).split("\n", 1)[0]
        raise InputError(f"invalid requirement {shown!r}: {reason}", line) from e


def pinned(
    name: str, version: str, location: Location, origin: str, line: int | None = None
) -> Dependency:
    """A dependency at one exact version (locked, installed, recorded)."""
    return Dependency(
        name=name,
        canonical=canonical_name(name),
        location=location,
        version=version,
        line=line,
        origin=origin,
    )


def locate(text: str, needle: str) -> tuple[int | None, int | None]:
    """Line number and byte offset of the first occurrence of ``needle`` in ``text``."""
    index = text.find(needle) if needle else -1
    if index < 0:
        return None, None
    return text.count("\n", 0, index) + 1, len(text[:index].encode("utf-8"))


def load_yaml_text(text: str) -> object:
    """YAML with every scalar kept as text (``3.10`` stays ``"3.10"``); raises InputError."""
    import yaml

    loader = getattr(yaml, "CBaseLoader", yaml.BaseLoader)
    try:
        # BaseLoader builds only str/list/dict: no object construction, no float conversion.
        return yaml.load(text, Loader=loader)
    except (yaml.YAMLError, RecursionError) as e:
        raise InputError(f"not valid YAML: {e}") from e
