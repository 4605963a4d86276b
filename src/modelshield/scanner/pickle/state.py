"""State shared by the pickle interpreter's parts: one :class:`Session` per buffer, one
:class:`Stream` per pickle in it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelshield.core.findings import Location, Severity
from modelshield.core.rules import Rule
from modelshield.scanner.callables import Tier, Verdict
from modelshield.scanner.context import ScanContext
from modelshield.scanner.memio import Buffer
from modelshield.scanner.pickle import rules
from modelshield.scanner.pickle.ledger import Ledger

if TYPE_CHECKING:
    from modelshield.scanner.pickle.embedded import EmbeddedScanner

#: Semantic errors (underflow, missing memo key...) reported per stream; later ones are counted.
_MAX_SEMANTIC_REPORTS = 3
#: Verdicts cached per buffer (a hostile stream can name millions of distinct callables).
_MAX_VERDICTS = 65_536
#: Work charged to ``ctx.opcodes`` for classifying a callable not seen before in the buffer.
CLASSIFY_COST = 64


#: Globals that torch.jit's C++ unpickler resolves itself in TorchScript archives (it refuses
#: any other name that is not a ``__torch__`` class compiled from the archive's ``code/``).
_TORCHSCRIPT_HELPERS = frozenset(
    {
        "build_tensor_from_id",
        "build_intlist",
        "build_tensorlist",
        "build_doublelist",
        "build_boollist",
        "build_complexlist",
        "restore_type_tag",
    }
)
_TORCHSCRIPT_REASON = (
    "resolved by torch.jit's own unpickler in a TorchScript archive, not imported by Python "
    "(TorchScript classes are compiled from the archive's code/ members, checked separately)"
)


def _torchscript_global(module: str, name: str) -> bool:
    """A TorchScript helper or a ``__torch__`` class of a TorchScript archive."""
    if module == "torch.jit._pickle":
        return name in _TORCHSCRIPT_HELPERS
    return module == "__torch__" or module.startswith("__torch__.")


class Session:
    """What every stream of one buffer shares: the buffer, the classifier cache, and the
    module attributes that ``BUILD`` overwrote (process state survives from one pickle to the
    next, so a later stream of the same file sees them)."""

    def __init__(
        self, ctx: ScanContext, data: Buffer, location: Location, *, torchscript: bool = False
    ) -> None:
        """Analyse ``data`` (bytes, or a memoryview for very large buffers) at ``location``.

        ``torchscript``: the buffer is a pickle of a TorchScript archive, which torch.jit's own
        unpickler reads (not Python's): its helpers and ``__torch__`` classes are no imports.
        """
        self.ctx = ctx
        self.torchscript = torchscript
        """Whether TorchScript's unpickler, not Python's, reads this buffer."""
        """The scan context findings go to."""
        self.data = data
        """The buffer; offsets in findings are offsets into it."""
        self.location = location
        """Where the buffer is."""
        self.overrides: dict[str, dict[str, Any]] = {}
        """Attributes written onto modules or globals: dotted target -> attribute -> value."""
        self.joblib_depth = 0
        """How deep joblib object arrays (nested pickles in the stream) currently are."""
        self.embedded: EmbeddedScanner | None = None
        """Examines constants for embedded pickles (None to skip that)."""
        self._verdicts: dict[tuple[str, str], Verdict] = {}

    def classify(self, module: str, name: str) -> Verdict:
        """Classify a callable once per buffer and record it in ``ctx.imports``."""
        key = (module, name)
        verdict = self._verdicts.get(key)
        if verdict is None:
            if self.torchscript and _torchscript_global(module, name):
                verdict = Verdict(module, name, Tier.SAFE, None, "safe", _TORCHSCRIPT_REASON)
            else:
                verdict = self.ctx.callables.classify(module, name)
            if len(self._verdicts) >= _MAX_VERDICTS:
                self._verdicts.clear()
            self._verdicts[key] = verdict
            self.ctx.note_import(f"{verdict.module}:{verdict.name}")
            self.ctx.opcodes += CLASSIFY_COST
        return verdict

    def emit(
        self,
        rule: Rule,
        offset: int | None,
        message: str,
        evidence: dict[str, str] | None = None,
        *,
        severity: Severity | None = None,
        title: str | None = None,
    ) -> None:
        """Add a finding of ``rule`` at ``offset`` in this buffer."""
        if not self.ctx.wants(rule.id, rule.severity if severity is None else severity):
            return  # counted, not built: it would be dropped
        self.ctx.add(
            rule.finding(
                self.location.at(offset),
                message,
                title=title,
                severity=severity,
                evidence=evidence,
            )
        )


class Stream:
    """Per-pickle state besides the machine itself: the ledger and what was reported."""

    def __init__(self, session: Session, start: int, persistent_ids_expected: bool) -> None:
        """A stream starting at ``start``."""
        self.session = session
        """The buffer's session."""
        self.start = start
        """Offset of the stream's first opcode."""
        self.persistent_ids_expected = persistent_ids_expected
        """Whether PERSID/BINPERSID are normal here (PyTorch checkpoints)."""
        self.ledger = Ledger(session.ctx, session.location, session.classify)
        """Imports and calls made so far."""
        self.persistent_ids: list[Any] = []
        """Persistent ids in order (PyTorch storage records)."""
        self.semantic_errors = 0
        """Semantic errors met (underflow, missing memo key, type confusion)."""
        self.protos = 0
        """PROTO opcodes met."""
        self.protos_reported = 0
        """PROTO anomalies reported (one per stream)."""
        self.ext_codes: set[int] = set()
        """Extension codes reported."""
        self.first_persid: int | None = None
        self.counted = 0
        """Opcodes of this stream already added to ``ctx.opcodes``."""

    def semantic(self, offset: int, message: str) -> None:
        """A real loader would raise here; report the first few, count the rest."""
        self.semantic_errors += 1
        if self.semantic_errors <= _MAX_SEMANTIC_REPORTS:
            self.session.emit(
                rules.MALFORMED,
                offset,
                f"{message} (offset {offset}). A real loader stops with an error here, after "
                "running every opcode before it.",
                {"offset": str(offset)},
            )

    def persistent_id(self, pid: Any, offset: int) -> None:
        """Record a persistent id."""
        if len(self.persistent_ids) < 10_000_000:
            self.persistent_ids.append(pid)
        if self.first_persid is None:
            self.first_persid = offset

    def flush(self) -> None:
        """Emit the stream's deferred findings."""
        self.ledger.flush()
        if self.first_persid is not None and not self.persistent_ids_expected:
            count = len(self.persistent_ids)
            self.session.emit(
                rules.PERSISTENT_ID,
                self.first_persid,
                f"The pickle hands {count} persistent id(s) to the loader's persistent_load "
                "hook. That is how PyTorch checkpoints reference tensor storage, but this "
                "pickle is not in a checkpoint; what the hook does with them depends on the "
                "program that loads it.",
                {"count": str(count)},
            )


class StreamError(Exception):
    """A structural error: the stream cannot be read past ``offset`` (a loader fails here)."""

    def __init__(self, offset: int, message: str, *, reported: bool = False) -> None:
        """Say where and what; ``reported`` when a finding was already made for it."""
        super().__init__(message)
        self.offset = offset
        self.message = message
        self.reported = reported
