"""Collect the globals that real ML libraries write into their pickles.

The built-in safe list (``src/modelshield/scanner/data/callables_safe.toml``) is evidence, not
guesswork: this script pickles real objects with the libraries that are installed (torch, numpy,
scikit-learn, joblib, scipy, the standard library, and pandas / XGBoost / LightGBM when present),
reads the pickles back *statically* with :func:`pickletools.genops` (nothing is ever unpickled),
and prints every ``module:qualname`` they import with the verdict the built-in lists give it.

Run it from the repository root after upgrading a library, and add what it reports as
``unknown`` (with a reason)::

    python -m tests.scanner.collect_real_globals                  # globals and their verdicts
    python -m tests.scanner.collect_real_globals --json           # machine-readable evidence
    python -m tests.scanner.collect_real_globals --audit sklearn  # risky callables to review

``tests/scanner/test_callables.py`` imports the builders below, so the same objects are pickled
on every test run: a library release that starts writing a global we do not know fails the tests.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime
import decimal
import enum
import fractions
import functools
import importlib
import inspect
import io
import json
import pathlib
import pickle
import pickletools
import re
import sys
import types
import uuid
import warnings
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

Pickles = list[tuple[str, bytes]]
"""(label, pickle bytes) pairs made by one library."""

_STRING_OPS = frozenset(
    {
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
        "UNICODE",
        "BINUNICODE",
        "SHORT_BINUNICODE",
        "BINUNICODE8",
    }
)
_TRANSPARENT_OPS = frozenset({"FRAME", "PROTO", "MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT"})


# ---- static reading -------------------------------------------------------------------------
def pickle_globals(data: bytes, *, tolerant: bool = False) -> set[tuple[str, str]]:
    """The (module, qualname) pairs imported by every pickle stream in ``data``.

    A static walk with :func:`pickletools.genops`; concatenated streams (legacy torch files)
    are followed. ``tolerant`` stops quietly at bytes that are not a pickle (raw tensor data
    after a legacy torch header, joblib's inline array buffers); otherwise they raise.
    """
    found: set[tuple[str, str]] = set()
    stream = io.BytesIO(data)
    while stream.tell() < len(data):
        start = stream.tell()
        try:
            _one_stream(stream, found)
        except Exception:
            if tolerant:
                return found
            raise
        if stream.tell() == start:
            break
    return found


def _one_stream(stream: io.BytesIO, found: set[tuple[str, str]]) -> None:
    # An approximation of the top of the stack, enough for the pickles libraries write:
    # STACK_GLOBAL's two operands are always the two values pushed just before it.
    recent: list[str | None] = []
    memo: dict[int, str | None] = {}
    for op, arg, _pos in pickletools.genops(stream):
        name = op.name
        if name in ("GLOBAL", "INST"):
            module, _, qualname = str(arg).partition(" ")
            found.add((module, qualname))
            recent.append(None)
        elif name == "STACK_GLOBAL":
            if len(recent) < 2 or recent[-1] is None or recent[-2] is None:
                raise ValueError("STACK_GLOBAL operands are not literal strings")
            found.add((recent[-2], recent[-1]))
            del recent[-2:]
            recent.append(None)
        elif name in _STRING_OPS:
            recent.append(arg if isinstance(arg, str) else bytes(arg).decode("latin-1"))
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            recent.append(memo.get(int(arg)))
        elif name == "MEMOIZE":
            memo[len(memo)] = recent[-1] if recent else None
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = recent[-1] if recent else None
        elif name not in _TRANSPARENT_OPS:
            recent.append(None)


def torch_file_globals(blob: bytes) -> set[tuple[str, str]]:
    """Globals of a ``torch.save`` file: every ``.pkl`` member of the zip, or a legacy file."""
    if blob[:2] != b"PK":
        return pickle_globals(blob, tolerant=True)
    found: set[tuple[str, str]] = set()
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        for member in archive.namelist():
            if member.endswith(".pkl"):
                found |= pickle_globals(archive.read(member))
    return found


# ---- builders -----------------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Fitting tiny models on iris warns (convergence); the warnings are not the point here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _dumps_all(label: str, obj: Any, protocols: tuple[int, ...] = (2, 4, 5)) -> Pickles:
    return [(f"{label} (protocol {p})", pickle.dumps(obj, protocol=p)) for p in protocols]


def torch_pickles() -> Pickles:
    """torch.save of state dicts, whole modules, optimizers and tensors of every dtype."""
    import torch
    from torch import nn

    torch.manual_seed(0)

    def save(obj: Any, **kwargs: Any) -> bytes:
        buf = io.BytesIO()
        torch.save(obj, buf, **kwargs)
        return buf.getvalue()

    model = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Dropout(0.1),
        nn.Flatten(),
        nn.Linear(4, 8),
        nn.LayerNorm(8),
        nn.GELU(),
        nn.Linear(8, 2),
    )
    seq = nn.ModuleDict(
        {
            "emb": nn.Embedding(10, 4),
            "lstm": nn.LSTM(4, 4, batch_first=True),
            "gru": nn.GRU(4, 4),
            "attn": nn.MultiheadAttention(4, 2),
            "enc": nn.TransformerEncoderLayer(4, 2, dim_feedforward=8),
            "conv1d": nn.Conv1d(2, 2, 1),
            "ln": nn.LayerNorm(4),
            "act": nn.ModuleList([nn.Tanh(), nn.Sigmoid(), nn.Softmax(dim=-1), nn.SiLU()]),
        }
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.zeros(1, 3, 4, 4)).sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1)

    tensors: dict[str, Any] = {
        str(dt): torch.zeros(2, dtype=dt)
        for dt in (
            torch.float32,
            torch.float64,
            torch.float16,
            torch.bfloat16,
            torch.complex64,
            torch.complex128,
            torch.int8,
            torch.int16,
            torch.int32,
            torch.int64,
            torch.uint8,
            torch.uint16,
            torch.uint32,
            torch.uint64,
            torch.bool,
            torch.float8_e4m3fn,
            torch.float8_e5m2,
        )
    }
    with _quiet():  # sparse CSR is "beta" and quantized tensors "deprecated": both warn
        tensors["sparse_coo"] = torch.eye(3).to_sparse()
        tensors["sparse_csr"] = torch.eye(3).to_sparse_csr()
        tensors["qint8"] = torch.quantize_per_tensor(torch.ones(3), 0.1, 0, torch.qint8)
        tensors["quint8_channel"] = torch.quantize_per_channel(
            torch.ones(2, 2), torch.tensor([0.1, 0.2]), torch.tensor([0, 0]), 0, torch.quint8
        )
    tensors["param"] = nn.Parameter(torch.ones(2))
    tensors["view"] = torch.arange(6).view(2, 3)[:, 1]
    tensors["meta"] = torch.empty(2, device="meta")
    tensors["channels_last"] = torch.zeros(1, 2, 2, 2).to(memory_format=torch.channels_last)
    tensors["size"] = torch.Size([2, 3])
    tensors["device"] = torch.device("cpu")
    tensors["dtype"] = torch.float32
    tensors["layout"] = torch.sparse_coo

    checkpoint = {
        "epoch": 3,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "rng": torch.get_rng_state(),
        "args": argparse.Namespace(lr=1e-3, name="run"),
    }
    out: Pickles = [
        ("torch state_dict", save(model.state_dict())),
        ("torch recurrent/attention state_dict", save(seq.state_dict())),
        ("torch whole model", save(model)),
        ("torch whole recurrent/attention model", save(seq)),
        ("torch optimizer object", save(opt)),
        ("torch training checkpoint", save(checkpoint)),
        ("torch tensors of every dtype", save(tensors)),
        ("torch tensors, protocol 4", save(tensors, pickle_protocol=4)),
        (
            "torch legacy (non-zip) format",
            save(checkpoint, _use_new_zipfile_serialization=False),
        ),
    ]
    with _quiet():
        quantized = torch.ao.quantization.quantize_dynamic(
            nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)), {nn.Linear}
        )
        out.append(("torch dynamically quantized whole model", save(quantized)))
        out.append(("torch dynamically quantized state_dict", save(quantized.state_dict())))
    return out


def numpy_pickles() -> Pickles:
    """Arrays of every kind, scalars, dtypes, masked arrays, matrices and random generators."""
    import numpy as np

    with _quiet():  # np.matrix is "pending deprecation"
        return _numpy_pickles(np)


def _numpy_pickles(np: Any) -> Pickles:
    values: dict[str, Any] = {
        "float": np.arange(6, dtype=np.float64).reshape(2, 3),
        "fortran": np.asfortranarray(np.ones((2, 2), dtype=np.float32)),
        "half": np.ones(2, dtype=np.float16),
        "complex": np.ones(2, dtype=np.complex128),
        "bool": np.zeros(2, dtype=bool),
        "unicode": np.array(["a", "bc"]),
        "bytes": np.array([b"a", b"bc"]),
        "object": np.array([1, "a", None], dtype=object),
        "structured": np.zeros(2, dtype=[("x", "<i4"), ("y", "<f8", (2,))]),
        "datetime": np.array(["2024-01-01"], dtype="datetime64[D]"),
        "timedelta": np.array([1], dtype="timedelta64[s]"),
        "void": np.zeros(2, dtype="V4"),
        "masked": np.ma.masked_array([1.0, 2.0], mask=[False, True]),
        "matrix": np.asmatrix(np.eye(2)),
        "recarray": np.rec.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
        "scalars": [
            np.float64(1.5),
            np.float32(1.5),
            np.int64(3),
            np.int8(3),
            np.uint32(3),
            np.bool_(True),
            np.str_("s"),
            np.bytes_(b"b"),
            np.complex64(1j),
            np.datetime64("2024-01-01"),
            np.timedelta64(5, "s"),
        ],
        "dtype_objects": [np.dtype("f8"), np.dtype("<U3"), np.dtype([("x", "i4")])],
        "scalar_types": [np.float64, np.int32, np.bool_, np.str_, np.object_],
        "dtype_classes": [type(np.dtype("f8")), type(np.dtype("i4"))],
        "ufuncs": [np.log1p, np.exp, np.sqrt],
        "generator": np.random.default_rng(0),
        "random_state": np.random.RandomState(0),
        "bit_generators": [
            np.random.PCG64(1),
            np.random.PCG64DXSM(1),
            np.random.MT19937(1),
            np.random.Philox(1),
            np.random.SFC64(1),
        ],
        "seed_sequence": np.random.SeedSequence(1),
    }
    out: Pickles = []
    for key, value in values.items():
        out += _dumps_all(f"numpy {key}", value)
    # np.save writes the object array's pickle after the .npy header.
    buf = io.BytesIO()
    np.save(buf, values["object"], allow_pickle=True)
    blob = buf.getvalue()
    header_len = int.from_bytes(blob[8:10], "little")
    out.append(("numpy .npy object array", blob[10 + header_len :]))
    return out


def _iris() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris

    data = load_iris()
    return data.data, data.target


@functools.cache
def sklearn_estimators() -> dict[str, Any]:
    """Fitted scikit-learn estimators covering the common families (fitted once per process)."""
    import numpy as np
    from scipy import stats
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.cluster import KMeans
    from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
    from sklearn.decomposition import PCA
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        IsolationForest,
        RandomForestClassifier,
        StackingClassifier,
        VotingClassifier,
    )
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import (
        FunctionTransformer,
        LabelEncoder,
        OneHotEncoder,
        StandardScaler,
    )
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    x, y = _iris()
    cat = np.array([["a"], ["b"], ["c"]] * 50, dtype=object)
    mixed = np.hstack([x, cat])
    texts = ["the cat sat", "a dog ran", "the dog sat", "a cat ran"] * 5
    labels = [0, 1, 0, 1] * 5
    with _quiet():
        fitted: dict[str, Any] = {
            "LogisticRegression": LogisticRegression(max_iter=200).fit(x, y),
            "RandomForestClassifier": RandomForestClassifier(n_estimators=3, random_state=0).fit(
                x, y
            ),
            "GradientBoostingClassifier": GradientBoostingClassifier(
                n_estimators=3, random_state=0
            ).fit(x, y),
            "HistGradientBoostingClassifier": HistGradientBoostingClassifier(max_iter=3).fit(x, y),
            "SVC": SVC(probability=False).fit(x, y),
            "KNeighborsClassifier": KNeighborsClassifier().fit(x, y),
            "DecisionTreeClassifier": DecisionTreeClassifier(random_state=0).fit(x, y),
            "KMeans": KMeans(n_clusters=3, n_init=1, random_state=0).fit(x),
            "PCA": PCA(n_components=2).fit(x),
            "MLPClassifier": MLPClassifier(hidden_layer_sizes=(4,), max_iter=5).fit(x, y),
            "IsolationForest": IsolationForest(n_estimators=3, random_state=0).fit(x),
            "GaussianNB": GaussianNB().fit(x, y),
            "LabelEncoder": LabelEncoder().fit(y),
            "SimpleImputer": SimpleImputer().fit(x),
            "TfidfVectorizer": TfidfVectorizer().fit(texts),
            "Pipeline": Pipeline(
                [("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=200))]
            ).fit(x, y),
            "ColumnTransformer": make_pipeline(
                ColumnTransformer(
                    [
                        ("num", StandardScaler(), [0, 1, 2, 3]),
                        ("cat", OneHotEncoder(handle_unknown="ignore"), [4]),
                    ]
                ),
                LogisticRegression(max_iter=200),
            ).fit(mixed, y),
            "FunctionTransformer": FunctionTransformer(np.log1p).fit(x),
            "TransformedTargetRegressor": TransformedTargetRegressor(
                regressor=LinearRegression(), func=np.log1p, inverse_func=np.expm1
            ).fit(x, y),
            "VotingClassifier": VotingClassifier(
                [("lr", LogisticRegression(max_iter=200)), ("nb", GaussianNB())]
            ).fit(x, y),
            "StackingClassifier": StackingClassifier(
                [("nb", GaussianNB())], final_estimator=LogisticRegression(max_iter=200), cv=2
            ).fit(x, y),
            "CalibratedClassifierCV": CalibratedClassifierCV(GaussianNB(), cv=2).fit(x, y),
            "GridSearchCV": GridSearchCV(
                LogisticRegression(max_iter=100), {"C": [0.1, 1.0]}, cv=2
            ).fit(x, y),
            "RandomizedSearchCV": RandomizedSearchCV(
                LogisticRegression(max_iter=100),
                {"C": stats.loguniform(1e-2, 1e2), "tol": stats.uniform(1e-4, 1e-3)},
                n_iter=2,
                cv=2,
                random_state=0,
            ).fit(x, y),
            "text pipeline": make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(
                texts, labels
            ),
        }
    return fitted


def sklearn_pickles() -> Pickles:
    """Every estimator of :func:`sklearn_estimators`, pickled with protocols 2, 4 and 5."""
    out: Pickles = []
    for name, estimator in sklearn_estimators().items():
        out += _dumps_all(f"sklearn {name}", estimator)
    return out


def joblib_pickles() -> Pickles:
    """joblib.dump of estimators and arrays (joblib writes array buffers inline)."""
    import joblib
    import numpy as np

    objects: dict[str, Any] = {
        "arrays": {"a": np.arange(4), "b": np.ones((2, 2), dtype=np.float32)},
        "object array": np.array([1, "x"], dtype=object),
        "masked array": np.ma.masked_array([1.0, 2.0], mask=[False, True]),
    }
    fitted = sklearn_estimators()
    for name in ("RandomForestClassifier", "Pipeline", "HistGradientBoostingClassifier"):
        objects[name] = fitted[name]
    out: Pickles = []
    for name, obj in objects.items():
        buf = io.BytesIO()
        joblib.dump(obj, buf)
        out.append((f"joblib {name}", buf.getvalue()))
    return out


class _Colour(enum.Enum):
    """A module-level enum whose members pickle by reference (kept out of __main__ below)."""

    RED = 1


def stdlib_pickles() -> Pickles:
    """Standard-library values that model metadata and configs carry."""
    values: dict[str, Any] = {
        "containers": [
            {1, 2},
            frozenset({1}),
            bytearray(b"ab"),
            b"bytes",
            complex(1, 2),
            slice(1, 5, 2),
            range(3),
            (1,),
            [1],
            {"a": 1},
        ],
        "collections": [
            collections.OrderedDict(a=1),
            collections.defaultdict(list, a=[1]),
            collections.defaultdict(int),
            collections.deque([1, 2], maxlen=5),
            collections.Counter("aab"),
        ],
        "datetime": [
            datetime.date(2024, 1, 2),
            datetime.datetime(2024, 1, 2, 3, 4, 5),
            datetime.datetime(2024, 1, 2, tzinfo=datetime.UTC),
            datetime.time(1, 2),
            datetime.timedelta(days=1),
            datetime.timezone(datetime.timedelta(hours=2)),
        ],
        "numbers": [decimal.Decimal("1.5"), fractions.Fraction(1, 3)],
        "uuid": uuid.UUID(int=1),
        "regex": re.compile(r"\w+", re.IGNORECASE),
        "paths": [pathlib.PurePosixPath("/a"), pathlib.PureWindowsPath("c:/a"), pathlib.Path("a")],
        "namespaces": [argparse.Namespace(lr=0.1), types.SimpleNamespace(a=1)],
        "enum": re.IGNORECASE,
        "object": object(),
    }
    out: Pickles = []
    for key, value in values.items():
        out += _dumps_all(f"stdlib {key}", value, protocols=(0, 1, 2, 3, 4, 5))
    return out


def scipy_pickles() -> Pickles:
    """Sparse matrices and arrays of every format, and a frozen distribution."""
    import numpy as np
    from scipy import sparse, stats

    dense = np.eye(3)
    values: dict[str, Any] = {
        fmt: getattr(sparse, f"{fmt}_matrix")(dense)
        for fmt in ("csr", "csc", "coo", "lil", "dok", "bsr", "dia")
    }
    values.update(
        {f"{fmt}_array": getattr(sparse, f"{fmt}_array")(dense) for fmt in ("csr", "coo")}
    )
    values["frozen distribution"] = stats.uniform(0, 1)
    values["loguniform"] = stats.loguniform(1e-3, 1e3)
    values["distribution"] = stats.norm  # unfrozen: __setstate__ execs its template
    values["frozen gamma"] = stats.gamma(2.0, scale=3.0)
    out: Pickles = []
    for key, value in values.items():
        out += _dumps_all(f"scipy {key}", value)
    return out


def pandas_pickles() -> Pickles:
    """DataFrames, Series, categoricals, timestamps and indexes (when pandas is installed)."""
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame(
        {
            "i": [1, 2],
            "f": [1.5, np.nan],
            "s": ["a", "b"],
            "c": pd.Categorical(["x", "y"]),
            "t": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "tz": pd.date_range("2024-01-01", periods=2, tz="UTC"),
            "d": pd.to_timedelta([1, 2], unit="s"),
            "b": [True, False],
            "n": pd.array([1, None], dtype="Int64"),
        }
    )
    values: dict[str, Any] = {
        "DataFrame": frame,
        "Series": pd.Series([1.0, 2.0], name="x"),
        "MultiIndex": pd.DataFrame(
            {"v": [1, 2]}, index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)])
        ),
        "Categorical": pd.Categorical(["a", "b", "a"]),
        "Timestamp": pd.Timestamp("2024-01-01 12:00", tz="UTC"),
        "Timedelta": pd.Timedelta(seconds=3),
        "Period": pd.Period("2024-01", freq="M"),
        "Interval": pd.Interval(0, 1),
        "RangeIndex": pd.RangeIndex(5),
        "NaT": pd.NaT,
        "NA": pd.NA,
    }
    out: Pickles = []
    for key, value in values.items():
        out += _dumps_all(f"pandas {key}", value)
    return out


def pyarrow_pickles() -> Pickles:
    """Arrow arrays, tables and types, and pandas frames backed by Arrow (pandas >= 3 stores
    string columns in Arrow whenever pyarrow is installed)."""
    import pandas as pd
    import pyarrow as pa

    values: dict[str, Any] = {
        "strings": pa.array(["a", None]),
        "list": pa.array([[1], [2, 3]]),
        "struct": pa.array([{"x": 1}]),
        "dictionary": pa.array(["a", "b", "a"]).dictionary_encode(),
        "timestamp": pa.array([datetime.datetime(2020, 1, 1)], type=pa.timestamp("ms", tz="UTC")),
        "decimal": pa.array([decimal.Decimal("1.5")]),
        "map": pa.array([[("k", 1)]], type=pa.map_(pa.string(), pa.int64())),
        "duration": pa.array([1], type=pa.duration("s")),
        "time": pa.array([datetime.time(1, 2)], type=pa.time64("us")),
        "large": pa.array([[1]], type=pa.large_list(pa.int64())),
        "fixed": pa.array([[1, 2]], type=pa.list_(pa.int64(), 2)),
        "binary": pa.array([b"ab"], type=pa.binary(2)),
        "chunked": pa.chunked_array([[1, 2], [3]]),
        "table": pa.table({"a": [1, 2], "b": ["x", "y"]}),
        "batch": pa.record_batch({"a": [1]}),
        "scalar": pa.scalar(1),
        "buffer": pa.py_buffer(b"abc"),
        "frame": pd.DataFrame({"s": ["a", "b"], "i": [1, 2]}),
        "arrow dtypes": pd.DataFrame(
            {
                "a": pd.array([1, 2], dtype="int64[pyarrow]"),
                "l": pd.array([[1], [2]], dtype=pd.ArrowDtype(pa.list_(pa.int64()))),
            }
        ),
    }
    out: Pickles = []
    for key, value in values.items():
        out += _dumps_all(f"pyarrow {key}", value)
    return out


def xgboost_pickles() -> Pickles:
    """XGBoost's scikit-learn wrappers and a raw Booster (when XGBoost is installed)."""
    import xgboost as xgb

    x, y = _iris()
    with _quiet():
        clf = xgb.XGBClassifier(n_estimators=2, max_depth=2).fit(x, y)
        reg = xgb.XGBRegressor(n_estimators=2, max_depth=2).fit(x, y)
    out: Pickles = []
    for key, value in {
        "XGBClassifier": clf,
        "XGBRegressor": reg,
        "Booster": clf.get_booster(),
    }.items():
        out += _dumps_all(f"xgboost {key}", value)
    return out


def lightgbm_pickles() -> Pickles:
    """LightGBM's scikit-learn wrapper and a raw Booster (when LightGBM is installed)."""
    import lightgbm as lgb

    x, y = _iris()
    with _quiet():
        clf = lgb.LGBMClassifier(n_estimators=2, verbose=-1).fit(x, y)
    out: Pickles = []
    for key, value in {"LGBMClassifier": clf, "Booster": clf.booster_}.items():
        out += _dumps_all(f"lightgbm {key}", value)
    return out


def catboost_pickles() -> Pickles:
    """CatBoost classifier and regressor (when CatBoost is installed)."""
    import catboost

    x, y = _iris()
    with _quiet():
        clf = catboost.CatBoostClassifier(iterations=2, verbose=0, allow_writing_files=False).fit(
            x, y
        )
        reg = catboost.CatBoostRegressor(iterations=2, verbose=0, allow_writing_files=False).fit(
            x, y
        )
    out: Pickles = []
    for key, value in {"CatBoostClassifier": clf, "CatBoostRegressor": reg}.items():
        out += _dumps_all(f"catboost {key}", value)
    return out


def tokenizers_pickles() -> Pickles:
    """A Hugging Face tokenizer and its components (when tokenizers is installed)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.decoder = decoders.BPEDecoder()
    values: dict[str, Any] = {
        "Tokenizer": tokenizer,
        "AddedToken": AddedToken("<x>", special=True),
        "WordPiece": models.WordPiece({"a": 0, "[UNK]": 1}, unk_token="[UNK]"),
        "Unigram": models.Unigram(),
    }
    out: Pickles = []
    for key, value in values.items():
        out += _dumps_all(f"tokenizers {key}", value)
    return out


BUILDERS: dict[str, Callable[[], Pickles]] = {
    "torch": torch_pickles,
    "numpy": numpy_pickles,
    "sklearn": sklearn_pickles,
    "joblib": joblib_pickles,
    "stdlib": stdlib_pickles,
    "scipy": scipy_pickles,
    "pandas": pandas_pickles,
    "pyarrow": pyarrow_pickles,
    "xgboost": xgboost_pickles,
    "lightgbm": lightgbm_pickles,
    "catboost": catboost_pickles,
    "tokenizers": tokenizers_pickles,
}
"""Library name → builder. A builder raises ImportError when its library is absent."""

REQUIRED_MODULE = {"stdlib": "json", "sklearn": "sklearn", "scipy": "scipy"}
"""The import that tells whether a builder can run (defaults to the builder's own name)."""


def globals_of(label: str, blob: bytes) -> set[tuple[str, str]]:
    """The globals of one pickle made by a builder."""
    if label.startswith("torch"):
        return torch_file_globals(blob)
    # joblib writes raw array buffers between pickle opcodes; stop at the first one.
    return pickle_globals(blob, tolerant=label.startswith("joblib"))


def collect(libraries: list[str]) -> dict[tuple[str, str], set[str]]:
    """Map every global found to the labels of the pickles that import it."""
    evidence: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
    for lib in libraries:
        for label, blob in BUILDERS[lib]():
            for pair in globals_of(label, blob):
                evidence[pair].add(label)
    return dict(evidence)


# ---- audit of package-wide allows ---------------------------------------------------------------
_RISKY_SOURCE = re.compile(
    r"\b(open|urlopen|urlretrieve|subprocess|Popen|os\.system|exec|eval|compile|__import__|"
    r"import_module|pickle\.loads?|joblib\.load|np\.load|numpy\.load|torch\.load|"
    r"savez?|tofile|fromfile|to_csv|to_pickle|read_csv|shutil|requests|socket|ctypes|"
    r"getattr|setattr|webbrowser|tempfile|mkdir|makedirs|remove|unlink|rmtree)\s*\(",
)


def audit(package: str) -> Iterator[tuple[str, str, str]]:
    """Public callables under ``package`` whose source calls something risky.

    For a package allowed wholesale (``sklearn.*``), a function that opens files, runs
    processes or evaluates code must be denied by name; this lists the candidates to review.
    """
    import pkgutil

    root = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        if ".tests" in info.name or "._test" in info.name or ".conftest" in info.name:
            continue
        names.append(info.name)
    for module_name in names:
        try:
            with _quiet():
                module = importlib.import_module(module_name)
        except Exception:  # optional dependencies of the package
            continue
        for attr, value in vars(module).items():
            if not callable(value) or attr.startswith("__"):
                continue
            home = getattr(value, "__module__", None) or ""
            if not inspect.isfunction(value) or home != module_name:
                if (
                    home
                    and not home.startswith(package.split(".")[0])
                    and not isinstance(value, type)
                ):
                    yield module_name, attr, f"re-exported from {home}"
                continue
            try:
                source = inspect.getsource(value)
            except (OSError, TypeError):
                continue
            hits = sorted(set(_RISKY_SOURCE.findall(source)))
            if hits:
                yield module_name, attr, "calls " + ", ".join(hits)


# ---- command line -----------------------------------------------------------------------------
def _available() -> list[str]:
    libs = []
    for lib in BUILDERS:
        try:
            importlib.import_module(REQUIRED_MODULE.get(lib, lib))
        except ImportError:
            continue
        libs.append(lib)
    return libs


def main(argv: list[str] | None = None) -> int:
    """Print the evidence (or the audit) for the libraries installed here."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON evidence")
    parser.add_argument("--audit", nargs="*", metavar="PACKAGE", help="audit package-wide allows")
    args = parser.parse_args(argv)
    from modelshield.scanner.callables import CallablePolicy

    policy = CallablePolicy.default()
    if args.audit is not None:
        for package in args.audit or ["sklearn"]:
            for module_name, attr, why in audit(package):
                verdict = policy.classify(module_name, attr)
                print(f"{verdict.tier.value:9} {module_name}:{attr}  ({why})")
        return 0
    evidence = collect(_available())
    if args.json:
        rows = [
            {"module": m, "name": q, "sources": sorted(labels)}
            for (m, q), labels in sorted(evidence.items())
        ]
        print(json.dumps(rows, indent=1))
        return 0
    for (m, q), labels in sorted(evidence.items()):
        verdict = policy.classify(m, q)
        more = " +" if len(labels) > 1 else ""
        print(f"{verdict.tier.value:9} {m}:{q}  [{sorted(labels)[0]}{more}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
