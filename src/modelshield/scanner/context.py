"""Per-file analysis state handed to every format handler.

A handler receives a :class:`ScanContext`, a byte buffer and a :class:`Location`. It reports
findings with :meth:`ScanContext.add`, recurses into members or decompressed streams with
:meth:`ScanContext.scan_buffer`, and never raises for hostile input: a tripped bound raises
:class:`LimitExceeded`, which the engine turns into a ``SCAN-LIMIT`` finding, keeping every
finding made before it.
"""

from __future__ import annotations

import mmap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from msgspec import Struct, field

from modelshield.core.caps import FindingCap
from modelshield.core.findings import ErrorRecord, Finding, Gap, Location, Severity
from modelshield.core.limits import Limits
from modelshield.core.policy import Policy
from modelshield.core.rules import rule_is_incomplete
from modelshield.scanner.detect import detect
from modelshield.scanner.memio import Buffer, Spill, release
from modelshield.scanner.registry import Format, byte_zero_pass, handler_for
from modelshield.scanner.rules import SCAN_FORMAT_NOT_ANALYSED, SCAN_LIMIT

if TYPE_CHECKING:
    from modelshield.scanner.callables import CallablePolicy


#: Findings of one rule kept per file; further ones are counted and summarised (a hostile file
#: can repeat one construct a million times, and a report of a million findings helps nobody).
MAX_FINDINGS_PER_RULE = 100
#: Findings kept per file, all rules together.
MAX_FINDINGS_PER_FILE = 2_000
#: Gaps (parts not analysed) kept per rule and file.
MAX_GAPS_PER_RULE = 20
#: Imported callables listed in a file's result (a hostile file can name millions).
MAX_IMPORTS_LISTED = 10_000
#: Inflated bytes held in memory per file, all nested streams and members together; beyond
#: it inflated data goes to a memory-mapped temporary file (see :class:`Spill`).
INFLATED_IN_MEMORY = 64 * 1024 * 1024


#: Format names that make a top-level file's format more specific than its container.
_REFINEMENTS = frozenset(
    {"pytorch-zip", "pytorch-legacy", "torchscript", "numpy-object", "keras-v3", "keras-h5"}
)


class LimitExceeded(Exception):
    """A configured bound was reached; the analysis of this buffer stops here."""

    def __init__(
        self, limit: str, detail: str, location: Location, *, unfollowed: Buffer | None = None
    ) -> None:
        """Name the limit (a :class:`Limits` field), what tripped it, and where.

        ``unfollowed`` is the buffer that the nesting limit kept from being analysed, for the
        catcher to search for imports (see :func:`modelshield.scanner.pickle.linear`).
        """
        super().__init__(f"{limit}: {detail}")
        self.limit = limit
        self.detail = detail
        """What tripped it; a linear pass after the limit appends what it found."""
        self.location = location
        self.evidence: dict[str, str] = {}
        """Evidence for the ``SCAN-LIMIT`` finding besides the limit's name."""
        self.unfollowed = unfollowed
        self.swept: list[object] = []
        """Buffers (pickle sessions) whose rest a linear pass already searched for imports."""

    def finding(self, what: str = "Analysis stopped") -> Finding:
        """The ``SCAN-LIMIT`` finding that reports this limit."""
        rest = (
            "The rest of this part was only searched for imports"
            if "linear_pass" in self.evidence
            else "The rest of this part was not analysed"
        )
        return SCAN_LIMIT.finding(
            self.location,
            f"{what}: {self.detail}. {rest}; raise limits.{self.limit} if the file is trusted "
            "to be this large.",
            evidence={"limit": self.limit, **self.evidence},
        )


class ScanContext(Struct):
    """Mutable accumulator for one top-level input. Not shared between files or threads."""

    path: str
    """The top-level input."""
    policy: Policy
    """The policy in force (limits and callable lists come from it)."""
    callables: CallablePolicy
    """Classifier for callables a pickle imports."""
    started: float = field(default_factory=time.monotonic)
    """When the analysis of this input started (monotonic clock)."""
    cap: FindingCap = field(
        default_factory=lambda: FindingCap(MAX_FINDINGS_PER_RULE, MAX_FINDINGS_PER_FILE, "file")
    )
    """Findings so far: the first of each rule kept, the rest counted (see :meth:`add`)."""
    errors: list[ErrorRecord] = field(default_factory=list)
    """Errors so far."""
    formats_seen: list[str] = field(default_factory=list)
    """Formats met, outermost first, deduplicated."""
    bytes_read: int = 0
    """Bytes read from disk or inflated."""
    imports: set[str] = field(default_factory=set)
    """Callables imported by any pickle, as ``module:qualname`` (safe ones included)."""
    metadata: dict[str, str] = field(default_factory=dict)
    """Facts the file records about itself (``sklearn_version``, ``torch_archive_version``...)."""
    refined_format: str | None = None
    """A more specific name for the top-level format, set by its handler (``pytorch-zip``)."""
    depth: int = 0
    """Current nesting depth (archives, streams, embedded payloads)."""
    gaps: list[Gap] = field(default_factory=list)
    """Parts of the input that were not analysed, from findings of incomplete rules."""
    opcodes: int = 0
    """Pickle interpreter work done so far, in opcodes (``limits.max_opcodes``)."""
    streams: int = 0
    """Pickle streams started so far (``limits.max_pickle_streams``)."""
    inflated: int = 0
    """Bytes decompressed so far, all streams and members (``limits.max_decompressed_bytes``)."""
    copied: int = 0
    """Bytes of nested buffers currently copied into memory for speed."""
    spills: list[Spill] = field(default_factory=list)
    """Inflated buffers alive now (their in-memory parts share :data:`INFLATED_IN_MEMORY`)."""
    mapped: object = None
    """The memory map of the top-level file, when it is mapped (for :meth:`release_pages`)."""
    released_at: float = field(default_factory=time.monotonic)
    """When :meth:`check_deadline` last released touched pages."""

    @property
    def limits(self) -> Limits:
        """The limits in force."""
        return self.policy.limits

    @property
    def findings(self) -> list[Finding]:
        """The findings kept so far, in the order they were made."""
        return self.cap.kept

    @property
    def rule_totals(self) -> dict[str, int]:
        """Findings made per rule, kept or not."""
        return self.cap.totals

    def add(self, finding: Finding) -> None:
        """Record a finding (and the gap it reports, for a rule of unanalysed content).

        The first :data:`MAX_FINDINGS_PER_RULE` findings of a rule are kept, up to
        :data:`MAX_FINDINGS_PER_FILE` in all; later ones are counted, and the worst of them is
        kept as an example (see :meth:`finish_findings`).
        """
        rule = finding.rule_id
        if rule_is_incomplete(rule) and self.cap.totals.get(rule, 0) < MAX_GAPS_PER_RULE:
            self.gaps.append(Gap(rule, finding.location, finding.message))
        self.cap.add(finding)

    def wants(self, rule: str, severity: Severity) -> bool:
        """Whether :meth:`add` would keep a finding of ``rule`` at ``severity`` (or list it as
        the worst of those dropped). When not, the finding is counted as if added: callers
        that make many findings check first and skip building what would be dropped."""
        if rule_is_incomplete(rule) and self.cap.totals.get(rule, 0) < MAX_GAPS_PER_RULE:
            return True  # its gap is recorded from the finding itself
        return self.cap.wants(rule, severity)

    def note_import(self, dotted: str) -> None:
        """List an imported callable in the result (the first :data:`MAX_IMPORTS_LISTED`)."""
        if len(self.imports) < MAX_IMPORTS_LISTED:
            self.imports.add(dotted)

    def inflate_budget(self) -> int:
        """Bytes decompression may still produce for this file."""
        return max(0, self.limits.max_decompressed_bytes - self.inflated)

    @contextmanager
    def spilling(self) -> Iterator[Spill]:
        """A buffer for inflated data, freed when the block ends: in memory while this file's
        inflated data in memory stays under :data:`INFLATED_IN_MEMORY`, in a memory-mapped
        temporary file beyond."""
        held = sum(s.in_memory for s in self.spills)
        spill = Spill(INFLATED_IN_MEMORY - held)
        self.spills.append(spill)
        try:
            yield spill
        finally:
            spill.close()
            self.spills.remove(spill)

    def release_pages(self) -> None:
        """Drop the pages of memory-mapped data (the file, spilled buffers) that analysers
        touched. Long sequential reads call this now and then, so that what they read once
        does not count towards the process's memory."""
        if isinstance(self.mapped, mmap.mmap):
            release(self.mapped)
        for spill in self.spills:
            spill.release_pages()

    def bomb_reason(self, reason: str, budget: int) -> str:
        """Say when a decompression cap was the file's shared budget rather than the limit."""
        limit = self.limits.max_decompressed_bytes
        if budget >= limit:
            return reason
        return (
            f"{reason}: what was left of the file's decompression budget "
            f"(limits.max_decompressed_bytes, {limit} bytes for every compressed stream and "
            "member of the file together)"
        )

    def finish_findings(self) -> list[Finding]:
        """The kept findings, then for each rule that overflowed: its worst dropped finding
        (when worse than every kept one of that rule) and a summary saying how many more."""
        return self.cap.findings()

    def error(self, location: Location, message: str, stage: str = "scan") -> None:
        """Record an error that stopped part of the analysis."""
        self.errors.append(ErrorRecord(location=location, message=message, stage=stage))

    def saw_format(self, name: str) -> None:
        """Note a format met inside the input.

        A refinement (``pytorch-zip`` of a zip) met at the top level also names the file's
        format in its result.
        """
        if name not in self.formats_seen:
            self.formats_seen.append(name)
        if self.depth == 0 and name in _REFINEMENTS:
            self.refined_format = name

    def check_deadline(self, location: Location) -> None:
        """Raise LimitExceeded when the per-file time budget is spent.

        Long loops call this often; twice a second it also releases the pages of mapped data
        that were touched (:meth:`release_pages`), so that reading a large file or spilled
        buffer once does not count towards the process's memory.
        """
        now = time.monotonic()
        budget = self.limits.max_seconds_per_file
        if now - self.started > budget:
            raise LimitExceeded(
                "max_seconds_per_file", f"analysis took longer than {budget:g} s", location
            )
        if now - self.released_at > 0.5:
            self.released_at = now
            self.release_pages()

    def scan_buffer(self, data: Buffer, location: Location, fmt: Format | None = None) -> None:
        """Analyse a nested buffer (archive member, inflated stream, embedded payload).

        Detects its format by content unless ``fmt`` is given, one level deeper, bounded by
        ``limits.max_nested_depth``.
        """
        if self.depth >= self.limits.max_nested_depth:
            raise LimitExceeded(
                "max_nested_depth",
                f"nesting deeper than {self.limits.max_nested_depth} levels was not followed",
                location,
                unfollowed=data,
            )
        self.depth += 1
        try:
            self.dispatch(memoryview(data), location, fmt)
        finally:
            self.depth -= 1

    def dispatch(self, data: memoryview, location: Location, fmt: Format | None = None) -> None:
        """Detect ``data``'s format (unless given) and run its handler at the current depth."""
        if fmt is None:
            fmt = detect(data)
        self.saw_format(fmt.value)
        as_pickle = byte_zero_pass(fmt)
        if as_pickle is not None:
            as_pickle(self, data, location)
        handler = handler_for(fmt)
        if handler is not None:
            self.check_deadline(location)
            handler(self, data, location)
        elif fmt is not Format.UNKNOWN and fmt is not Format.EMPTY:
            self.add(
                SCAN_FORMAT_NOT_ANALYSED.finding(
                    location,
                    f"This content is {fmt.value}, which modelshield recognises but does not "
                    "analyse yet, so it was not checked. Accept the gap in the policy "
                    f'([[accept_incomplete]] rule = "{SCAN_FORMAT_NOT_ANALYSED.id}") only if '
                    "you trust where the file comes from.",
                    evidence={"format": fmt.value},
                )
            )
