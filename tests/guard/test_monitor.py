"""Monitoring: drift from window counts, alerts to a webhook and the log, feedback and
performance, Prometheus gauges; the governance report and its JSON schema."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.guard.conftest import ALICE, BOB, FEEDBACK, READ, Data


class Hook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["content-length"])
        Hook.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    Hook.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def shifted(data: Data, start: int, n: int, shift: float) -> list[dict[str, float]]:
    rows = data.rows(start, n)
    std = float(data.ref_frame["f3"].std())
    for r in rows:
        r["f3"] += shift * std
    return rows


def test_drift_is_detected_alerted_and_exported(
    make_guard: Callable[..., Any], data: Data, webhook: str
) -> None:
    from starlette.testclient import TestClient

    from modelshield.guard import build_app

    guard = make_guard(
        webhook=webhook,
        rate={"enabled": False},
        ood={"enabled": False},
        drift_min_count=100,
        schema={"range_tolerance": 1.0},
    )
    app = build_app(guard, str(data.tokens))
    with TestClient(app) as c:
        for i in range(0, 400, 20):
            r = c.post("/predict", json={"instances": shifted(data, i, 20, 1.5)}, headers=ALICE)
            assert r.status_code == 200, r.text
        app._flush_counts()
        assert guard.log.flush(10)
        rows = {r["feature"]: r for r in app.check_now()}
        assert rows["f3"]["drifted"] and rows["f3"]["psi"] > 0.2
        assert not rows["f0"]["drifted"] and rows["f0"]["psi"] < 0.1
        assert rows["f3"]["count"] == 400
        metrics = c.get("/metrics", headers=READ).text
        assert 'modelshield_guard_drifted{feature="f3"} 1.0' in metrics
        assert 'modelshield_guard_drifted{feature="f0"} 0.0' in metrics
        assert 'modelshield_guard_drift_psi{feature="f3"}' in metrics
        # A second check within the cooldown does not alert again.
        app.check_now()
    deadline = __import__("time").monotonic() + 10
    while not Hook.received and __import__("time").monotonic() < deadline:
        __import__("time").sleep(0.05)
    subjects = [(h["kind"], h["subject"]) for h in Hook.received]
    assert ("drift", "f3") in subjects
    assert subjects.count(("drift", "f3")) == 1
    assert ("drift", "f0") not in subjects


def test_no_drift_on_traffic_from_the_reference_population(
    make_guard: Callable[..., Any], data: Data
) -> None:
    from starlette.testclient import TestClient

    from modelshield.guard import build_app

    guard = make_guard(rate={"enabled": False})
    app = build_app(guard, str(data.tokens))
    with TestClient(app) as c:
        for i in range(0, 1000, 50):
            c.post("/predict", json={"instances": data.rows(i, 50)}, headers=ALICE)
        app._flush_counts()
        assert guard.log.flush(10)
        rows = app.check_now()
    assert not [r["feature"] for r in rows if r["drifted"]]
    prediction = next(r for r in rows if r["feature"] == "prediction")
    assert prediction["count"] == 1000 and prediction["chi2_p"] is not None


def test_feedback_gives_accuracy(client: Any, data: Data) -> None:
    import joblib

    model = joblib.load(data.model)
    labels = []
    for i in range(0, 200, 10):
        r = client.post("/predict", json={"instances": data.rows(i, 10)}, headers=ALICE)
        labels += [
            {
                "request_id": r.json()["request_id"],
                "index": j,
                "label": int(data.live_labels[i + j]),
            }
            for j in range(10)
        ]
    r = client.post("/feedback", json={"labels": labels}, headers=FEEDBACK)
    assert r.json() == {"accepted": 200}
    assert (
        client.post("/feedback", json={"labels": [{"x": 1}]}, headers=FEEDBACK).status_code == 422
    )
    assert client.post("/feedback", content=b"{", headers=FEEDBACK).status_code == 400
    summary = client.get("/api/summary", headers=READ).json()
    expected = float(
        (model.predict(data.live.iloc[:200].to_numpy()) == data.live_labels[:200]).mean()
    )
    assert summary["performance"]["labelled"] == 200
    assert summary["performance"]["accuracy"] == pytest.approx(expected)


def test_report_json_matches_its_schema_and_the_database(
    client: Any, data: Data, capsys: Any, tmp_path: Path
) -> None:
    import jsonschema

    from modelshield.cli import main

    hostile = '<img src=x onerror="alert(1)">'
    client.post("/predict", json={"instances": data.rows(0, 3)}, headers=ALICE)
    for _ in range(4):
        client.post("/predict", json={"instances": data.rows(5, 1)}, headers=BOB)
    client.post("/predict", json={"instances": [{**data.rows(0, 1)[0], "f0": 1e9}]}, headers=BOB)
    client.post("/predict", content=b"{", headers=ALICE)
    # A client name cannot be chosen by a caller with tokens; without, by the header.
    client.guard.log.flush(10)
    url = client.guard.log.url
    assert main(["guard", "report", "--db", url, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    schema = json.loads(
        (Path(__file__).parents[2] / "src/modelshield/guard/schema/summary.schema.json").read_text()
    )
    jsonschema.validate(doc, schema, format_checker=jsonschema.FormatChecker())
    assert doc["total_requests"] == 7
    assert doc["decisions"]["block"] == 1 and doc["decisions"]["reject"] == 1
    assert doc["statuses"]["422"] == 1 and doc["statuses"]["400"] == 1
    assert {c["client"]: c["requests"] for c in doc["top_clients"]} == {"bob": 5, "alice": 2}
    reasons = {r["reason"]: r["count"] for r in doc["reasons"]}
    assert reasons["malformed-json"] == 1 and reasons["schema:range:f0"] == 1
    assert doc["latency_ms"]["count"] == 7 and doc["latency_ms"]["p50"] > 0
    assert sum(sum(t[k] for k in doc["decisions"]) for t in doc["timeline"]) == 7
    assert doc["recent"][0]["decision"] == "block"
    assert main(["guard", "report", "--db", url]) == 0
    text = capsys.readouterr().out
    assert "total requests: 7" in text
    out = tmp_path / "r.html"
    assert main(["guard", "report", "--db", url, "--format", "html", "-o", str(out)]) == 0
    assert "<h2>Drift</h2>" in out.read_text()
    from modelshield.report.guard_summary import render_html, render_text

    doc["top_clients"][0]["client"] = hostile + "\x1b[31m"
    assert hostile not in render_html(doc) and "&lt;img" in render_html(doc)
    assert "\x1b" not in render_text(doc)


def test_report_time_range_and_errors(client: Any, data: Data, capsys: Any, tmp_path: Path) -> None:
    from modelshield.cli import main

    client.post("/predict", json={"instances": data.rows(0, 1)}, headers=ALICE)
    client.guard.log.flush(10)
    url = client.guard.log.url
    assert main(["guard", "report", "--db", url, "-f", "json", "--until", "2000-01-01"]) == 0
    assert json.loads(capsys.readouterr().out)["total_requests"] == 0
    assert main(["guard", "report", "--db", url, "-f", "json", "--since", "1h"]) == 0
    assert json.loads(capsys.readouterr().out)["total_requests"] == 1
    assert main(["guard", "report", "--db", url, "--since", "yesterday"]) == 2
    assert main(["guard", "report", "--db", str(tmp_path / "none.db")]) == 2
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 10)
    assert main(["guard", "verify", "--db", str(tmp_path / "junk.db")]) == 2
