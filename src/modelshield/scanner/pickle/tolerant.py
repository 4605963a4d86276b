"""The tolerant pass: what a pickle loader does with bytes that were not recognised as a pickle.

Every loader that falls back to pickle (``pickle.load``, ``torch.load`` on a file that is not a
zip, ``joblib.load`` on one it does not see as compressed, ``numpy.load(allow_pickle=True)`` on
one without the ``.npy`` magic) reads the file from byte 0. So does a program that calls
``pickle.load`` on a file of another format, or on an archive member. This pass follows that
load on any buffer the detector did not call a pickle (unknown content, and the first bytes of
every other format: a tar header whose name is a pickle is both).

It is quiet by construction. :func:`~.sniff.walk` follows the unpickler from byte 0 (no
persistent-id hook) to the first opcode where CPython's unpicklers raise; text, images and
archives fail within a few bytes. When no import was reached before that point nothing can
have run, and the pass ends there. Otherwise the interpreter analyses exactly the bytes the
loader executes, in a scratch context, and its findings are kept only when the loader would
call something or import a callable the lists call dangerous: prose that reads as
``GLOBAL cat dog`` names a module that does not exist, and reporting it would flag licences and
word lists.
"""

from __future__ import annotations

from modelshield.core.findings import Finding, Location, Severity
from modelshield.scanner.context import LimitExceeded, ScanContext
from modelshield.scanner.memio import Buffer
from modelshield.scanner.pickle import rules
from modelshield.scanner.pickle.analyzer import analyze_pickles
from modelshield.scanner.pickle.sniff import BUDGET, FAILED, OPS, walk
from modelshield.scanner.rules import SCAN_LIMIT

#: Opcodes the walk follows before it hands the rest to the interpreter.
MAX_OPS = 100_000

#: Findings of the scratch analysis that are worth reporting once the load is shown to run
#: something (structural findings are replaced by one that says where the loader fails).
_KEPT = rules.UNSAFE_RULES | {rules.EMBEDDED.id, SCAN_LIMIT.id}


def try_as_pickle(ctx: ScanContext, data: Buffer, location: Location) -> bool:
    """Report what loading ``data`` as a pickle from byte 0 would import or call.

    Returns whether anything was reported. Nothing is reported unless the load reaches a call,
    or an import of a callable the lists mark dangerous, before CPython fails.
    """
    w = walk(data, 0, max_ops=MAX_OPS, persistent_load=False)
    if not w.imports and w.outcome not in (OPS, BUDGET):
        return False
    stop = len(data) if w.outcome in (OPS, BUDGET) else w.end
    scratch = ScanContext(
        path=ctx.path,
        policy=ctx.policy,
        callables=ctx.callables,
        started=ctx.started,
        depth=ctx.depth,
    )
    limit: LimitExceeded | None = None
    try:
        analyze_pickles(scratch, memoryview(data)[:stop], location, max_streams=1)
    except LimitExceeded as e:
        if e.limit == "max_seconds_per_file":
            raise
        limit = e
    kept = [f for f in scratch.finish_findings() if f.rule_id in _KEPT]
    if not any(_runs_something(f) for f in kept):
        return False
    ctx.saw_format("pickle")
    ctx.imports |= scratch.imports
    ctx.errors.extend(scratch.errors)
    ctx.bytes_read += scratch.bytes_read
    for finding in kept:
        ctx.add(finding)
    if w.outcome == FAILED:
        ctx.add(
            rules.MALFORMED.finding(
                location.at(w.end),
                "This content was not recognised as a pickle, but a pickle loader reading it "
                f"from its first byte runs every opcode up to offset {w.end}, where it fails "
                f"({w.reason}). What runs before that point is reported here.",
                evidence={"offset": str(w.end), "reason": w.reason},
            )
        )
    if limit is not None:
        raise limit
    return True


def _runs_something(finding: Finding) -> bool:
    """A finding that means the load calls something or imports a dangerous callable."""
    return finding.severity >= Severity.HIGH or "calls" in finding.evidence
