"""Differential suite, benign half: models made by the real libraries load through the
restricted path into objects equal to what the plain loaders return.

Equality is checked the way each library defines it: ``torch.equal`` per tensor (and the same
forward pass for modules), ``numpy.array_equal``, scikit-learn predictions, ``DataFrame.equals``.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import modelshield
from modelshield.core.policy import Policy
from modelshield.loaders import (
    joblib_load,
    load_model,
    numpy_load,
    pickle_load,
    pickle_loads,
    torch_load,
)
from modelshield.loaders.torch_loader import PICKLE_MODULE, WEIGHTS_ONLY

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")
joblib = pytest.importorskip("joblib")
pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")

try:
    import lz4  # noqa: F401 - joblib's lz4 compressor needs it

    COMPRESSORS: tuple[str, ...] = ("zlib", "gzip", "bz2", "lzma", "xz", "lz4")
except ImportError:
    COMPRESSORS = ("zlib", "gzip", "bz2", "lzma", "xz")


def _net() -> Any:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3),
        torch.nn.BatchNorm2d(2),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(2 * 4 * 4, 3),
    )


def _pipeline() -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"a": rng.standard_normal(60), "b": rng.standard_normal(60), "c": ["x", "y", "z"] * 20}
    )
    target = (frame["a"] > 0).astype(int)
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("num", StandardScaler(), ["a", "b"]), ("cat", OneHotEncoder(), ["c"])]
                ),
            ),
            ("model", RandomForestClassifier(n_estimators=5, random_state=0)),
        ]
    )
    return pipe.fit(frame, target), frame


def _same(a: Any, b: Any) -> bool:
    """Deep equality with each library's own notion of it."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and type(a) is type(b) and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return (
            isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and (np.array_equal(a, b) if a.dtype != object else _same(a.tolist(), b.tolist()))
        )
    if isinstance(a, pd.DataFrame | pd.Series):
        return type(a) is type(b) and a.equals(b)
    if isinstance(a, dict):
        return type(a) is type(b) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, torch.nn.Module):
        return type(a) is type(b) and _same(a.state_dict(), b.state_dict())
    return bool(a == b)


# ---- torch -------------------------------------------------------------------------------


def _plain_torch(path: Path, **kwargs: Any) -> Any:
    return torch.load(path, weights_only=False, **kwargs)


TORCH_OBJECTS: dict[str, Callable[[], Any]] = {
    "state-dict": lambda: _net().state_dict(),
    "full-module": _net,
    "optimizer": lambda: _optimizer_state(),
    "tensors": lambda: {
        "f16": torch.arange(6, dtype=torch.float16).reshape(2, 3),
        "int": torch.tensor([1, 2, 3]),
        "view": torch.arange(10.0)[2:7],
        "param": torch.nn.Parameter(torch.ones(2)),
        "nested": [torch.zeros(1), (torch.ones(1), {"x": torch.tensor(True)})],
    },
}


def _optimizer_state() -> Any:
    net = _net()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    net(torch.randn(2, 1, 6, 6)).sum().backward()
    optimizer.step()
    return {"model": net.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 3}


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
@pytest.mark.parametrize("kind", sorted(TORCH_OBJECTS))
def test_torch_checkpoints_load_equal(tmp_path: Path, kind: str, zipped: bool) -> None:
    path = tmp_path / "model.pt"
    torch.save(TORCH_OBJECTS[kind](), path, _use_new_zipfile_serialization=zipped)
    plain = _plain_torch(path)
    result = load_model(path)
    assert result.loader == "torch"
    assert _same(plain, result.value)
    if kind == "full-module":
        x = torch.randn(2, 1, 6, 6)
        plain.eval(), result.value.eval()
        assert torch.equal(plain(x), result.value(x))
    # Zip checkpoints go through torch's weights_only unpickler when it is faithful; legacy
    # files (and anything weights_only cannot read) through the restricted pickle_module.
    assert result.method == (WEIGHTS_ONLY if zipped else PICKLE_MODULE)


@pytest.mark.parametrize("kind", ["tensors", "full-module"])
@pytest.mark.parametrize("save", ["pickle", "joblib"])
def test_torch_objects_in_plain_pickles(tmp_path: Path, kind: str, save: str) -> None:
    """Plain pickle writes each tensor as torch.storage._load_from_bytes of a nested
    checkpoint; the restricted loader reads that checkpoint with the same restrictions."""
    obj = TORCH_OBJECTS[kind]()
    path = tmp_path / "model.pkl"
    if save == "joblib":
        joblib.dump(obj, path)
    else:
        path.write_bytes(pickle.dumps(obj, protocol=4))
    plain = joblib.load(path) if save == "joblib" else pickle.loads(path.read_bytes())
    assert _same(plain, modelshield.load(path))


def test_torch_drop_in_takes_torch_arguments(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save(_net().state_dict(), path)
    plain = _plain_torch(path, map_location="cpu", mmap=True)
    assert _same(plain, torch_load(path, map_location="cpu", mmap=True))
    assert _same(plain, torch_load(io.BytesIO(path.read_bytes()), map_location="cpu"))


def test_torch_pickle_module_path_is_used_when_load_args_are_given(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save(_optimizer_state(), path)
    assert _same(_plain_torch(path), torch_load(path, encoding="latin1"))


def test_torch_checkpoint_with_a_class_the_policy_allows(tmp_path: Path) -> None:
    from tests.loaders.classes import Plain

    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2), "meta": Plain({"epochs": 3})}, path)
    with pytest.raises(modelshield.LoadRefused) as info:
        torch_load(path)
    assert info.value.stage == "scan"
    policy = Policy(allow_callables=("tests.loaders.classes:Plain",))
    result = load_model(path, policy=policy)
    assert _same(_plain_torch(path), result.value)
    assert result.method == WEIGHTS_ONLY


# ---- scikit-learn, joblib, pandas ------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted() -> tuple[Any, Any]:
    """A fitted pipeline (column transformer, one-hot encoder, random forest) and its data."""
    return _pipeline()


@pytest.mark.parametrize("compress", [None, *COMPRESSORS])
def test_joblib_every_compressor(tmp_path: Path, fitted: tuple[Any, Any], compress: str) -> None:
    pipe, frame = fitted
    path = tmp_path / "pipe.joblib"
    joblib.dump(pipe, path, compress=(compress, 3) if compress else 0)
    plain = joblib.load(path)
    result = load_model(path)
    assert result.loader == "joblib"
    assert (plain.predict_proba(frame) == result.value.predict_proba(frame)).all()
    assert (joblib_load(path).predict(frame) == plain.predict(frame)).all()


@pytest.mark.parametrize("mmap_mode", ["r", "c", "r+"])
def test_joblib_memory_maps(tmp_path: Path, mmap_mode: str) -> None:
    arrays = {"w": np.arange(1000.0), "objects": np.array([{"a": 1}, "x"], dtype=object)}
    path = tmp_path / "arrays.joblib"
    joblib.dump(arrays, path)
    plain = joblib.load(path, mmap_mode=mmap_mode)
    restricted = joblib_load(path, mmap_mode=mmap_mode)
    assert isinstance(restricted["w"], np.memmap)
    assert _same(plain, {k: np.asarray(v) for k, v in restricted.items()})


def test_plain_pickle_of_a_pipeline(tmp_path: Path, fitted: tuple[Any, Any]) -> None:
    pipe, frame = fitted
    data = pickle.dumps(pipe, protocol=5)
    path = tmp_path / "pipe.pkl"
    path.write_bytes(data)
    result = load_model(path)
    assert result.loader == "pickle"
    assert (result.value.predict_proba(frame) == pipe.predict_proba(frame)).all()
    assert (pickle_loads(data).predict(frame) == pipe.predict(frame)).all()


@pytest.mark.parametrize("save", ["to_pickle", "joblib", "pickle-p2"])
def test_pandas_frames(tmp_path: Path, save: str) -> None:
    frame = pd.DataFrame(
        {
            "x": np.arange(5),
            "y": list("abcde"),
            "t": pd.date_range("2024-01-01", periods=5),
            "c": pd.Categorical(["u", "v", "u", "v", "u"]),
        }
    )
    path = tmp_path / "frame.pkl"
    if save == "to_pickle":
        frame.to_pickle(path)
    elif save == "joblib":
        joblib.dump(frame, path)
    else:
        path.write_bytes(pickle.dumps(frame, protocol=2))
    plain = joblib.load(path) if save == "joblib" else pd.read_pickle(path)
    assert modelshield.load(path).equals(plain)


def test_pickle_load_leaves_the_file_after_the_pickle(tmp_path: Path) -> None:
    buf = io.BytesIO(pickle.dumps([1, 2], protocol=4) + pickle.dumps("next", protocol=4))
    assert pickle_load(buf) == [1, 2]
    assert pickle.load(buf) == "next"


# ---- numpy -------------------------------------------------------------------------------

OBJECTS = np.array([{"id": 0, "name": "a"}, [1, 2.5], ("t", None), "text", 7], dtype=object)


def test_npy_object_array(tmp_path: Path) -> None:
    path = tmp_path / "objects.npy"
    np.save(path, OBJECTS, allow_pickle=True)
    plain = np.load(path, allow_pickle=True)
    assert _same(plain, modelshield.load(path))
    assert _same(plain, numpy_load(path, allow_pickle=True))
    with pytest.raises(ValueError, match="allow_pickle"):
        numpy_load(path)


def test_npy_plain_array_and_memory_map(tmp_path: Path) -> None:
    path = tmp_path / "w.npy"
    np.save(path, np.arange(12, dtype=np.float32).reshape(3, 4))
    assert _same(np.load(path), modelshield.load(path))
    mapped = numpy_load(path, mmap_mode="r")
    assert isinstance(mapped, np.memmap) and _same(np.load(path), np.asarray(mapped))


def test_npz_with_object_members(tmp_path: Path) -> None:
    path = tmp_path / "arrays.npz"
    np.savez_compressed(path, w=np.ones((2, 2)), objects=OBJECTS)
    with np.load(path, allow_pickle=True) as plain:
        expected = {k: plain[k] for k in plain.files}
    assert _same(expected, modelshield.load(path))
    with numpy_load(path, allow_pickle=True) as lazy:
        assert sorted(lazy.files) == ["objects", "w"]
        assert _same(expected["objects"], lazy["objects"])


def test_pickle_read_by_numpy(tmp_path: Path) -> None:
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([np.arange(3), {"k": np.float64(2.5)}], protocol=2))
    assert _same(np.load(path, allow_pickle=True), numpy_load(path, allow_pickle=True))
