"""Model-extraction signals: sweeps and boundary walks are flagged within a documented number
of queries; a client replaying the reference data is not. Also the adversarial signal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from tests.guard.conftest import ALICE, BOB, Data

SWEEP_WITHIN = 40
"""Queries within which a client sweeping the input space is flagged (README)."""
BOUNDARY_WITHIN = 40
"""Queries within which a client walking the decision boundary is flagged (README)."""


@pytest.fixture
def service(make_guard: Callable[..., Any], data: Data) -> Iterator[Any]:
    from starlette.testclient import TestClient

    from modelshield.guard import build_app

    guard = make_guard(rate={"enabled": False})
    with TestClient(build_app(guard, str(data.tokens))) as c:
        yield c


def first_flag(client: Any, headers: dict[str, str], queries: Iterator[dict[str, float]]) -> int:
    """The number of the first query flagged for extraction (0: never)."""
    for n, q in enumerate(queries, start=1):
        r = client.post("/predict", json={"instances": [q]}, headers=headers)
        assert r.status_code == 200, r.text
        if any(reason.startswith("extraction") for reason in r.json()["reasons"]):
            return n
    return 0


def test_replaying_the_reference_data_is_never_flagged(service: Any, data: Data) -> None:
    rows = data.ref_frame.to_dict("records")
    assert first_flag(service, ALICE, iter(rows[:600])) == 0
    # Nor is live traffic from the same population.
    assert first_flag(service, BOB, iter(data.rows(0, 400))) == 0


def test_a_uniform_sweep_of_the_input_space_is_flagged(service: Any, data: Data) -> None:
    low, high = data.ref_frame.min(), data.ref_frame.max()
    rng = np.random.default_rng(7)

    def sweep() -> Iterator[dict[str, float]]:
        while True:
            yield {k: float(rng.uniform(low[k], high[k])) for k in data.ref_frame.columns}

    n = first_flag(service, ALICE, sweep())
    assert 0 < n <= SWEEP_WITHIN, n


def test_a_grid_one_feature_at_a_time_is_flagged(service: Any, data: Data) -> None:
    base = data.ref_frame.median().to_dict()
    low, high = data.ref_frame.quantile(0.05), data.ref_frame.quantile(0.95)

    def grid() -> Iterator[dict[str, float]]:
        for k in data.ref_frame.columns:
            for v in np.linspace(low[k], high[k], 50):
                yield {**base, k: float(v)}

    n = first_flag(service, ALICE, grid())
    assert 0 < n <= SWEEP_WITHIN, n


def test_a_walk_along_the_decision_boundary_is_flagged(service: Any, data: Data) -> None:
    import joblib

    model = joblib.load(data.model)
    x = data.ref_frame.to_numpy()
    labels = model.predict(x)
    rng = np.random.default_rng(3)
    names = list(data.ref_frame.columns)

    def walk() -> Iterator[dict[str, float]]:
        while True:
            a = x[rng.choice(np.flatnonzero(labels == 0))]
            b = x[rng.choice(np.flatnonzero(labels == 1))]
            for _ in range(6):  # a binary search for the boundary between two points
                mid = (a + b) / 2
                yield dict(zip(names, mid.tolist(), strict=True))
                if model.predict(mid[None, :])[0] == 0:
                    a = mid
                else:
                    b = mid

    n = first_flag(service, ALICE, walk())
    assert 0 < n <= BOUNDARY_WITHIN, n


def test_extraction_in_block_mode_refuses_the_client_and_alerts(
    make_guard: Callable[..., Any], data: Data
) -> None:
    from starlette.testclient import TestClient

    from modelshield.guard import build_app

    guard = make_guard(rate={"enabled": False}, extraction={"action": "block"})
    low, high = data.ref_frame.min(), data.ref_frame.max()
    rng = np.random.default_rng(7)
    with TestClient(build_app(guard, str(data.tokens))) as c:
        codes = []
        for _ in range(SWEEP_WITHIN + 5):
            q = {k: float(rng.uniform(low[k], high[k])) for k in data.ref_frame.columns}
            codes.append(c.post("/predict", json={"instances": [q]}, headers=ALICE).status_code)
        assert 403 in codes
        blocked_from = codes.index(403)
        assert all(code == 403 for code in codes[blocked_from:])
        # Another client is unaffected.
        r = c.post("/predict", json={"instances": data.rows(0, 1)}, headers=BOB)
        assert r.status_code == 200
        assert guard.log.flush(10)
        text = c.get("/metrics", headers={"authorization": "Bearer read-token-0000000000001"})
        assert 'modelshield_guard_check_hits_total{check="extraction"}' in text.text
    import sqlalchemy as sa

    from modelshield.guard import store

    with guard.log.engine.connect() as conn:
        kinds = conn.execute(sa.select(store.alerts.c.kind)).scalars().all()
    assert "extraction" in kinds


def test_adversarial_examples_are_unstable_and_flagged(service: Any, data: Data) -> None:
    """Points pushed just across the decision boundary (the minimal perturbation an evasion
    attack finds) are flagged far more often than ordinary live rows."""
    import joblib

    model = joblib.load(data.model)
    w, b = model.coef_[0], model.intercept_[0]
    rows = data.live.to_numpy()[:100]
    margin = (rows @ w + b) / np.linalg.norm(w)
    # Project each row to just past the boundary: the smallest change that flips it.
    adversarial = rows - np.outer(margin * 1.02, w / np.linalg.norm(w))
    assert (model.predict(adversarial) != model.predict(rows)).all()
    names = list(data.live.columns)
    flagged = sum(
        "adversarial"
        in service.post(
            "/predict", json={"instances": [dict(zip(names, r, strict=True))]}, headers=ALICE
        ).json()["reasons"]
        for r in adversarial.tolist()
    )
    benign = sum(
        "adversarial"
        in service.post("/predict", json={"instances": [q]}, headers=BOB).json()["reasons"]
        for q in data.rows(200, 100)
    )
    # Measured on this data (classes overlap: about 5% of benign rows sit within the noise of
    # the boundary): about 28% of such examples (21-37 of 100 over the seeds 0-11 of the
    # guard's perturbations; 27 with the fixture's seed 0) at a benign flag rate near 1% (0-2
    # of 100).
    assert flagged >= 20, flagged
    assert benign <= 5, benign
