"""Per-stream record of what a pickle imports and calls, turned into findings at the end.

One finding per distinct callable per stream, whatever the number of opcodes that name it:
``PICKLE-CALL-DANGEROUS`` when a dangerous callable is called (with the first call's
arguments as evidence), ``PICKLE-IMPORT-DANGEROUS`` when it is only imported,
``PICKLE-CALL-CODE-ARGUMENT`` when an unlisted callable receives code-like text, and
``PICKLE-IMPORT-UNKNOWN`` for any other unlisted callable. Safe callables produce no finding.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from msgspec import Struct
from msgspec.structs import replace

from modelshield.core.findings import Finding, Location, Severity
from modelshield.core.rules import Rule
from modelshield.scanner.callables import Tier, Verdict
from modelshield.scanner.context import ScanContext
from modelshield.scanner.pickle import rules
from modelshield.scanner.pickle.values import brief, strings_in

#: Text that reads like Python code, a template that escapes its sandbox through dunder
#: attributes, or a shell command line. Deliberately literal: it only ever raises an
#: already-unlisted callable from medium to high.
CODE_LIKE = re.compile(
    r"import\s|__import__|__globals__|__builtins__|__subclasses__|__mro__|__code__|"
    r"os\.system|os\.popen|\bexec\s*\(|\beval\s*\(|\bcompile\s*\(|"
    r"subprocess|/bin/(?:ba|da|z)?sh\b|\$\(|`|;\s*rm\s|\bcurl\s|\bwget\s|\bnc\s+-",
)


#: Calls per callable whose arguments are searched for code-like text.
_CODE_CHECKS = 64

#: Opcodes that import by name; anything else is a resolver gadget (evidence "via").
_IMPORT_OPCODES = frozenset({"GLOBAL", "STACK_GLOBAL", "INST"})

#: Distinct callables held per stream; past it the ledger reports what it holds and starts
#: again (a stream can name millions of callables, each a finding).
MAX_ENTRIES = 4096

#: Work charged to ``ctx.opcodes`` per import (an import costs about that many opcodes).
IMPORT_COST = 16


def code_like(value: Any) -> str | None:
    """The first constant string inside ``value`` that looks like code, or None."""
    for text in strings_in(value):
        if CODE_LIKE.search(text[:65536]):
            return text
    return None


class _Entry(Struct):
    """What one stream did with one callable."""

    verdict: Verdict
    written: str
    offset: int
    opcode: str
    calls: int = 0
    call_offset: int | None = None
    call_opcode: str = ""
    args: str = ""
    code: str | None = None
    vouched: bool = False


class Ledger:
    """Collects imports and calls of one pickle stream; :meth:`flush` emits the findings."""

    def __init__(
        self,
        ctx: ScanContext,
        location: Location,
        classify: Callable[[str, str], Verdict],
        *,
        found_by: tuple[str, str] | None = None,
    ) -> None:
        """``classify`` is the session's cached classifier (it also records ``ctx.imports``).

        ``found_by`` is ``(evidence, sentence)`` for findings made by something other than the
        interpreter (the linear pass): the evidence goes under ``found_by``, the sentence is
        added to each message.
        """
        self._ctx = ctx
        self._location = location
        self._classify = classify
        self._found_by = found_by
        self._entries: dict[tuple[str, str], _Entry] = {}

    def _entry(
        self, key: tuple[str, str], verdict: Verdict, written: str, offset: int, opcode: str
    ) -> _Entry:
        if len(self._entries) >= MAX_ENTRIES:
            self.flush()
        entry = self._entries[key] = _Entry(verdict, written, offset, opcode)
        return entry

    def imported(self, module: str, name: str, opcode: str, offset: int) -> Verdict:
        """Record an import and return its verdict."""
        self._ctx.opcodes += IMPORT_COST
        verdict = self._classify(module, name)
        if verdict.tier is not Tier.SAFE:
            key = (verdict.module, verdict.name)
            if key not in self._entries:
                self._entry(key, verdict, f"{module}.{name}", offset, opcode)
        return verdict

    def called(
        self, module: str, name: str, args: Any, kwargs: Any, opcode: str, offset: int
    ) -> None:
        """Record a call of an imported callable (safe ones cost nothing)."""
        verdict = self._classify(module, name)
        if verdict.tier is Tier.SAFE:
            return
        key = (verdict.module, verdict.name)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entry(key, verdict, f"{module}.{name}", offset, opcode)
        entry.calls += 1
        if entry.call_offset is None:
            entry.call_offset = offset
            entry.call_opcode = opcode
            entry.args = brief(args) if kwargs is None else f"{brief(args)}, {brief(kwargs)}"
        # The heuristic looks at the first calls only: a class instantiated a million times
        # must not cost a million argument searches.
        if entry.code is None and verdict.tier is Tier.UNKNOWN and entry.calls <= _CODE_CHECKS:
            entry.code = code_like(args) or (code_like(kwargs) if kwargs is not None else None)

    def vouch(self, module: str, name: str) -> None:
        """A call whose input was analysed in place (a nested loader of constant bytes): the
        import alone is then no finding; any other call of the same callable still is."""
        verdict = self._classify(module, name)
        entry = self._entries.get((verdict.module, verdict.name))
        if entry is not None:
            entry.vouched = True

    def flush(self) -> None:
        """Emit one finding per recorded callable (in order of first appearance)."""
        entries, self._entries = self._entries, {}
        ctx = self._ctx
        for entry in entries.values():
            if entry.vouched and not entry.calls:
                continue
            rule, severity = self._rule(entry)
            if not ctx.wants(rule.id, severity):
                continue  # counted, not built: it would be dropped
            finding = self._finding(entry)
            if self._found_by is not None:
                evidence, sentence = self._found_by
                finding = replace(
                    finding,
                    message=f"{finding.message} {sentence}",
                    evidence={**finding.evidence, "found_by": evidence},
                )
            ctx.add(finding)

    @staticmethod
    def _rule(e: _Entry) -> tuple[Rule, Severity]:
        """The rule and severity :meth:`_finding` gives an entry (cheaply, before building)."""
        v = e.verdict
        if v.tier is Tier.DANGEROUS:
            rule = rules.CALL_DANGEROUS if e.calls else rules.IMPORT_DANGEROUS
            return rule, v.severity or rule.severity
        if e.code is not None:
            rule = rules.CALL_CODE_ARGUMENT
            return rule, max(rule.severity, v.severity or Severity.INFO)
        return rules.IMPORT_UNKNOWN, v.severity or rules.IMPORT_UNKNOWN.severity

    def _finding(self, e: _Entry) -> Finding:
        v = e.verdict
        dotted = f"{v.module}.{v.name}"
        evidence = {"callable": dotted, "opcode": e.call_opcode or e.opcode}
        if e.opcode not in _IMPORT_OPCODES:
            evidence["via"] = e.opcode
        if e.written != dotted:
            evidence["written_as"] = e.written
        if e.calls:
            evidence["args"] = e.args
            evidence["calls"] = str(e.calls)
        evidence["category"] = v.category
        evidence["reason"] = v.reason
        offset = e.call_offset if e.call_offset is not None else e.offset
        loc = self._location.at(offset)
        if v.tier is Tier.DANGEROUS:
            if e.calls:
                return rules.CALL_DANGEROUS.finding(
                    loc,
                    f"Loading this pickle calls {dotted}{_args(e.args)} ({v.category}: "
                    f"{v.reason}). Do not load it; it runs before any result is returned.",
                    title=f"Pickle calls dangerous callable {dotted}",
                    severity=v.severity,
                    evidence=evidence,
                )
            return rules.IMPORT_DANGEROUS.finding(
                loc,
                f"The pickle imports {dotted} ({v.category}: {v.reason}). A loaded pickle that "
                "references it can call it; no model needs it.",
                title=f"Pickle imports dangerous callable {dotted}",
                severity=v.severity,
                evidence=evidence,
            )
        hint = rules.ALLOW_HINT.replace("package.module:Name", f"{v.module}:{v.name}")
        if e.code is not None:
            evidence["code"] = e.code[:200]
            severity = max(rules.CALL_CODE_ARGUMENT.severity, v.severity or Severity.INFO)
            return rules.CALL_CODE_ARGUMENT.finding(
                loc,
                f"The pickle calls {dotted}, which is not on the safe list, with an argument that "
                f"looks like code or a shell command: {e.code[:120]!r}. Treat the file as "
                f"hostile unless you know why it does this. {hint}",
                severity=severity,
                evidence=evidence,
            )
        action = "imports and calls" if e.calls else "imports"
        return rules.IMPORT_UNKNOWN.finding(
            loc,
            f"The pickle {action} {dotted} (module {v.module!r}), which is not on the safe list. "
            f"Loading the file imports that module and runs whatever it does. {hint}",
            title=f"Pickle imports unlisted callable {dotted}",
            severity=v.severity,
            evidence=evidence,
        )


def _args(args: str) -> str:
    """Render evidence arguments as a call: ``('id',)`` becomes ``('id')``."""
    if not args:
        return ""
    if not args.startswith("("):
        return f"({args})"
    return args[:-2] + ")" if args.endswith(",)") else args
