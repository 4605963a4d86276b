"""Fixtures of the guard's tests: a real scikit-learn model saved with joblib, reference and
live data drawn from the same distribution, tokens, and a service factory."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("sqlalchemy")

FEATURES = ["f0", "f1", "f2", "f3", "f4"]
TOKENS = {
    "predict": {"alice": "alice-predict-token-0001", "bob": "bob-predict-token-00002"},
    "feedback": {"labeller": "feedback-token-000000001"},
    "read": {"dashboard": "read-token-0000000000001"},
    "admin": {"ops": "admin-token-000000000001"},
}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


ALICE = bearer(TOKENS["predict"]["alice"])
BOB = bearer(TOKENS["predict"]["bob"])
READ = bearer(TOKENS["read"]["dashboard"])
ADMIN = bearer(TOKENS["admin"]["ops"])
FEEDBACK = bearer(TOKENS["feedback"]["labeller"])


class Data:
    """Files of one model and its data."""

    def __init__(self, root: Path) -> None:
        import joblib
        import numpy as np
        import pandas as pd
        from sklearn.datasets import make_classification
        from sklearn.linear_model import LogisticRegression

        x, y = make_classification(
            n_samples=3000, n_features=5, n_informative=3, n_redundant=1, random_state=0
        )
        frame = pd.DataFrame(x, columns=FEATURES)
        self.model = root / "model.joblib"
        joblib.dump(LogisticRegression().fit(x[:1500], y[:1500]), self.model)
        ref = frame.iloc[:1500].copy()
        ref["label"] = y[:1500]
        self.reference = root / "reference.csv"
        ref.to_csv(self.reference, index=False)
        self.live = frame.iloc[1500:].reset_index(drop=True)
        self.live_labels = y[1500:]
        self.ref_frame = frame.iloc[:1500].reset_index(drop=True)
        self.tokens = root / "tokens.toml"
        self.tokens.write_text(
            "".join(
                f"[{role}]\n" + "".join(f'{k} = "{v}"\n' for k, v in names.items())
                for role, names in TOKENS.items()
            )
        )
        self.rng = np.random.default_rng(1)

    def rows(self, start: int, n: int) -> list[dict[str, float]]:
        records: list[dict[str, float]] = self.live.iloc[start : start + n].to_dict("records")
        return records


@pytest.fixture(scope="session")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    return Data(tmp_path_factory.mktemp("guard-data"))


@pytest.fixture
def make_guard(data: Data, tmp_path: Path) -> Callable[..., Any]:
    """A guard (engine) with a SQLite log in tmp_path; keyword arguments: the [guard] table.
    Its perturbations are seeded (``adversarial.seed`` 0 unless given; the service's default
    draws them from the operating system), so that a test's decisions are the same every run."""
    from modelshield.core.policy import Policy
    from modelshield.guard import build_guard

    def make(db: str | None = None, **table: Any) -> Any:
        table["adversarial"] = {"seed": 0, **table.get("adversarial", {})}
        policy = Policy.from_mapping({"guard": table})
        return build_guard(
            str(data.reference),
            policy,
            model=str(data.model),
            db=db or str(tmp_path / "guard.db"),
            target="label",
            spool=str(tmp_path / "guard.spool"),
        )

    return make


@pytest.fixture
def client(make_guard: Callable[..., Any], data: Data) -> Iterator[Any]:
    """A running service (TestClient, tokens on) with default settings."""
    from starlette.testclient import TestClient

    from modelshield.guard import build_app

    guard = make_guard()
    with TestClient(build_app(guard, str(data.tokens))) as c:
        c.guard = guard  # type: ignore[attr-defined]
        yield c


@contextlib.contextmanager
def engine_of(url: str) -> Iterator[Any]:
    """An engine on the log at ``url``, disposed at the end (no connection left open)."""
    from modelshield.guard import store

    engine = store.connect(url)
    try:
        yield engine
    finally:
        engine.dispose()


def rows_in_db(guard: Any) -> list[dict[str, Any]]:
    """Every decision record, after a flush."""
    import sqlalchemy as sa

    from modelshield.guard import store

    assert guard.log.flush(10)
    with guard.log.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(store.decisions)).mappings()]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ServerThread:
    """uvicorn serving an ASGI app on loopback in a thread (lifespan included)."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        import threading

        import uvicorn

        self.port = port or free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        import time

        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
