"""Model adapters: every kind behind one interface, scanned first, with errors that name the
problem and query accounting."""

from __future__ import annotations

import pickle
from pathlib import Path

import joblib
import lightgbm
import numpy as np
import pandas as pd
import pytest

from modelshield.assess import assess
from modelshield.assess.interface import DataError, ModelError
from modelshield.core.policy import Policy
from tests.assess.conftest import csv, only
from tests.assess.http_server import serve

PERF = only("performance")


def accuracy(report: object) -> float | None:
    info = report.assessment  # type: ignore[attr-defined]
    return next(m.value for m in info.measurements if m.name == "accuracy" and not m.group)


def test_a_pickled_pipeline_is_scanned_then_loaded_by_the_restricted_loader(
    cancer_files: dict[str, str],
) -> None:
    report = assess(cancer_files["model"], cancer_files["test"], "target", policy=PERF)
    info = report.assessment
    assert info is not None
    assert info.scanned and not info.trusted
    assert info.model_kind == "sklearn"
    assert info.loader.startswith("joblib")
    assert [r.format for r in report.results] == ["pickle", "sklearn"]  # the scan, then this
    assert info.rows == info.rows_total == len(pd.read_csv(cancer_files["test"]))


def test_a_hostile_model_file_is_refused_and_the_report_says_why(
    tmp_path: Path, cancer_files: dict[str, str]
) -> None:
    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (eval, ("1+1",))  # harmless if ever run; never loaded here

    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(Payload()))
    report = Policy().apply(assess(str(path), cancer_files["test"], "target", policy=PERF))
    scan, refused = report.results
    assert any(f.severity >= 3 for f in scan.findings)
    assert refused.status == "error"
    assert "model not loaded" in refused.errors[0].message
    assert "--trust" in refused.errors[0].message
    assert Policy().exit_code(report) == 1


def test_trust_still_loads_through_the_restricted_loader(
    tmp_path: Path, cancer_files: dict[str, str]
) -> None:
    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (eval, ("1+1",))

    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(Payload()))
    report = assess(str(path), cancer_files["test"], "target", policy=PERF, trust=True)
    refused = report.results[-1]
    # Trusted or not, eval is never run: the restricted unpickler refuses it.
    assert "model not loaded" in refused.errors[0].message
    assert "eval" in refused.errors[0].message


def test_lightgbm_native_text_model(tmp_path: Path, cancer: tuple[pd.DataFrame, ...]) -> None:
    train, test = cancer
    x = train.drop(columns="target")
    booster = lightgbm.train(
        {"objective": "binary", "verbose": -1, "num_leaves": 8},
        lightgbm.Dataset(x, train["target"]),
        num_boost_round=30,
    )
    path = tmp_path / "model.txt"
    booster.save_model(str(path))
    report = assess(str(path), csv(test, tmp_path / "t.csv"), "target", policy=PERF)
    info = report.assessment
    assert info is not None and info.model_kind == "lightgbm" and info.scanned
    pred = booster.predict(test.drop(columns="target")) > 0.5
    assert accuracy(report) == pytest.approx(float(np.mean(pred == test["target"])), abs=1e-6)


def test_a_python_callable(cancer_files: dict[str, str]) -> None:
    report = assess(
        "tests.assess.models_for_tests:threshold", cancer_files["test"], "target", policy=PERF
    )
    test = pd.read_csv(cancer_files["test"])
    expected = np.mean((test["mean radius"] < 14).astype(int) == test["target"])
    assert report.assessment is not None and report.assessment.model_kind == "callable"
    assert not report.assessment.scanned
    assert accuracy(report) == pytest.approx(expected, abs=1e-6)


def test_an_http_endpoint_is_batched_and_counted(cancer_files: dict[str, str]) -> None:
    model = joblib.load(cancer_files["model"])
    policy = only("performance", batch_size=100)
    with serve(model) as (url, batches):
        report = assess(url, cancer_files["test"], "target", policy=policy)
    rows = len(pd.read_csv(cancer_files["test"]))
    assert batches == [100, 100, rows - 200]
    info = report.assessment
    assert info is not None and info.model_kind == "http"
    assert (info.total_calls, info.total_rows) == (3, rows)
    assert accuracy(report) == pytest.approx(
        float(
            np.mean(
                model.predict(pd.read_csv(cancer_files["test"]).drop(columns="target"))
                == pd.read_csv(cancer_files["test"])["target"]
            )
        )
    )


def test_an_endpoint_that_times_out_is_an_error_naming_it(cancer_files: dict[str, str]) -> None:
    model = joblib.load(cancer_files["model"])
    policy = only("performance", timeout_s=0.2)
    with serve(model, delay=1.0) as (url, _), pytest.raises(ModelError, match="no answer within"):
        assess(url, cancer_files["test"], "target", policy=policy)


def test_an_endpoint_error_status_is_named(cancer_files: dict[str, str]) -> None:
    model = joblib.load(cancer_files["model"])
    with serve(model, status=503) as (url, _), pytest.raises(ModelError, match="HTTP 503"):
        assess(url, cancer_files["test"], "target", policy=PERF)


def test_a_model_that_raises_is_named(cancer_files: dict[str, str]) -> None:
    with pytest.raises(ModelError, match=r"RuntimeError.*feature store is down"):
        assess("tests.assess.models_for_tests:broken", cancer_files["test"], "target", policy=PERF)


def test_a_model_that_answers_too_few_rows_is_named(cancer_files: dict[str, str]) -> None:
    with pytest.raises(ModelError, match="predictions for"):
        assess("tests.assess.models_for_tests:short", cancer_files["test"], "target", policy=PERF)


def test_a_missing_target_column_names_the_columns(cancer_files: dict[str, str]) -> None:
    with pytest.raises(DataError, match=r"no target column 'label'.*'mean radius'"):
        assess(cancer_files["model"], cancer_files["test"], "label", policy=PERF)


def test_a_column_declared_numeric_that_is_not_is_named(
    tmp_path: Path, cancer: tuple[pd.DataFrame, ...]
) -> None:
    test = cancer[1].copy()
    test["mean radius"] = test["mean radius"].astype(object)
    test.loc[3, "mean radius"] = "n/a!"
    path = csv(test, tmp_path / "t.csv")
    with pytest.raises(DataError, match=r"'mean radius' is declared numeric.*'n/a!'"):
        assess(
            "tests.assess.models_for_tests:threshold",
            path,
            "target",
            policy=PERF,
            kinds={"mean radius": "numeric"},
        )


def test_a_target_that_is_not_the_models_classes_is_named(
    tmp_path: Path, cancer_files: dict[str, str]
) -> None:
    test = pd.read_csv(cancer_files["test"])
    test["target"] = test["target"].map({0: "malignant", 1: "benign"})
    with pytest.raises(DataError, match="not classes of the model: benign, malignant"):
        assess(cancer_files["model"], csv(test, tmp_path / "t.csv"), "target", policy=PERF)


def test_parquet_data(tmp_path: Path, cancer_files: dict[str, str]) -> None:
    pytest.importorskip("pyarrow")
    test = pd.read_csv(cancer_files["test"])
    path = tmp_path / "test.parquet"
    test.to_parquet(path)
    a = assess(cancer_files["model"], str(path), "target", policy=PERF)
    b = assess(cancer_files["model"], cancer_files["test"], "target", policy=PERF)
    assert accuracy(a) == accuracy(b)


def test_no_such_model(cancer_files: dict[str, str]) -> None:
    with pytest.raises(ModelError, match="no such model file"):
        assess("missing.joblib", cancer_files["test"], "target", policy=PERF)


def test_onnx_model_where_onnxruntime_is_installed(
    tmp_path: Path, cancer: tuple[pd.DataFrame, ...], cancer_files: dict[str, str]
) -> None:
    pytest.importorskip("onnxruntime")
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType

    model = joblib.load(cancer_files["model"])
    onnx = skl2onnx.convert_sklearn(model, initial_types=[("x", FloatTensorType([None, 30]))])
    path = tmp_path / "model.onnx"
    path.write_bytes(onnx.SerializeToString())
    report = assess(str(path), cancer_files["test"], "target", policy=PERF, trust=True)
    assert report.assessment is not None and report.assessment.model_kind == "onnx"
    direct = assess(cancer_files["model"], cancer_files["test"], "target", policy=PERF)
    assert accuracy(report) == pytest.approx(accuracy(direct), abs=0.01)


def test_xgboost_native_model_where_installed(
    tmp_path: Path, cancer: tuple[pd.DataFrame, ...]
) -> None:
    xgboost = pytest.importorskip("xgboost")
    train, test = cancer
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 3},
        xgboost.DMatrix(train.drop(columns="target").to_numpy(), label=train["target"]),
        num_boost_round=20,
    )
    path = tmp_path / "model.json"
    booster.save_model(str(path))
    report = assess(str(path), csv(test, tmp_path / "t.csv"), "target", policy=PERF)
    assert report.assessment is not None and report.assessment.model_kind == "xgboost"
    assert accuracy(report) is not None and accuracy(report) > 0.9  # type: ignore[operator]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>busy</html>", "not JSON with a 'predictions' list"),
        (b'{"predictions": [1, 0]}', "does not hold"),
        (b'{"predictions": [], "probabilities": [[0.5, 0.5]]}', "does not hold"),
    ],
)
def test_an_endpoint_answering_nonsense_is_named(
    body: bytes, message: str, cancer_files: dict[str, str]
) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        with pytest.raises(ModelError, match=message):
            assess(url, cancer_files["test"], "target", policy=PERF)
    finally:
        server.shutdown()
        server.server_close()


def test_an_endpoint_that_is_down_is_named(cancer_files: dict[str, str]) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ModelError, match="cannot reach the endpoint"):
        assess(f"http://127.0.0.1:{port}/", cancer_files["test"], "target", policy=PERF)
