"""Every safe entry, imported and walked: what a load runs must not reach a sink.

The safe lists name classes and functions exactly (``callables_safe.toml`` by hand,
``callables_generated.toml`` by ``scripts/generate_safe_callables.py``). Here each entry is
imported from the installed libraries and its load paths are walked through bytecode
(``tests/scanner/load_paths.py``): ``__new__``, ``__init__``, ``__setstate__``, container hooks,
``__del__``, ``__call__``... and functions themselves. A library release that adds a path to
``exec``, an import by name, file or network I/O, a process, ctypes or a nested loader fails
this file until the entry is reviewed (``load_paths.REVIEWED``) or regenerated away.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from modelshield.scanner import callables
from modelshield.scanner.callables import CallablePolicy, Tier
from tests.scanner import load_paths

pytestmark = pytest.mark.slow  # imports every module of scikit-learn, scipy, pandas and torch


def _safe_entries() -> Iterator[tuple[str, str, tuple[str, ...]]]:
    """(module, qualname, state keys) of every exact safe entry, hand-written and generated."""
    lists = callables._builtin_lists()
    for module, qualname in lists.safe.exact:
        yield module, qualname, lists.state_keys.get((module, qualname), ())
    for text in lists.generated:
        module, _, qualname = text.partition(":")
        yield module, qualname, ()


def test_no_package_wide_safe_entry_remains() -> None:
    """A package-wide allow admits names nobody inspected (other releases, re-exports)."""
    assert callables._builtin_lists().safe.wide == {}


def test_every_safe_entry_reaches_no_unreviewed_sink() -> None:
    walker = load_paths.Walker()
    problems: list[str] = []
    walked = missing = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module, qualname, keys in _safe_entries():
            try:
                obj: Any = load_paths.resolve(module, qualname)
            except Exception:  # a library not installed, or another release's module path
                missing += 1
                continue
            walked += 1
            for hit in walker.hits_of(obj):
                review = load_paths.review_of(hit)
                if review is None:
                    problems.append(f"{module}:{qualname}: {hit.describe()}")
                elif review.state_keys and not set(review.state_keys) <= set(keys):
                    problems.append(
                        f"{module}:{qualname}: {hit.describe()} is accepted because the scanner "
                        f"checks {review.state_keys}, but its entry does not name them"
                    )
    assert walked > 3000, (walked, missing)
    assert not problems, "\n".join(problems[:50])


def test_the_walk_finds_the_known_cases() -> None:
    """Guards the test above: the scipy exec and the scikit-learn network path are seen."""
    scipy_stats = pytest.importorskip("scipy.stats")
    walker = load_paths.Walker()
    norm = {h.sink for h in walker.hits_of(type(scipy_stats.norm)) if h.hook == "__setstate__"}
    assert "builtins:exec" in norm
    monitor = pytest.importorskip("sklearn.callback._scoring_monitor").ScoringMonitor
    sinks = {h.sink for h in walker.hits_of(monitor) if h.hook == "__setstate__"}
    assert "multiprocessing.connection:Client" in sinks
    assert not any(load_paths.review_of(h) for h in walker.hits_of(monitor))


def test_every_review_is_still_needed() -> None:
    """A review whose sink no longer exists in the installed libraries is stale."""
    walker = load_paths.Walker()
    seen: set[tuple[str, str]] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module, qualname, _keys in _safe_entries():
            try:
                obj = load_paths.resolve(module, qualname)
            except Exception:
                continue
            seen.update((h.chain[-1], h.sink) for h in walker.hits_of(obj))
    stale = [key for key in load_paths.REVIEWED if key not in seen]
    # Reviews name every sink of a family; at least one of each family must still be hit.
    assert len(stale) < len(load_paths.REVIEWED), stale
    assert (
        "scipy.stats._distn_infrastructure:rv_generic._attach_argparser_methods",
        "builtins:exec",
    ) in seen


# ---- re-exports ------------------------------------------------------------------------------
SCOPE_PACKAGES = (
    "sklearn",
    "scipy.sparse",
    "scipy.stats",
    "scipy.special",
    "scipy.interpolate",
    "scipy.spatial",
    "pandas",
    "torch.nn.modules",
    "torch.ao.nn",
    "torch.optim",
    "numpy.dtypes",
)


def _skip(module: str) -> bool:
    lists = callables._builtin_lists()
    return callables._is_test_module(module) or lists.dangerous.package_of(module) is not None


def test_reexported_denied_callables_resolve_to_what_they_are() -> None:
    """``types.MethodType`` reachable as a scikit-learn module attribute is types.MethodType."""
    policy = CallablePolicy.default()
    leaks: list[str] = []
    checked = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for package in SCOPE_PACKAGES:
            for module in load_paths.walk_modules(package, _skip):
                for attr, value in list(vars(module).items()):
                    if isinstance(value, types.ModuleType) or not callable(value):
                        continue
                    home = getattr(value, "__module__", None)
                    qualname = getattr(value, "__qualname__", None)
                    if not isinstance(home, str) or not isinstance(qualname, str):
                        continue
                    real = policy.classify(home, qualname)
                    if real.tier is not Tier.DANGEROUS:
                        continue
                    checked += 1
                    verdict = policy.classify(module.__name__, attr)
                    if verdict.tier is not Tier.DANGEROUS:
                        leaks.append(f"{module.__name__}:{attr} is {home}:{qualname}: {verdict}")
    assert checked > 100
    assert not leaks, "\n".join(leaks[:40])


@pytest.mark.parametrize(
    ("module", "name", "category"),
    [
        ("sklearn.utils._available_if", "MethodType", "code-execution"),
        ("scipy.spatial.transform._rotation", "ModuleType", "code-execution"),
        ("sklearn.callback._scoring_monitor", "open_listener", "network"),
    ],
)
def test_known_reexports_of_denied_objects_are_dangerous(
    module: str, name: str, category: str
) -> None:
    pytest.importorskip(module)
    verdict = CallablePolicy.default().classify(module, name)
    assert verdict.tier is Tier.DANGEROUS, verdict
    assert verdict.category == category
