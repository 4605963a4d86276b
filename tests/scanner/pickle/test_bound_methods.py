"""Bound methods: pickle writes ``getattr(obj, "name")`` for them.

scipy's discrete distributions keep ``numpy.vectorize(getattr(self, "_entropy"))``, so every
pickled ``stats.randint``/``poisson`` (the usual RandomizedSearchCV parameters) holds a
``builtins.getattr`` call. Binding a method runs nothing: the call is judged by the method it
returns (its exact entry). Any other ``getattr`` stays a dangerous call.
"""

from __future__ import annotations

import pickle

import pytest

from modelshield.core.findings import Severity
from tests.scanner.pickle.helpers import analyze
from tests.scanner.pickle.hostile import Asm

stats = pytest.importorskip("scipy.stats")
model_selection = pytest.importorskip("sklearn.model_selection")
tree = pytest.importorskip("sklearn.tree")
datasets = pytest.importorskip("sklearn.datasets")

DISCRETE = ("randint", "poisson", "binom", "hypergeom", "geom", "bernoulli", "zipf")


@pytest.mark.parametrize("name", DISCRETE)
@pytest.mark.parametrize("proto", [2, 4, 5])
def test_real_discrete_distributions_are_clean(name: str, proto: int) -> None:
    dist = getattr(stats, name)
    for obj in (dist, dist(*([3] * dist.numargs))):
        data = pickle.dumps(obj, protocol=proto)
        assert b"getattr" in data and b"_entropy" in data  # the spelling this test is about
        run = analyze(data, real_policy=True)
        assert run.findings == [], [(f.rule_id, f.evidence.get("callable")) for f in run.findings]


def test_a_search_over_discrete_parameters_is_clean() -> None:
    x, y = datasets.load_iris(return_X_y=True)
    search = model_selection.RandomizedSearchCV(
        tree.DecisionTreeClassifier(random_state=0),
        {"max_depth": stats.randint(1, 6), "min_samples_leaf": stats.poisson(3)},
        n_iter=2,
        cv=2,
        random_state=0,
    ).fit(x, y)
    run = analyze(pickle.dumps(search, protocol=4), real_policy=True)
    assert run.findings == [], [(f.rule_id, f.evidence.get("callable")) for f in run.findings]


def _getattr_on(module: str, cls: str, attr: str) -> bytes:
    """``getattr(module.cls(), attr)``: an instance built by NEWOBJ, then a bound method."""
    a = Asm(4).global_("builtins", "getattr").mark()
    a.global_(module, cls).empty_tuple().newobj()
    return a.binunicode(attr).tuple().reduce().stop().bytes()


def test_getattr_naming_an_unlisted_method_stays_a_dangerous_call() -> None:
    run = analyze(_getattr_on("pandas", "DataFrame", "to_csv"), real_policy=True)
    called = {(f.rule_id, f.evidence.get("callable")) for f in run.findings}
    assert ("PICKLE-CALL-DANGEROUS", "builtins.getattr") in called


def test_getattr_naming_a_dunder_stays_a_dangerous_call() -> None:
    data = _getattr_on("scipy.stats._discrete_distns", "randint_gen", "__class__")
    run = analyze(data, real_policy=True)
    assert any(
        f.rule_id == "PICKLE-CALL-DANGEROUS" and f.severity >= Severity.HIGH for f in run.findings
    )


def test_getattr_on_an_object_an_unknown_class_built_stays_a_dangerous_call() -> None:
    run = analyze(_getattr_on("mypkg.models", "Net", "_entropy"), real_policy=True)
    called = {(f.rule_id, f.evidence.get("callable")) for f in run.findings}
    assert ("PICKLE-CALL-DANGEROUS", "builtins.getattr") in called


def test_the_safe_method_is_vouched_only_where_it_is_bound() -> None:
    # One stream binds the safe method and also calls getattr on a module: that call counts.
    a = Asm(4).global_("builtins", "getattr").memoize().mark()
    a.global_("scipy.stats._discrete_distns", "randint_gen").empty_tuple().newobj()
    a.binunicode("_entropy").tuple().reduce().pop()
    a.binget(0).mark().global_("os", "path").binunicode("join").tuple().reduce()
    run = analyze(a.stop().bytes(), real_policy=True)
    called = {(f.rule_id, f.evidence.get("callable")) for f in run.findings}
    assert ("PICKLE-CALL-DANGEROUS", "builtins.getattr") in called
