"""The typed result model shared by every pillar.

A :class:`Finding` is one thing worth telling a user, with a structured :class:`Location`.
A :class:`FileResult` is what one input produced (N inputs always give N results, "not
scanned" included). A :class:`Report` collects results and is what reporters render.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from msgspec import Struct, field
from msgspec.structs import replace

from modelshield.core.measurements import Assessment


class Severity(enum.IntEnum):
    """Ordered severity of a finding. Compare with ``<``/``>=``."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        """Lower-case name used in files, JSON and on the command line."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        """Parse ``critical``/``high``/``medium``/``low``/``info`` (any case)."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            from modelshield.core.errors import ConfigError

            raise ConfigError(f"unknown severity {text!r}; use one of: {names}") from None


class Location(Struct, frozen=True):
    """Where a finding is: a file, a path of archive members inside it, and a byte offset."""

    path: str
    """The input file as the user named it (or as found under a named directory)."""
    members: tuple[str, ...] = ()
    """Archive members from outermost to innermost, e.g. ``("model.zip", "archive/data.pkl")``
    is written as ``members=("archive/data.pkl",)`` for ``path="model.zip"``. Decompressed
    streams appear as a member named after the codec in angle brackets, e.g. ``<gzip>``."""
    offset: int | None = None
    """Byte offset inside the innermost member (or the file when there are no members)."""

    def child(self, member: str) -> Location:
        """The location of a member inside this one (offset reset)."""
        return Location(self.path, (*self.members, member), None)

    def at(self, offset: int | None) -> Location:
        """The same place at another byte offset."""
        return replace(self, offset=offset)

    def display(self) -> str:
        """A human-readable rendering; never parse it back (use the fields)."""
        text = self.path
        for member in self.members:
            text += f" › {member}"
        if self.offset is not None:
            text += f" @ {self.offset}"
        return text


class Finding(Struct, frozen=True):
    """One result worth reporting, from any pillar."""

    rule_id: str
    """Stable id from the rule catalogue (``docs/rules.md``), e.g. ``PICKLE-CALL-DANGEROUS``."""
    severity: Severity
    """How bad it is; the policy decides whether it fails a run."""
    title: str
    """One line: what was found."""
    message: str
    """What it means and what the user can do about it."""
    location: Location
    """Where it was found."""
    evidence: Mapping[str, str] = field(default_factory=dict)
    """Facts backing the finding, e.g. ``{"callable": "os.system", "args": "('id',)"}``."""

    def with_severity(self, severity: Severity) -> Finding:
        """The same finding at another severity (policy overrides)."""
        return replace(self, severity=severity)


class ErrorRecord(Struct, frozen=True):
    """Something that stopped part of an analysis; never silently dropped."""

    location: Location
    """Where the error happened."""
    message: str
    """What went wrong, for a person."""
    stage: str = "scan"
    """The component that failed (a scanner name, ``io``, ``audit``...)."""


Status = Literal["complete", "incomplete", "error", "skipped"]
"""How much of an input was analysed:

``complete``
    every part of it, within the limits;
``incomplete``
    some part was not analysed (a limit, an unrecognised or unread format): see its gaps;
``skipped``
    nothing of it was analysed, by rule (a file above the size limit): see its gaps;
``error``
    an error stopped (part of) the analysis: see its errors.

Only ``complete`` can pass a run; a policy may accept named gaps (``[[accept_incomplete]]``).
"""


class Gap(Struct, frozen=True):
    """A part of an input that was not analysed, and the rule that says so."""

    rule_id: str
    """The rule whose finding reports it (``SCAN-LIMIT``, ``SCAN-UNRECOGNISED``...)."""
    location: Location
    """Where the analysis stopped or what it did not read."""
    message: str
    """What was not analysed and why, for a person."""
    accepted: bool = False
    """The policy accepts this gap: it no longer fails the run, and reports list it."""


class FileResult(Struct, frozen=True):
    """What one input produced."""

    path: str
    """The input as reported in locations."""
    format: str
    """Detected format (by content), e.g. ``pickle``, ``pytorch-zip``, ``zip``, ``unknown``."""
    findings: tuple[Finding, ...] = ()
    """Findings, in the order they were made."""
    errors: tuple[ErrorRecord, ...] = ()
    """Errors that stopped some of the analysis."""
    bytes_read: int = 0
    """Bytes actually read or inflated (a checkpoint's tensor data is not read)."""
    size: int = 0
    """Size of the input on disk."""
    duration_s: float = 0.0
    """Wall-clock seconds spent on this input."""
    formats_seen: tuple[str, ...] = ()
    """Every format met inside the input (members, streams), outermost first, deduplicated."""
    imports: tuple[str, ...] = ()
    """Every callable the input's pickles import, as ``module:qualname``, sorted (safe ones
    included; the first 10,000 met). The dependency audit maps these to the distributions a
    load needs."""
    metadata: Mapping[str, str] = field(default_factory=dict)
    """Facts recorded in the file, e.g. ``sklearn_version``, ``torch_archive_version``."""
    gaps: tuple[Gap, ...] = ()
    """Parts of the input that were not analysed (see :data:`Status`)."""
    skipped: bool = False
    """Nothing of the input was analysed, by rule (it is above the size limit)."""
    pillar: str = ""
    """The pillar that produced the result (``scan``, ``audit``, ``manifest``, ``assess``,
    ``gate``) in a report that merges several (``modelshield ci``); empty: the report's
    ``tool``."""

    @property
    def status(self) -> Status:
        """How much of the input was analysed (see :data:`Status`)."""
        if self.errors:
            return "error"
        if self.skipped:
            return "skipped"
        return "incomplete" if self.gaps else "complete"

    @property
    def unaccepted_gaps(self) -> tuple[Gap, ...]:
        """Gaps the policy does not accept: any of them fails the run."""
        return tuple(g for g in self.gaps if not g.accepted)

    @property
    def finished(self) -> bool:
        """Whether the input counts as analysed: no error, and every gap accepted."""
        return not self.errors and not self.unaccepted_gaps

    @property
    def max_severity(self) -> Severity | None:
        """The worst finding's severity, or None when there is none."""
        return max((f.severity for f in self.findings), default=None)


Role = Literal["executable", "code", "inert", "not-analysed"]
"""What a file of a scanned directory is, for whoever loads the directory as a model:

``executable``
    a loader runs code from it (a pickle, a Python module that ``trust_remote_code`` or an
    MLflow flavor imports, a ``.pth`` file's import lines...): executable in effect;
``code``
    program text or a native program that no loader configuration of the directory runs;
``inert``
    data that its loaders read without running any of it, analysed completely;
``not-analysed``
    content that was not fully analysed (a gap, an error, an unrecognised format).
"""


class RepositoryFile(Struct, frozen=True):
    """One file of a scanned directory and its role."""

    path: str
    """The file, as in its result's ``path``."""
    role: Role
    """Executable in effect, code, inert data or not analysed (see :data:`Role`)."""
    reason: str
    """Why, for a person: which loader runs it, or what kind of data it is."""


class Repository(Struct, frozen=True):
    """A scanned directory seen as a whole: which of its files a loader would execute."""

    path: str
    """The directory, as named on the command line."""
    layouts: tuple[str, ...] = ()
    """The model layouts recognised in it, e.g. ``huggingface``, ``mlflow``, ``torch-hub``."""
    files: tuple[RepositoryFile, ...] = ()
    """Every file under it, in the order of the results."""

    def with_role(self, role: Role) -> tuple[RepositoryFile, ...]:
        """The files of one role."""
        return tuple(f for f in self.files if f.role == role)


class Excluded(Struct, frozen=True):
    """A path under a searched directory that was left out, and why."""

    path: str
    """The file or directory (a directory stands for everything under it)."""
    reason: str
    """``default`` (a version-control, virtual-environment or cache directory),
    ``exclude`` (an ``exclude`` pattern of the policy or the command line) or ``gitignore``."""
    pattern: str = ""
    """What matched: the directory name, the pattern, or ``.gitignore:LINE: pattern``."""


class Report(Struct, frozen=True):
    """Everything one command produced, before reporters render it."""

    tool: str
    """What produced it: ``scan``, ``audit``..."""
    version: str
    """modelshield's version."""
    results: tuple[FileResult, ...]
    """One result per input, in input order."""
    duration_s: float = 0.0
    """Wall-clock seconds for the whole command."""
    suppressed: int = 0
    """How many findings the policy ignored."""
    repositories: tuple[Repository, ...] = ()
    """Scanned directories seen as a whole (one per directory named as an input)."""
    assessment: Assessment | None = None
    """``assess``: what was measured and on what (None for every other command)."""
    excluded: tuple[Excluded, ...] = ()
    """Paths left out while searching the named directories (the first 1,000)."""
    excluded_total: int = 0
    """How many paths were left out in all (``excluded`` lists the first 1,000)."""
    baselined: int = 0
    """How many findings a baseline of accepted findings removed (``modelshield ci``)."""

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Every finding of every result, in order."""
        return tuple(f for r in self.results for f in r.findings)

    @property
    def errors(self) -> tuple[ErrorRecord, ...]:
        """Every error of every result, in order."""
        return tuple(e for r in self.results for e in r.errors)

    @property
    def unfinished(self) -> tuple[FileResult, ...]:
        """Results that were not analysed fully (errors, or gaps the policy does not accept)."""
        return tuple(r for r in self.results if not r.finished)

    @property
    def max_severity(self) -> Severity | None:
        """The worst finding's severity in the whole report."""
        return max((f.severity for f in self.findings), default=None)

    def count_by_severity(self) -> dict[Severity, int]:
        """Finding counts for every severity (zero included), worst first."""
        counts = dict.fromkeys(sorted(Severity, reverse=True), 0)
        for f in self.findings:
            counts[f.severity] += 1
        return counts

    @classmethod
    def of(
        cls,
        tool: str,
        results: Iterable[FileResult],
        duration_s: float = 0.0,
        repositories: Iterable[Repository] = (),
        excluded: Sequence[Excluded] = (),
        excluded_total: int | None = None,
    ) -> Report:
        """Build a report with the current version."""
        from modelshield._version import __version__

        return cls(
            tool=tool,
            version=__version__,
            results=tuple(results),
            duration_s=duration_s,
            repositories=tuple(repositories),
            excluded=tuple(excluded),
            excluded_total=len(excluded) if excluded_total is None else excluded_total,
        )
