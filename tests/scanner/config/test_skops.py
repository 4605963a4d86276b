"""skops files: skops' own default audit, the callable policy, and the published bypasses."""

from __future__ import annotations

import io
import json
import operator
import zipfile
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from modelshield.core.findings import FileResult, Severity
from tests.scanner.formats.conftest import of, rules, scan, scan_bytes

_X = np.arange(40, dtype=float).reshape(20, 2)
_Y = (np.arange(20) % 2).astype(int)


def _dump(tmp_path: Path, model: object, name: str = "model.skops") -> Path:
    path = tmp_path / name
    sio.dump(model, path)
    return path


def _untrusted(result: FileResult) -> set[str]:
    return {f.evidence["callable"] for f in of(result, "SKOPS-UNTRUSTED-TYPE")}


def test_a_scikit_learn_pipeline_is_clean(tmp_path: Path) -> None:
    model = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]).fit(_X, _Y)
    path = _dump(tmp_path, model)
    assert sio.get_untrusted_types(file=path) == []
    result = scan(path)
    assert "skops" in result.formats_seen
    assert result.findings == () and result.gaps == ()


def test_untrusted_types_are_those_skops_reports(tmp_path: Path) -> None:
    """Decision trees (Tree is untrusted by default since skops 0.14) and a ufunc (trusted)
    and a plain function (untrusted) in FunctionTransformers."""
    model = Pipeline(
        [
            ("log", FunctionTransformer(np.log1p)),
            ("fmt", FunctionTransformer(json.dumps)),
            ("tree", DecisionTreeClassifier(max_depth=2)),
        ]
    )
    model.steps[2][1].fit(_X, _Y)
    path = _dump(tmp_path, model)
    expected = set(sio.get_untrusted_types(file=path))
    assert expected == {"json.dumps", "sklearn.tree._tree.Tree"}
    result = scan(path)
    assert _untrusted(result) == expected
    by_name = {f.evidence["callable"]: f.severity for f in of(result, "SKOPS-UNTRUSTED-TYPE")}
    assert by_name["sklearn.tree._tree.Tree"] is Severity.LOW  # safe for the callable policy
    assert by_name["json.dumps"] in (Severity.LOW, Severity.MEDIUM)


def _rewrite(path: Path, edit: Any) -> bytes:
    """The skops zip at ``path`` with its schema changed by ``edit(schema)``."""
    out = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "schema.json":
                schema = json.loads(data)
                edit(schema)
                data = json.dumps(schema).encode()
            dst.writestr(info, data)
    return out.getvalue()


def test_a_function_node_naming_eval(tmp_path: Path) -> None:
    path = _dump(tmp_path, FunctionTransformer(np.log1p))

    def edit(schema: dict[str, Any]) -> None:
        func = schema["content"]["content"]["func"]
        func["__module__"], func["__class__"] = "builtins", "eval"

    data = _rewrite(path, edit)
    assert "builtins.eval" in sio.get_untrusted_types(data=data)
    found = of(scan_bytes(tmp_path, data, "evil.skops"), "SKOPS-UNTRUSTED-TYPE")
    assert [(f.evidence["callable"], f.severity) for f in found] == [
        ("builtins.eval", Severity.CRITICAL)
    ]


def test_an_operator_node_declared_under_another_module(tmp_path: Path) -> None:
    """CVE-2025-54412: skops < 0.12 audited ``__module__.__class__`` but built
    ``getattr(operator, __class__)``; 0.12 refuses the file, as the scanner reports it."""
    path = _dump(tmp_path, FunctionTransformer(operator.methodcaller("strip")))

    def edit(schema: dict[str, Any]) -> None:
        func = schema["content"]["content"]["func"]
        assert func["__loader__"] == "OperatorFuncNode"
        func["__module__"] = "sklearn.pipeline"

    data = _rewrite(path, edit)
    with pytest.raises(ValueError, match="Expected module 'operator'"):
        sio.get_untrusted_types(data=data)
    found = of(scan_bytes(tmp_path, data, "evil.skops"), "SKOPS-TAMPERED-NODE")
    assert found[0].evidence["cve"] == "CVE-2025-54412"
    assert found[0].evidence["callable"] == "operator.methodcaller"
    assert found[0].severity is Severity.CRITICAL


def test_an_honest_operator_node_is_untrusted_not_tampered(tmp_path: Path) -> None:
    path = _dump(tmp_path, FunctionTransformer(operator.itemgetter(0)))
    assert "operator.itemgetter" in sio.get_untrusted_types(file=path)
    result = scan(path)
    assert "SKOPS-TAMPERED-NODE" not in rules(result)
    assert "operator.itemgetter" in _untrusted(result)


def test_a_method_node_bound_to_another_class(tmp_path: Path) -> None:
    """CVE-2025-54413: the declared class of a MethodNode differs from its object's."""
    path = _dump(tmp_path, FunctionTransformer(StandardScaler().fit))

    def edit(schema: dict[str, Any]) -> None:
        func = schema["content"]["content"]["func"]
        assert func["__loader__"] == "MethodNode"
        func["content"]["obj"]["__module__"] = "os"
        func["content"]["obj"]["__class__"] = "_wrap_close"

    data = _rewrite(path, edit)
    with pytest.raises(ValueError, match="Expected object of type"):
        sio.get_untrusted_types(data=data)
    found = of(scan_bytes(tmp_path, data, "evil.skops"), "SKOPS-TAMPERED-NODE")
    assert found[0].evidence["cve"] == "CVE-2025-54413"


def test_a_loss_node_outside_scikit_learn(tmp_path: Path) -> None:
    path = _dump(tmp_path, LogisticRegression())
    schema = json.loads(zipfile.ZipFile(path).read("schema.json"))
    schema.update({"__loader__": "LossNode", "__module__": "os", "__class__": "system"})
    schema["__reduce__"] = {"args": {"__class__": "tuple", "__module__": "builtins",
                                      "__loader__": "TupleNode", "content": []}}  # fmt: skip
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as z:
        z.writestr("schema.json", json.dumps(schema))
    found = of(scan_bytes(tmp_path, data.getvalue(), "evil.skops"), "SKOPS-TAMPERED-NODE")
    assert found[0].evidence["callable"] == "os.system"
    assert found[0].severity is Severity.CRITICAL


def test_a_random_generator_with_a_callable_for_a_bit_generator(tmp_path: Path) -> None:
    path = _dump(tmp_path, {"rng": np.random.default_rng(0)})
    assert sio.get_untrusted_types(file=path) == []
    assert "SKOPS-TAMPERED-NODE" not in rules(scan(path))

    def edit(schema: dict[str, Any]) -> None:
        node = schema["content"]["rng"]
        entry = node["content"]["bit_generator"]["content"]["bit_generator"]
        entry["content"] = json.dumps("seed")

    data = _rewrite(path, edit)
    assert "numpy.random.seed" in sio.get_untrusted_types(data=data)
    found = of(scan_bytes(tmp_path, data, "evil.skops"), "SKOPS-TAMPERED-NODE")
    assert found and "numpy.random.seed" in found[0].message


def test_a_skops_name_on_a_pickle(tmp_path: Path) -> None:
    """CVE-2025-54886: Card.get_model falls back to joblib.load for a file that is not a zip."""
    path = tmp_path / "model.skops"
    joblib.dump(LogisticRegression(), path)
    assert not zipfile.is_zipfile(path)
    result = scan(path)
    found = of(result, "SKOPS-NOT-ZIP")
    assert found and found[0].evidence["cve"] == "CVE-2025-54886"
    assert result.format == "pickle"  # analysed as what it is


def test_a_real_zip_named_skops_is_not_reported(tmp_path: Path) -> None:
    path = _dump(tmp_path, StandardScaler())
    assert "SKOPS-NOT-ZIP" not in rules(scan(path))
