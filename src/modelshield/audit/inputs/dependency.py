"""The input records: what a requirements file, lock file, model file or environment declares.

Every reader of :mod:`modelshield.audit.inputs` turns one input into a :class:`ParsedInput`
holding :class:`Dependency` values, before any advisory is consulted. The advisory side of the
audit has its own records (:mod:`modelshield.audit.records`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from msgspec import Struct, field

from modelshield.core.findings import ErrorRecord, Finding, Gap, Location


class InputKind(enum.StrEnum):
    """The kinds of input the audit reads; the value is the ``FileResult.format``."""

    REQUIREMENTS = "requirements"
    PYPROJECT = "pyproject"
    UV_LOCK = "uv-lock"
    POETRY_LOCK = "poetry-lock"
    PIPFILE_LOCK = "pipfile-lock"
    PYLOCK = "pylock"
    CONDA = "conda-environment"
    MLFLOW_MLMODEL = "mlflow-mlmodel"
    MLFLOW_PYTHON_ENV = "mlflow-python-env"
    TRANSFORMERS_CONFIG = "transformers-config"
    KERAS_METADATA = "keras-metadata"
    MODEL = "model"
    ENVIRONMENT = "environment"
    UNKNOWN = "unknown"


class Artifact(Struct, frozen=True):
    """A file of a release that an input records a digest of (a wheel or sdist in a lock file,
    a ``--hash`` in a requirements file)."""

    name: str
    """The file name (``numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.whl``), or ``""`` when
    the input records only the digest (``--hash``, Pipfile.lock)."""
    algorithm: str
    """The hash algorithm as the input names it, lower case (``sha256``)."""
    digest: str
    """The hex digest, lower case."""
    url: str = ""
    """Where the file is downloaded from, when the input says."""


class Dependency(Struct, frozen=True):
    """One distribution an input needs, as precisely as the input states it.

    Exactly one of three shapes: ``version`` set (pinned, locked, installed or recorded),
    ``specifiers`` set (a range a resolver may pick from), or ``unauditable`` set (a URL, VCS or
    local path that is not a PyPI release).
    """

    name: str
    """The name as written in the input."""
    canonical: str
    """PEP 503 normalised name, the key advisories are matched on."""
    location: Location
    """The file (and byte offset of the line, when known) that declares it."""
    version: str | None = None
    """The exact version, when the input pins one (it may not be valid PEP 440)."""
    specifiers: tuple[str, ...] = ()
    """When not pinned: PEP 440 specifier sets, any of which the version may satisfy
    (``("",)`` is any version; several come from Poetry's ``||``)."""
    unauditable: str | None = None
    """Why no version can be audited (``installed from a VCS URL``...), or None."""
    extras: tuple[str, ...] = ()
    """Extras requested, for display."""
    line: int | None = None
    """1-based line in ``location.path``, when the input is line-oriented."""
    origin: str = "declared"
    """``declared`` (a manifest), ``locked``, ``installed``, or ``model-implied``."""
    evidence: Mapping[str, str] = field(default_factory=dict)
    """Why the dependency is there when it is not declared (e.g. the callables a model imports),
    and the environment marker it is declared under (``marker``)."""
    artifacts: tuple[Artifact, ...] = ()
    """The release files (and their digests) the input records for this version."""

    @property
    def is_pinned(self) -> bool:
        """Whether one exact version is known."""
        return self.version is not None

    def display(self) -> str:
        """``name==version``, ``name>=1,<2`` or the bare name, for messages."""
        if self.version is not None:
            return f"{self.name}=={self.version}"
        spec = " || ".join(s for s in self.specifiers if s)
        return f"{self.name}{spec}" if spec else self.name


class Exclusion(Struct, frozen=True):
    """A dependency an input declares that is not audited, because its environment marker is
    false for the target the user named (``--python-version``, ``--platform``)."""

    dependency: str
    """What the input declares, as :meth:`Dependency.display` writes it."""
    canonical: str
    """PEP 503 normalised name."""
    location: Location
    """Where it is declared."""
    marker: str
    """The marker that is false for the target (for a locked package reached only through
    dependencies, the markers of the paths that reach it)."""
    line: int | None = None
    """1-based line, when known."""


class ParsedInput(Struct, frozen=True):
    """What one input file (or the environment) declares, before any advisory is consulted."""

    path: str
    """The input as the user named it or as found under a named directory."""
    kind: InputKind
    """Which parser read it."""
    dependencies: tuple[Dependency, ...] = ()
    """Dependencies in file order (duplicates kept: they may sit in different included files)."""
    errors: tuple[ErrorRecord, ...] = ()
    """What could not be parsed; any error makes the run exit 2."""
    findings: tuple[Finding, ...] = ()
    """Findings the parser itself makes."""
    size: int = 0
    """Bytes of the input on disk."""
    metadata: Mapping[str, str] = field(default_factory=dict)
    """Facts worth keeping, e.g. ``excluded_by_marker``."""
    excluded: tuple[Exclusion, ...] = ()
    """Dependencies left out for the target (none when no target is named)."""
    gaps: tuple[Gap, ...] = ()
    """Parts of the input that were not read (a limit, an incomplete model scan): each one
    makes the run exit 2 unless the policy accepts it."""
