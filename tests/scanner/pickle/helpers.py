"""Helpers for the pickle analyzer tests: a small, fixed callable policy and a runner.

Tests that judge *which* callables are dangerous use :class:`FakeCallables` so that they do not
depend on the built-in lists; tests of real models use the real policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelshield.core.findings import Finding, Location, Severity
from modelshield.core.limits import Limits
from modelshield.core.policy import Policy
from modelshield.scanner.callables import CallablePolicy, Tier, Verdict
from modelshield.scanner.context import ScanContext
from modelshield.scanner.pickle.analyzer import analyze_pickles

_ALIASES = {"__builtin__": "builtins", "posix": "os", "nt": "os", "_operator": "operator"}
DANGEROUS = {
    ("os", "*"),
    ("subprocess", "*"),
    ("pty", "*"),
    ("builtins", "eval"),
    ("builtins", "exec"),
    ("builtins", "__import__"),
    ("builtins", "getattr"),
    ("operator", "attrgetter"),
    ("operator", "methodcaller"),
    ("operator", "itemgetter"),
    ("functools", "partial"),
    ("pkgutil", "resolve_name"),
    ("pydoc", "locate"),
    ("torch.serialization", "load"),
    ("numpy", "__builtins__"),
}
SAFE = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch", "FloatStorage"),
    ("_codecs", "encode"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "bytes"),
    ("builtins", "bytearray"),
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy", "size"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
}


class FakeCallables:
    """A fixed classifier: os/subprocess/eval/exec and the gadgets are dangerous."""

    checked_state_keys: frozenset[str] = frozenset()
    """No class here executes its state."""

    def state_keys(self, module: str, name: str) -> tuple[str, ...]:
        return ()

    def classify(self, module: str, name: str) -> Verdict:
        module = _ALIASES.get(module, module)
        if (module, name) in DANGEROUS or (module, "*") in DANGEROUS:
            return Verdict(module, name, Tier.DANGEROUS, Severity.CRITICAL, "test", "listed")
        if (module, name) in SAFE:
            return Verdict(module, name, Tier.SAFE, None, "safe", "listed")
        return Verdict(module, name, Tier.UNKNOWN, Severity.MEDIUM, "unknown", "not listed")


@dataclass
class Run:
    """What one analysis produced."""

    ctx: ScanContext
    end: int
    findings: list[Finding] = field(default_factory=list)

    @property
    def rules(self) -> list[str]:
        return [f.rule_id for f in self.findings]

    def of(self, rule: str) -> list[Finding]:
        return [f for f in self.findings if f.rule_id == rule]

    def callables(self, rule: str | None = None) -> set[str]:
        return {
            f.evidence["callable"]
            for f in self.findings
            if "callable" in f.evidence and (rule is None or f.rule_id == rule)
        }


def make_ctx(limits: Limits | None = None, callables: Any = None) -> ScanContext:
    policy = Policy(limits=limits or Limits())
    return ScanContext(
        path="sample.pkl",
        policy=policy,
        callables=callables if callables is not None else FakeCallables(),
    )


def analyze(
    data: bytes,
    *,
    limits: Limits | None = None,
    real_policy: bool = False,
    **kwargs: Any,
) -> Run:
    """Run :func:`analyze_pickles` on ``data`` with the fake (or the real) callable policy."""
    callables = CallablePolicy.default() if real_policy else None
    ctx = make_ctx(limits, callables)
    end = analyze_pickles(ctx, memoryview(data), Location("sample.pkl"), **kwargs)
    return Run(ctx, end, list(ctx.findings))
