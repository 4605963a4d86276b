"""Requests in flight together advance in phases (``Guard.process``): every arrived request
is screened and sent to the model before any of them is finished, then each is decided,
logged and answered; the answers and the records are those of the same requests served one
after the other, and a lone request yields to the event loop once."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelshield.guard import engine as engine_module

from .conftest import Data, rows_in_db


def _bodies(data: Data, n: int) -> list[bytes]:
    return [json.dumps({"instances": [row]}).encode() for row in data.rows(0, n)]


def _answers(answers: list[Any]) -> list[tuple[int, dict[str, Any]]]:
    out = []
    for a in answers:
        payload = json.loads(a.body)
        payload.pop("request_id")
        out.append((a.status, payload))
    return out


def test_requests_in_flight_together_advance_in_phases(
    make_guard: Callable[..., Any], data: Data, tmp_path: Path
) -> None:
    bodies = _bodies(data, 6)
    events: list[str] = []

    def watch(guard: Any) -> None:
        predict, first, submit = (
            guard.predictor.predict,
            guard.predictor.predict_first,
            guard._submit,
        )

        def predict_(rows: Any, matrix: Any = None) -> Any:
            events.append("model")
            return predict(rows, matrix)

        def first_(matrix: Any) -> Any:  # the one-instance call (and its copies)
            events.append("model")
            return first(matrix)

        def submit_(*a: Any, **k: Any) -> Any:
            events.append("log")
            return submit(*a, **k)

        guard.predictor.predict, guard.predictor.predict_first = predict_, first_
        guard._submit = submit_

    together = make_guard()
    together.log.start()
    watch(together)

    async def concurrent() -> list[Any]:
        return await asyncio.gather(
            *(together.process(b, "alice", time.perf_counter()) for b in bodies)
        )

    answers = asyncio.run(concurrent())
    assert together.in_flight == 0
    assert events == ["model"] * 6 + ["log"] * 6  # every model call before any record
    assert len(rows_in_db(together)) == 6
    together.log.close()

    alone = make_guard(db=str(tmp_path / "alone.db"))
    alone.log.start()

    async def sequential() -> list[Any]:
        return [await alone.process(b, "alice", time.perf_counter()) for b in bodies]

    expected = asyncio.run(sequential())
    assert _answers(answers) == _answers(expected)
    assert len(rows_in_db(alone)) == 6
    alone.log.close()


def test_a_lone_request_yields_once_and_a_crowd_more(
    make_guard: Callable[..., Any], data: Data, monkeypatch: Any
) -> None:
    guard = make_guard()
    guard.log.start()
    yields = 0
    sleep = asyncio.sleep

    async def counting(delay: float, result: Any = None) -> Any:
        nonlocal yields
        yields += delay == 0
        return await sleep(delay, result)

    monkeypatch.setattr(engine_module.asyncio, "sleep", counting)
    bodies = _bodies(data, 4)

    async def one() -> Any:
        return await guard.process(bodies[0], "alice", time.perf_counter())

    assert asyncio.run(one()).status == 200
    assert yields == 1
    yields = 0

    async def crowd() -> list[Any]:
        return await asyncio.gather(
            *(guard.process(b, "alice", time.perf_counter()) for b in bodies)
        )

    assert [a.status for a in asyncio.run(crowd())] == [200] * 4
    # On entry (4), after the model's call and before the answer while others are in
    # flight (the last one finishes alone).
    assert 4 + 2 <= yields <= 4 * 3
    assert guard.in_flight == 0
    guard.log.close()
