"""Judging a dotted name from a configuration: framework allow tables, then the callable policy.

Configuration names callables as one dotted string (``torch.nn.Linear``,
``nemo.collections.asr.modules.ConformerEncoder``), and loaders split it in more than one way:
Hydra's ``_locate``, jsonargparse and jsonpickle import the longest prefix that is a module and
walk the rest as attributes; PyYAML's ``find_python_name`` splits at the last dot. The callable
policy judges ``module:qualname`` pairs, so :func:`judge_dotted` tries every split the loader
could take: an exact configuration allow entry for a split makes that split safe (as an exact
allow entry in a policy does), any other split the policy denies makes the name dangerous (the
worst severity wins); otherwise any split on an allow list makes it safe; otherwise it is
unknown.

Allow entries for configuration live apart from the pickle lists: ``data/config_targets.toml``
(hand-written, one table per framework, a reason beside each exact entry) and
``data/config_targets_generated.toml`` (written by ``scripts/generate_config_targets.py`` from
the installed PyTorch). They say "a config of this framework names this class and passes it
keyword arguments", which is not what a pickle allow entry says (a pickle can also set any
attribute); like Keras' list, they are never used for pickles. Entries are exact
``module:qualname`` names: there are no package-wide entries.
"""

from __future__ import annotations

import functools
import re

from msgspec import Struct

from modelshield.core.findings import Severity
from modelshield.scanner.callables import Tier, Verdict, normalize
from modelshield.scanner.context import ScanContext

TABLE_FILES = ("config_targets.toml", "config_targets_generated.toml")
"""The allow tables for configuration targets, under ``scanner/data``."""

_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
#: Names longer than this are judged without being split every way (hostile input).
_MAX_SPLITS = 12


class Judgement(Struct, frozen=True):
    """What a dotted name resolves to and where it stands."""

    module: str
    """The module, normalised (``posix`` is ``os``)."""
    qualname: str
    """The name inside the module."""
    tier: Tier
    """Safe, dangerous or unknown."""
    severity: Severity | None
    """Severity for a finding (None when safe)."""
    reason: str
    """Why: the allow table's reason, or the callable policy's."""
    category: str = ""
    """The policy's category (``process``, ``code-execution``...) for a dangerous name."""

    @property
    def name(self) -> str:
        """The dotted name as judged (``os.system``)."""
        return f"{self.module}.{self.qualname}" if self.qualname else self.module

    @property
    def imported(self) -> str:
        """The name as file results list imports (``os:system``)."""
        return f"{self.module}:{self.qualname}" if self.qualname else self.module


def is_dotted(text: str) -> bool:
    """Whether ``text`` is a dotted Python name (``a``, ``a.b.C``)."""
    return bool(_DOTTED.fullmatch(text))


@functools.cache
def allow_tables() -> dict[str, str]:
    """Every configuration allow entry, ``module:qualname`` to its reason (read once)."""
    import tomllib

    from modelshield.scanner.callables import _data_bytes

    entries: dict[str, str] = {}
    for file in TABLE_FILES:
        data = tomllib.loads(_data_bytes(file).decode("utf-8"))
        for table in data.values():
            if isinstance(table, dict):
                for key, reason in dict(table.get("entries", {})).items():
                    entries[str(key)] = str(reason)
    return entries


def _splits(path: str, *, last_dot_only: bool) -> list[tuple[str, str]]:
    parts = path.split(".")
    if len(parts) == 1:
        return [("builtins", path)]
    if last_dot_only:
        return [(".".join(parts[:-1]), parts[-1])]
    cuts = range(len(parts) - 1, max(0, len(parts) - 1 - _MAX_SPLITS), -1)
    return [(".".join(parts[:i]), ".".join(parts[i:])) for i in cuts]


def judge_dotted(ctx: ScanContext, path: str, *, last_dot_only: bool = False) -> Judgement:
    """Judge the callable a loader reaches through the dotted name ``path``.

    ``last_dot_only``: the loader splits at the last dot only (PyYAML's python tags); a name
    without a dot is looked up in ``builtins`` either way.
    """
    tables = allow_tables()
    verdicts: list[Verdict] = []
    for module, name in _splits(path, last_dot_only=last_dot_only):
        module, name = normalize(module, name)
        reason = tables.get(f"{module}:{name}")
        if reason is not None:  # an exact entry for this very split, like a policy's allow
            verdicts.append(Verdict(module, name, Tier.SAFE, None, "safe", reason))
        else:
            verdicts.append(ctx.callables.classify(module, name))
    dangerous = [v for v in verdicts if v.tier is Tier.DANGEROUS]
    if dangerous:
        worst = max(dangerous, key=lambda v: v.severity or Severity.HIGH)
        return Judgement(
            worst.module,
            worst.name,
            Tier.DANGEROUS,
            max(worst.severity or Severity.HIGH, Severity.HIGH),
            worst.reason,
            worst.category,
        )
    safe = next((v for v in verdicts if v.tier is Tier.SAFE), None)
    if safe is not None:
        return Judgement(safe.module, safe.name, Tier.SAFE, None, safe.reason)
    first = verdicts[0]
    return Judgement(
        first.module,
        first.name,
        Tier.UNKNOWN,
        first.severity or Severity.MEDIUM,
        f"not on the configuration allow tables nor the callable allow list. If you trust "
        f'it, add "{first.module}:{first.name}" to [callables] allow in your policy file',
    )


def judge_module(ctx: ScanContext, module: str) -> Judgement:
    """Judge the import of a module by name (``python/module:``, ``import_module``): dangerous
    when the policy denies the module or anything it names as a module attribute, else
    unknown (importing a module runs its code, and the module object reaches all of it)."""
    head, _, last = module.rpartition(".")
    verdict = ctx.callables.classify(head or "builtins", last)
    base, _ = normalize(module, "")
    if verdict.tier is Tier.DANGEROUS:
        return Judgement(
            base,
            "",
            Tier.DANGEROUS,
            max(verdict.severity or Severity.HIGH, Severity.HIGH),
            verdict.reason,
            verdict.category,
        )
    return Judgement(
        base,
        "",
        Tier.UNKNOWN,
        Severity.MEDIUM,
        "a module import runs the module's code and hands the whole module to the file; no "
        "allow list covers module imports",
    )
