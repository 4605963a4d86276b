"""The other shapes of the guard: proxy to an upstream model server, and ASGI middleware."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.guard.conftest import ALICE, Data, ServerThread, rows_in_db


def upstream_app(data: Data, delay: float = 0.0) -> Any:
    from modelshield.core.policy import Policy
    from modelshield.guard.app import bare_app
    from modelshield.guard.predictors import HostedPredictor

    predictor = HostedPredictor.open(str(data.model), Policy(), list(data.live.columns), True)
    app = bare_app(predictor, list(data.live.columns))
    if not delay:
        return app

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await asyncio.sleep(delay)
        await app(scope, receive, send)

    return slow


def proxy(data: Data, tmp_path: Path, url: str, **table: Any) -> Any:
    from modelshield.core.policy import Policy
    from modelshield.guard import build_guard

    return build_guard(
        str(data.reference),
        Policy.from_mapping({"guard": table}),
        upstream=url,
        db=str(tmp_path / "proxy.db"),
        target="label",
        spool=str(tmp_path / "proxy.spool"),
    )


def test_proxy_to_an_upstream_gives_its_predictions(data: Data, tmp_path: Path) -> None:
    import joblib
    from starlette.testclient import TestClient

    from modelshield.guard import build_app

    with ServerThread(upstream_app(data)) as upstream:
        guard = proxy(data, tmp_path, upstream.url + "/predict")
        assert guard.predictor.provenance.kind == "upstream"
        with TestClient(build_app(guard, str(data.tokens))) as c:
            r = c.post("/predict", json={"instances": data.rows(0, 4)}, headers=ALICE)
            assert r.status_code == 200, r.text
            expected = joblib.load(data.model).predict(data.live.iloc[:4].to_numpy()).tolist()
            assert r.json()["predictions"] == expected
            assert "instability" in json.loads(rows_in_db(guard)[-1]["scores"])


@pytest.mark.parametrize("failure", ["down", "slow"])
def test_upstream_down_or_slow_is_a_504_with_a_record(
    data: Data, tmp_path: Path, failure: str
) -> None:
    from starlette.testclient import TestClient

    from modelshield.guard import build_app

    with ServerThread(upstream_app(data, delay=0.0)) as upstream:
        # Calibration at start-up sends the reference through the upstream; on a loaded
        # machine a batch can take longer than the short timeout this test is about.
        guard = proxy(data, tmp_path, upstream.url + "/predict", upstream_timeout_s=30)
    guard.predictor.timeout = 0.3  # the serving client is made at the first request
    # The upstream answered at start-up (calibration); now it is down, or too slow.
    if failure == "slow":
        slow = ServerThread(upstream_app(data, delay=2.0), port=upstream.port)
        slow.__enter__()
    try:
        with TestClient(build_app(guard, str(data.tokens))) as c:
            r = c.post("/predict", json={"instances": data.rows(0, 1)}, headers=ALICE)
            assert r.status_code == 504, r.text
            assert r.json()["error"] == "upstream-timeout"
            [record] = rows_in_db(guard)
            assert (record["status"], record["decision"]) == (504, "error")
            assert json.loads(record["reasons"]) == ["upstream-timeout"]
    finally:
        if failure == "slow":
            slow.__exit__()


def test_middleware_screens_an_existing_app(data: Data, tmp_path: Path) -> None:
    import joblib
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from modelshield.core.policy import Policy
    from modelshield.guard import build_guard
    from modelshield.guard.middleware import GuardMiddleware

    model = joblib.load(data.model)
    names = list(data.live.columns)
    calls = []

    async def predict(request: Request) -> JSONResponse:
        body = await request.json()
        calls.append(len(body["instances"]))
        x = [[inst[n] for n in names] for inst in body["instances"]]
        return JSONResponse({"predictions": model.predict(x).tolist()})

    def fn(rows: list[dict[str, Any]]) -> list[Any]:
        out: list[Any] = model.predict_proba([[r[n] for n in names] for r in rows]).tolist()
        return out

    app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
    guard = build_guard(
        str(data.reference),
        Policy.from_mapping({"guard": {"auth": False, "client_header": "x-client"}}),
        predict=fn,
        db=str(tmp_path / "mw.db"),
        target="label",
        spool=str(tmp_path / "mw.spool"),
    )
    app.add_middleware(GuardMiddleware, guard=guard)
    with TestClient(app) as c:
        r = c.post("/predict", json={"instances": data.rows(0, 3)}, headers={"x-client": "app1"})
        assert r.status_code == 200
        assert r.json() == {"predictions": model.predict(data.live.iloc[:3].to_numpy()).tolist()}
        bad = c.post("/predict", json={"instances": [{**data.rows(0, 1)[0], "f0": 1e9}]})
        assert bad.status_code == 422
        assert calls == [3]  # the blocked request never reached the app
        assert c.post("/predict", content=b"{").status_code == 400
    records = rows_in_db(guard)
    assert [r["status"] for r in records] == [200, 422, 400]
    assert records[0]["client"] == "app1"
    assert json.loads(records[0]["prediction"]) == r.json()["predictions"]
    assert "instability" in json.loads(records[0]["scores"])
    guard.log.close()
