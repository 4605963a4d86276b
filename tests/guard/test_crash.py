"""``kill -9`` during load: what survives is counted against the documented bound.

With ``durability = "batched"`` a crash loses at most the records of requests answered in the
last ``flush_interval_ms`` plus the commit in progress; with ``durability = "commit"`` it
loses none that was answered.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from modelshield.guard import store
from tests.guard.conftest import ALICE, Data, free_port

COMMIT_MARGIN_S = 0.5
"""Slack for the commit in progress when the process dies (a loaded 2-core machine)."""


def run_and_kill(
    data: Data, tmp: Path, durability: str, flush_ms: int
) -> tuple[dict[str, float], float, set[str]]:
    policy = tmp / f"{durability}.toml"
    policy.write_text(
        f'[guard]\ndurability = "{durability}"\nflush_interval_ms = {flush_ms}\n'
        "[guard.rate]\nenabled = false\n"
    )
    db = tmp / f"{durability}.db"
    port = free_port()
    log_path = tmp / f"{durability}.log"
    log_file = log_path.open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelshield",
            "guard",
            "serve",
            "--model",
            str(data.model),
            "--reference",
            str(data.reference),
            "--target",
            "label",
            "--db",
            str(db),
            "--tokens",
            str(data.tokens),
            "--port",
            str(port),
            "--policy",
            str(policy),
            "--spool",
            str(tmp / f"{durability}.spool"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=log_file,
        cwd=tmp,
    )
    answered: dict[str, float] = {}
    try:
        deadline = time.monotonic() + 60
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        ready = False
        while time.monotonic() < deadline and not ready:
            try:
                conn.request("GET", "/healthz")
                response = conn.getresponse()
                response.read()
                ready = response.status == 200
            except OSError:
                conn.close()
                time.sleep(0.1)
        assert ready, log_path.read_text()
        rows = data.rows(0, 500)
        load_until = time.monotonic() + 1.5
        i = 0
        while time.monotonic() < load_until:
            body = json.dumps({"instances": [rows[i % len(rows)]]})
            conn.request("POST", "/predict", body, {**ALICE, "content-type": "application/json"})
            response = conn.getresponse()
            payload = json.loads(response.read())
            assert response.status == 200, payload
            answered[payload["request_id"]] = time.monotonic()
            i += 1
        killed_at = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        conn.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log_file.close()
    engine = store.connect(str(db))
    with engine.connect() as c:
        stored = set(c.execute(sa.select(store.decisions.c.request_id)).scalars())
    assert not store.verify(engine).problems
    return answered, killed_at, stored


@pytest.mark.slow
def test_kill_9_loses_at_most_the_last_flush_interval(data: Data, tmp_path: Path) -> None:
    flush_ms = 50
    answered, killed_at, stored = run_and_kill(data, tmp_path, "batched", flush_ms)
    assert len(answered) > 50
    lost = [rid for rid in answered if rid not in stored]
    window = flush_ms / 1000 + COMMIT_MARGIN_S
    late = [rid for rid in lost if killed_at - answered[rid] > window]
    assert not late, f"{len(late)} record(s) lost beyond the bound"
    # Most records were written before the kill.
    assert len(lost) < len(answered) / 2


@pytest.mark.slow
def test_kill_9_with_commit_durability_loses_nothing_answered(data: Data, tmp_path: Path) -> None:
    answered, _killed_at, stored = run_and_kill(data, tmp_path, "commit", 5)
    assert len(answered) > 20
    assert set(answered) <= stored
