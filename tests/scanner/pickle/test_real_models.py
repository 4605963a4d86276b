"""Files written by the real libraries: the analyzer walks all of them, to the last byte, and
finds nothing but safe imports (judged by the real built-in lists)."""

from __future__ import annotations

import collections
import datetime
import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import pytest

from modelshield.core.policy import Policy
from modelshield.scanner.engine import scan_file
from tests.scanner.pickle import hostile
from tests.scanner.pickle.helpers import analyze

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")
joblib = pytest.importorskip("joblib")
sklearn = pytest.importorskip("sklearn")


class Marker:
    """A class of this test module: unlisted anywhere, so its import is reported."""


PLAIN = {
    "list": [1, 2.5, "x", b"y", None, True],
    "tuple": (1, (2, 3)),
    "set": {1, 2},
    "frozen": frozenset([3]),
    "ordered": collections.OrderedDict(a=1),
    "big": 10**30,
    "date": datetime.date(2020, 1, 1),
    "bytearray": bytearray(b"xy"),
}


@pytest.mark.parametrize("proto", range(6))
def test_plain_python_data_has_no_findings(proto: int) -> None:
    data = pickle.dumps(PLAIN, protocol=proto)
    run = analyze(data, real_policy=True)
    assert run.findings == []
    assert run.end == len(data)


def _legacy_checkpoint() -> bytes:
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


def test_legacy_torch_checkpoint_is_walked_to_the_end() -> None:
    data = _legacy_checkpoint()
    run = analyze(data, real_policy=True)
    assert run.findings == []
    assert run.end == len(data)
    assert "pytorch-legacy" in run.ctx.formats_seen
    assert {"torch._utils:_rebuild_tensor_v2", "collections:OrderedDict"} <= run.ctx.imports
    # The storages were skipped, not interpreted.
    assert run.ctx.bytes_read < len(data)


def test_legacy_torch_checkpoint_as_its_own_format() -> None:
    data = _legacy_checkpoint()
    run = analyze(data, real_policy=True, torch_legacy=True)
    assert run.findings == []
    assert run.end == len(data)


def test_bytes_after_legacy_storages_are_trailing_data() -> None:
    data = _legacy_checkpoint()
    run = analyze(data + b"\x00hidden", real_policy=True)
    [trailing] = run.of("PICKLE-TRAILING-DATA")
    assert trailing.location.offset == len(data)


def test_a_pickle_after_legacy_storages_is_analysed() -> None:
    data = _legacy_checkpoint() + hostile.reduce_call("os", "system", "id")
    run = analyze(data)
    assert run.callables("PICKLE-CALL-DANGEROUS") == {"os.system"}


def test_truncated_legacy_storage_is_malformed() -> None:
    data = _legacy_checkpoint()[:-5]
    run = analyze(data, real_policy=True)
    [malformed] = run.of("PICKLE-MALFORMED")
    assert "only" in malformed.message and "remain" in malformed.message


def test_zip_checkpoint_data_pkl_with_persistent_ids() -> None:
    buf = io.BytesIO()
    torch.save({"w": torch.ones(3), "b": torch.zeros(2, dtype=torch.int64)}, buf)
    with zipfile.ZipFile(buf) as zf:
        name = next(n for n in zf.namelist() if n.endswith("data.pkl"))
        data = zf.read(name)
    run = analyze(data, real_policy=True, persistent_ids_expected=True)
    assert run.findings == []
    assert run.end == len(data)
    assert analyze(data, real_policy=True).rules == ["PICKLE-PERSISTENT-ID"]


def _joblib_dump(obj: Any, tmp_path: Path) -> bytes:
    path = tmp_path / "model.joblib"
    joblib.dump(obj, path, compress=0)
    return path.read_bytes()


def _fitted_models() -> dict[str, Any]:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = rng.random((80, 4))
    y = (x[:, 0] > 0.5).astype(int)
    return {
        "pipeline": make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y),
        "forest": RandomForestClassifier(n_estimators=4, random_state=0).fit(x, y),
    }


def test_joblib_sklearn_model_arrays_are_skipped_exactly(tmp_path: Path) -> None:
    data = _joblib_dump(
        {
            **_fitted_models(),
            "objects": np.array([1, "a", None], dtype=object),
            "text": np.array(["ab", "c"]),
            "records": np.zeros(3, dtype=[("a", "f4"), ("b", "i8")]),
            "empty": np.zeros((0, 3)),
            "fortran": np.asfortranarray(np.ones((3, 2))),
        },
        tmp_path,
    )
    run = analyze(data, real_policy=True)
    assert run.findings == []
    assert run.end == len(data)
    assert run.ctx.metadata["sklearn_version"] == sklearn.__version__
    assert "joblib.numpy_pickle:NumpyArrayWrapper" in run.ctx.imports


def test_joblib_object_array_pickles_are_analysed(tmp_path: Path) -> None:
    data = _joblib_dump({"objects": np.array([Marker(), 1], dtype=object)}, tmp_path)
    run = analyze(data, real_policy=True)
    [unknown] = run.of("PICKLE-IMPORT-UNKNOWN")
    assert unknown.evidence["callable"].endswith("Marker")
    assert run.end == len(data)


def test_joblib_padding_that_is_not_padding_is_malformed(tmp_path: Path) -> None:
    data = bytearray(_joblib_dump({"a": np.arange(10.0)}, tmp_path))
    array_at = len(data) - 80 - 2  # 10 float64, then SETITEM and STOP
    [pad] = [
        p
        for p in range(17)
        if data[array_at - p - 1] == p and data[array_at - p : array_at] == b"\xff" * p
    ]
    # A padding length that pickle.load would read as GLOBAL while joblib skips 99 bytes.
    data[array_at - pad - 1] = ord("c")
    run = analyze(bytes(data), real_policy=True)
    [malformed] = run.of("PICKLE-MALFORMED")
    assert "padding" in malformed.message


def test_scan_file_on_real_files_reports_nothing(tmp_path: Path) -> None:
    (tmp_path / "legacy.pt").write_bytes(_legacy_checkpoint())
    (tmp_path / "model.joblib").write_bytes(_joblib_dump(_fitted_models(), tmp_path))
    for path in sorted(tmp_path.iterdir()):
        result = scan_file(str(path), Policy())
        assert result.findings == (), path.name
        assert result.errors == (), path.name


def test_pandas_frames_backed_by_arrow_are_clean(tmp_path: Path) -> None:
    """pandas >= 3 stores string columns in Arrow when pyarrow is installed, and pickles them
    through pyarrow.lib's reconstructors: a plain DataFrame must stay clean."""
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    frame = pd.DataFrame(
        {
            "s": ["a", None, "c"],
            "i": pd.array([1, 2, 3], dtype="int64[pyarrow]"),
            "l": pd.array([[1], [2], []], dtype=pd.ArrowDtype(pa.list_(pa.int64()))),
        }
    )
    for proto in (2, 4, 5):
        path = tmp_path / f"frame{proto}.pkl"
        path.write_bytes(pickle.dumps(frame, protocol=proto))
        result = scan_file(str(path), Policy())
        assert b"pyarrow.lib" in path.read_bytes()
        assert result.findings == (), [f.evidence.get("callable") for f in result.findings]
