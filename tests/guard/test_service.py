"""The standalone service: screening, status codes, records, tokens, CORS, metrics."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.guard.conftest import ADMIN, ALICE, BOB, FEEDBACK, READ, TOKENS, Data, rows_in_db


def test_served_predictions_match_the_model_and_are_logged(client: Any, data: Data) -> None:
    import joblib

    rows = data.rows(0, 5)
    r = client.post("/predict", json={"instances": rows}, headers=ALICE)
    assert r.status_code == 200, r.text
    body = r.json()
    expected = joblib.load(data.model).predict(data.live.iloc[:5].to_numpy()).tolist()
    assert body["predictions"] == expected
    assert body["decision"] in ("allow", "flag")
    assert r.headers["x-request-id"] == body["request_id"]
    [record] = rows_in_db(client.guard)
    assert record["request_id"] == body["request_id"]
    assert record["client"] == "alice"
    assert record["status"] == 200
    assert json.loads(record["prediction"]) == expected
    assert json.loads(record["features"])[0] == {k: pytest.approx(v) for k, v in rows[0].items()}
    assert len(record["request_hash"]) == 64
    assert record["latency_us"] > 0


def test_positional_instances_are_read_in_reference_order(client: Any, data: Data) -> None:
    rows = data.live.iloc[:3].to_numpy().tolist()
    by_name = client.post("/predict", json={"instances": data.rows(0, 3)}, headers=ALICE)
    positional = client.post("/predict", json={"instances": rows}, headers=ALICE)
    assert positional.json()["predictions"] == by_name.json()["predictions"]


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"{not json", 400, "malformed-json"),
        (b"", 400, "malformed-json"),
        (b'{"instances": [{"f0": NaN}]}', 400, "malformed-json"),
        (b"[1, 2]", 422, "invalid-shape"),
        (b'{"instances": []}', 422, "invalid-shape"),
        (b'{"inputs": [{"f0": 1}]}', 422, "invalid-shape"),
        (b'{"instances": [{"f0": 1}], "extra": 1}', 422, "invalid-shape"),
        (b'{"instances": [{"f0": {"nested": 1}}]}', 422, "invalid-shape"),
        (b'{"instances": [{"f0": ' + b"[" * 50_000 + b"]" * 50_000 + b"}]}", 422, "invalid-shape"),
        (b"[" * 100_000, 422, "invalid-shape"),
    ],
    ids=[
        "garbage",
        "empty",
        "nan",
        "list",
        "no-instance",
        "wrong-key",
        "unknown-top-key",
        "nested-object",
        "deep-array",
        "deep-open",
    ],
)
def test_bad_bodies_get_their_documented_status_and_a_record(
    client: Any, body: bytes, status: int, reason: str
) -> None:
    r = client.post("/predict", content=body, headers={**ALICE, "content-type": "application/json"})
    assert r.status_code == status, r.text
    assert r.json()["error"] == reason
    [record] = rows_in_db(client.guard)
    assert (record["status"], record["decision"]) == (status, "reject")
    assert json.loads(record["reasons"]) == [reason]


def test_limits_on_instances_fields_and_strings(make_guard: Callable[..., Any], data: Data) -> None:
    from starlette.testclient import TestClient

    from modelshield.guard import build_app

    guard = make_guard(max_instances=3, max_fields=6, max_string_length=8)
    with TestClient(build_app(guard, str(data.tokens))) as c:
        ok = c.post("/predict", json={"instances": data.rows(0, 3)}, headers=ALICE)
        assert ok.status_code == 200
        many = c.post("/predict", json={"instances": data.rows(0, 4)}, headers=ALICE)
        assert many.status_code == 422
        wide = {**data.rows(0, 1)[0], "a": 1, "b": 2}
        assert c.post("/predict", json={"instances": [wide]}, headers=ALICE).status_code == 422
        long = {**data.rows(0, 1)[0], "f0": "x" * 9}
        assert c.post("/predict", json={"instances": [long]}, headers=ALICE).status_code == 422
    assert [r["status"] for r in rows_in_db(guard)] == [200, 422, 422, 422]


def test_a_huge_body_is_refused_while_it_streams(
    make_guard: Callable[..., Any], data: Data
) -> None:
    """Over a real socket, chunked with no length: the 413 comes back while the client is
    still sending, long before the 640 MB it offers."""
    import socket
    import threading

    from modelshield.guard import build_app
    from tests.guard.conftest import ServerThread

    guard = make_guard()
    with ServerThread(build_app(guard, str(data.tokens))) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n"
            + f"authorization: {ALICE['authorization']}\r\n\r\n".encode()
        )
        sent = 0
        chunk = b"10000\r\n" + b"x" * 65536 + b"\r\n"

        def send_all() -> None:
            nonlocal sent
            try:
                while sent < 10_000 * 65536:
                    sock.sendall(chunk)
                    sent += 65536
            except OSError:
                pass

        sender = threading.Thread(target=send_all, daemon=True)
        sender.start()
        answer = b""
        try:
            while b"\r\n\r\n" not in answer:
                part = sock.recv(65536)
                if not part:
                    break
                answer += part
        except OSError:
            pass
        stopped_at = sent
        sock.close()
        sender.join(10)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert stopped_at < 64 * 1024 * 1024
    [record] = rows_in_db(guard)
    assert (record["status"], json.loads(record["reasons"])) == (413, ["body-too-large"])


def test_a_declared_length_above_the_limit_is_refused_before_reading(client: Any) -> None:
    r = client.post("/predict", content=b"{}", headers={**ALICE, "content-length": str(10**9)})
    assert r.status_code == 413


def test_schema_violations_block_with_422_and_name_the_feature(client: Any, data: Data) -> None:
    row = data.rows(0, 1)[0]
    cases = {
        "schema:range:f0": {**row, "f0": 1e6},
        "schema:type:f1": {**row, "f1": "abc"},
        "schema:missing:f2": {k: v for k, v in row.items() if k != "f2"},
        "schema:unknown-field": {**row, "password": "hunter2"},
    }
    for reason, instance in cases.items():
        r = client.post("/predict", json={"instances": [instance]}, headers=ALICE)
        assert r.status_code == 422, (reason, r.text)
        assert reason in r.json()["reasons"]
        assert "predictions" not in r.json()
    records = rows_in_db(client.guard)
    assert [r["decision"] for r in records] == ["block"] * 4
    # The unknown field's value never reaches the log; its name is kept, shortened.
    unknown = json.loads(records[-1]["scores"])
    assert unknown["unknown_fields"] == ["password"]
    assert "hunter2" not in records[-1]["features"]


def test_schema_check_in_flag_mode_serves_and_flags(
    make_guard: Callable[..., Any], data: Data
) -> None:
    from starlette.testclient import TestClient

    from modelshield.guard import build_app

    guard = make_guard(schema={"action": "flag", "allow_unknown_fields": True})
    with TestClient(build_app(guard, str(data.tokens))) as c:
        row = {**data.rows(0, 1)[0], "note": "hello"}
        r = c.post("/predict", json={"instances": [row]}, headers=ALICE)
        assert r.status_code == 200
        assert r.json()["decision"] in ("allow", "flag")
        assert "schema:unknown-field" not in r.json()["reasons"]
        r = c.post("/predict", json={"instances": [{**row, "f0": 1e6}]}, headers=ALICE)
        assert r.status_code == 200
        assert r.json()["decision"] == "flag"
        assert "schema:range:f0" in r.json()["reasons"]


def test_out_of_distribution_instances_are_flagged_and_normal_ones_mostly_not(
    client: Any, data: Data
) -> None:
    flagged = 0
    for i in range(0, 200, 10):
        r = client.post("/predict", json={"instances": data.rows(i, 10)}, headers=ALICE)
        flagged += "ood" in r.json()["reasons"]
    # 200 live rows in 20 requests at alpha 0.001 per instance: at most a couple.
    assert flagged <= 2
    # Each feature within range, but a combination the reference never shows (f0 and f1
    # are strongly correlated in make_classification's redundant feature).
    odd = data.rows(0, 1)[0]
    stds = data.ref_frame.std()
    odd = {
        k: float(data.ref_frame[k].mean() + 3.5 * stds[k] * (1 if i % 2 else -1))
        for i, k in enumerate(odd)
    }
    r = client.post("/predict", json={"instances": [odd]}, headers=ALICE)
    assert r.status_code == 200
    assert "ood" in r.json()["reasons"], r.json()
    assert r.json()["decision"] == "flag"


def test_rate_limit_blocks_with_429_per_client(make_guard: Callable[..., Any], data: Data) -> None:
    from starlette.testclient import TestClient

    from modelshield.guard import build_app

    guard = make_guard(rate={"per_second": 0.001, "burst": 3})
    with TestClient(build_app(guard, str(data.tokens))) as c:
        codes = [
            c.post("/predict", json={"instances": data.rows(0, 1)}, headers=ALICE).status_code
            for _ in range(5)
        ]
        assert codes == [200, 200, 200, 429, 429]
        r = c.post("/predict", json={"instances": data.rows(0, 1)}, headers=BOB)
        assert r.status_code == 200  # another client has its own bucket
    records = rows_in_db(guard)
    assert [r["status"] for r in records] == [200, 200, 200, 429, 429, 200]
    assert json.loads(records[3]["reasons"]) == ["rate"]


def test_tokens_are_per_role(client: Any, data: Data) -> None:
    body = {"instances": data.rows(0, 1)}
    assert client.post("/predict", json=body).status_code == 401
    for wrong in (
        READ,
        ADMIN,
        FEEDBACK,
        {"authorization": "Bearer nope"},
        {"authorization": TOKENS["predict"]["alice"]},
    ):
        r = client.post("/predict", json=body, headers=wrong)
        assert r.status_code == 401, wrong
        assert r.headers["www-authenticate"] == "Bearer"
    assert client.get("/metrics", headers=ALICE).status_code == 401
    assert client.get("/metrics", headers=READ).status_code == 200
    assert client.get("/api/summary", headers=ADMIN).status_code == 401
    assert client.get("/admin/status", headers=READ).status_code == 401
    assert client.get("/admin/status", headers=ADMIN).status_code == 200
    feedback = {"labels": [{"request_id": "x", "label": 1}]}
    assert client.post("/feedback", json=feedback, headers=ALICE).status_code == 401
    assert client.post("/feedback", json=feedback, headers=FEEDBACK).status_code == 200
    records = rows_in_db(client.guard)
    assert [r["status"] for r in records] == [401] * 6
    assert {r["client"] for r in records} == {"unauthenticated"}


def test_tokens_must_be_long_and_distinct() -> None:
    from modelshield.core.errors import ConfigError
    from modelshield.guard.engine import Tokens

    with pytest.raises(ConfigError, match="at least 16"):
        Tokens({"predict": {"a": "short"}})
    same = "the-same-token-for-both"
    with pytest.raises(ConfigError, match="its own"):
        Tokens({"predict": {"a": same}, "admin": {"b": same}})
    with pytest.raises(ConfigError, match="unknown role"):
        Tokens({"root": {"a": "x" * 20}})


def test_a_service_without_tokens_refuses_to_start_unless_auth_is_off(
    make_guard: Callable[..., Any],
) -> None:
    from modelshield.core.errors import ConfigError
    from modelshield.guard import build_app

    with pytest.raises(ConfigError, match="tokens"):
        build_app(make_guard())


def test_no_wildcard_cors(make_guard: Callable[..., Any], data: Data) -> None:
    from starlette.testclient import TestClient

    from modelshield.core.errors import ConfigError
    from modelshield.core.policy import Policy
    from modelshield.guard import build_app

    with pytest.raises(ConfigError, match="never"):
        Policy.from_mapping({"guard": {"cors_origins": ["*"]}})
    guard = make_guard(cors_origins=["https://ok.example"])
    with TestClient(build_app(guard, str(data.tokens))) as c:
        evil = c.post(
            "/predict",
            json={"instances": data.rows(0, 1)},
            headers={**ALICE, "origin": "https://evil.example"},
        )
        assert "access-control-allow-origin" not in evil.headers
        ok = c.post(
            "/predict",
            json={"instances": data.rows(0, 1)},
            headers={**ALICE, "origin": "https://ok.example"},
        )
        assert ok.headers["access-control-allow-origin"] == "https://ok.example"
        pre = c.options("/predict", headers={"origin": "https://evil.example"})
        assert pre.status_code == 403
        assert "access-control-allow-origin" not in pre.headers


def test_metrics_never_label_clients(client: Any, data: Data) -> None:
    for h in (ALICE, BOB):
        client.post("/predict", json={"instances": data.rows(0, 2)}, headers=h)
    text = client.get("/metrics", headers=READ).text
    assert (
        'modelshield_guard_requests_total{decision="allow",status="200"}' in text
        or 'decision="flag"' in text
    )
    assert "modelshield_guard_request_seconds_bucket" in text
    assert "modelshield_guard_log_dropped_total 0.0" in text
    assert "alice" not in text and "bob" not in text


def test_a_check_that_fails_applies_on_error(make_guard: Callable[..., Any], data: Data) -> None:
    from starlette.testclient import TestClient

    from modelshield.guard import build_app

    for on_error, status in (("open", 200), ("closed", 503)):
        guard = make_guard(ood={"on_error": on_error})

        def broken(*_args: Any) -> Any:
            raise RuntimeError("broken check")

        # Every form the request path may use (one instance: ood_one).
        guard.reference.ood = guard.reference.ood_lists = guard.reference.ood_one = broken
        with TestClient(build_app(guard, str(data.tokens))) as c:
            r = c.post("/predict", json={"instances": data.rows(0, 1)}, headers=ALICE)
            assert r.status_code == status
            assert "check-error:ood" in r.json()["reasons"]
        record = rows_in_db(guard)[-1]
        assert "RuntimeError" in json.loads(record["scores"])["ood_error"]


def test_a_model_that_is_refused_by_its_scan_is_never_loaded(tmp_path: Any, data: Data) -> None:
    import pickle

    from modelshield.core.errors import ConfigError
    from modelshield.guard import build_guard

    class Evil:
        def __reduce__(self) -> Any:
            import os

            return (os.system, ("echo pwned",))

    bad = tmp_path / "model.pkl"
    bad.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(ConfigError, match="not loaded"):
        build_guard(str(data.reference), model=str(bad), db=None, target="label")


def test_every_request_is_one_record(client: Any, data: Data) -> None:
    statuses = []
    for i in range(30):
        body = {"instances": data.rows(i, 1)} if i % 3 else {"bad": 1}
        statuses.append(client.post("/predict", json=body, headers=ALICE).status_code)
    records = rows_in_db(client.guard)
    assert [r["status"] for r in records] == statuses
    assert client.guard.log.dropped_total == 0


def test_absurd_values_never_break_the_next_request(client: Any, data: Data) -> None:
    """Found by fuzzing: a client's previous query of 1e308 made the next step overflow."""
    row = data.rows(0, 1)[0]
    huge = {k: 1.7e308 * (-1) ** i for i, k in enumerate(row)}
    for _ in range(2):
        r = client.post("/predict", json={"instances": [huge]}, headers=ALICE)
        assert r.status_code == 422, r.text
    r = client.post("/predict", json={"instances": [row]}, headers=ALICE)
    assert r.status_code == 200, r.text
    assert not [x for x in r.json()["reasons"] if x.startswith("check-error")]


@pytest.mark.parametrize("instances", [1, 3])
@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**400])
def test_integers_beyond_64_bits_are_refused_with_a_record(
    client: Any, data: Data, instances: int, value: int
) -> None:
    """JSON integers have no bound and the decoder would keep them exact: one outside 64
    bits (which no model input, float or log frame takes) is refused as the shape's 422,
    with a record, and the next request is served."""
    rows = data.rows(0, instances)
    rows[-1] = {**rows[-1], "f0": value}
    body = json.dumps({"instances": rows}).encode()
    r = client.post("/predict", content=body, headers={**ALICE, "content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid-shape"
    edge = {**rows[-1], "f0": 2**63 - 1 if value > 0 else -(2**63)}
    r = client.post("/predict", json={"instances": [edge]}, headers=ALICE)
    assert r.status_code == 422 and r.json()["error"] == "blocked"  # in range for the decoder
    assert client.post("/predict", json={"instances": data.rows(0, 1)}, headers=ALICE).is_success
    records = rows_in_db(client.guard)
    assert [(x["status"], x["decision"]) for x in records] == [
        (422, "reject"),
        (422, "block"),
        (200, "allow"),
    ]
