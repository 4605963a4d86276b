"""Keras models written by Keras, and hostile Keras configs built by hand (.keras and .h5)."""

from __future__ import annotations

import base64
import io
import json
import marshal
import pickle
from pathlib import Path
from typing import Any

import pytest

from modelshield.core.findings import Severity
from tests.scanner.keras.conftest import keras_zip, rule_ids, scan, worst, write_h5

OS_SYSTEM = (
    b"\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94"
    b"\x8c\x02id\x94\x85\x94R\x94."
)


def _model(*layers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A Keras 3 Sequential config holding ``layers``."""
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": "sequential", "layers": list(layers), **extra},
        "registered_name": None,
    }


def _dense(**config: Any) -> dict[str, Any]:
    return {
        "module": "keras.layers",
        "class_name": "Dense",
        "config": {"name": "dense", "units": 2, **config},
        "registered_name": None,
    }


def _code(fn: Any) -> str:
    return base64.b64encode(marshal.dumps(fn.__code__)).decode()


# ---- files written by Keras ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "sequential.keras",
        "sequential.h5",
        "functional.keras",
        "functional.h5",
        "rnn.keras",
        "rnn.h5",
    ],
)
def test_models_written_by_keras_are_clean_and_complete(
    real_models: dict[str, Path], keras: Any, name: str
) -> None:
    result = scan(real_models[name])
    assert rule_ids(result) == []
    assert result.gaps == ()
    assert result.format == ("keras-v3" if name.endswith(".keras") else "keras-h5")
    assert result.metadata["keras_version"] == keras.__version__


@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_a_harmless_lambda_written_by_keras_is_high(
    lambda_models: dict[str, Path], ext: str
) -> None:
    result = scan(lambda_models[f"harmless{ext}"])
    assert rule_ids(result) == ["KERAS-LAMBDA"]
    assert worst(result, "KERAS-LAMBDA") == Severity.HIGH
    evidence = result.findings[0].evidence
    assert evidence["form"] == "marshalled bytecode"
    assert evidence["python"] == "3.11+"


@pytest.mark.parametrize("ext", [".keras", ".h5"])
def test_a_lambda_calling_os_system_is_critical_with_its_names(
    lambda_models: dict[str, Path], ext: str
) -> None:
    result = scan(lambda_models[f"evil{ext}"])
    assert worst(result, "KERAS-LAMBDA") == Severity.CRITICAL
    evidence = result.findings[0].evidence
    assert "os.system" in evidence["dangerous"]
    assert "__import__" in evidence["names"]
    assert "'id'" in evidence["constants"]


# ---- Lambda forms written by other Keras versions ---------------------------------------------


def test_keras2_h5_lambda_with_marshalled_code(tmp_path: Path) -> None:
    """tf.keras writes ``function`` as [code, defaults, closure] with ``function_type``."""
    layer = {
        "class_name": "Lambda",
        "config": {
            "name": "lambda",
            "function": [_code(lambda x: __import__("subprocess").call(["sh"])), None, None],
            "function_type": "lambda",
            "module": "__main__",
        },
    }
    result = scan(write_h5(tmp_path / "m.h5", {"model_config": _model(layer)}))
    assert worst(result, "KERAS-LAMBDA") == Severity.CRITICAL


def test_keras2_tuple_encoding_and_output_shape_lambda(tmp_path: Path) -> None:
    code = {"class_name": "__tuple__", "items": [_code(lambda s: s), None, None]}
    layer = {
        "class_name": "Lambda",
        "config": {
            "function": code,
            "function_type": "lambda",
            "output_shape": [_code(lambda s: eval("s")), None, None],
            "output_shape_type": "lambda",
        },
    }
    result = scan(write_h5(tmp_path / "m.h5", {"model_config": _model(layer)}))
    paths = sorted(f.evidence["path"] for f in result.findings if f.rule_id == "KERAS-LAMBDA")
    assert paths == ["$.config.layers[0].config.function", "$.config.layers[0].config.output_shape"]
    assert worst(result, "KERAS-LAMBDA") == Severity.CRITICAL


def test_keras2_lambda_naming_a_module_function(tmp_path: Path) -> None:
    layer = {
        "class_name": "Lambda",
        "config": {"function": "system", "function_type": "function", "module": "os"},
    }
    result = scan(write_h5(tmp_path / "m.h5", {"model_config": _model(layer)}))
    assert worst(result, "KERAS-UNSAFE-IMPORT") >= Severity.HIGH
    assert result.findings[0].evidence["callable"] == "os.system"


def test_lambda_object_outside_a_lambda_layer(tmp_path: Path) -> None:
    """serialization_lib writes any Python lambda as ``__lambda__`` with a ``value``."""
    activation = {"class_name": "__lambda__", "config": {"value": [_code(lambda x: x), None, None]}}
    result = scan(keras_zip(tmp_path / "m.keras", _model(_dense(activation=activation))))
    assert rule_ids(result) == ["KERAS-LAMBDA"]


def test_lambda_source_text_is_read_with_ast(tmp_path: Path) -> None:
    layer = {"class_name": "Lambda", "config": {"function": "lambda x: open('/etc/passwd')"}}
    result = scan(write_h5(tmp_path / "m.h5", {"model_config": _model(layer)}))
    finding = next(f for f in result.findings if f.rule_id == "KERAS-LAMBDA")
    assert finding.severity == Severity.CRITICAL
    assert finding.evidence["form"] == "Python source"
    assert "builtins.open" in finding.evidence["dangerous"]


def test_undecodable_lambda_bytecode_is_still_high(tmp_path: Path) -> None:
    junk = base64.b64encode(b"\xe3" + b"\xff" * 40 + b"/bin/sh -c id").decode()
    layer = {"class_name": "Lambda", "config": {"function": [junk, None, None]}}
    result = scan(write_h5(tmp_path / "m.h5", {"model_config": _model(layer)}))
    finding = next(f for f in result.findings if f.rule_id == "KERAS-LAMBDA")
    assert finding.severity == Severity.HIGH
    assert "decode_problem" in finding.evidence
    assert "/bin/sh -c id" in finding.evidence["constants"]


# ---- imports ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "name", "least"),
    [
        ("os", "system", Severity.CRITICAL),
        ("builtins", "exec", Severity.CRITICAL),
        ("keras.utils", "get_file", Severity.HIGH),
        ("keras.src.utils.file_utils", "get_file", Severity.HIGH),
        ("keras.config", "enable_unsafe_deserialization", Severity.HIGH),
        ("keras.models", "load_model", Severity.HIGH),
        ("mylib.layers", "fancy", Severity.MEDIUM),
        ("keras.layers", "NotAKerasLayer", Severity.MEDIUM),
    ],
)
def test_function_references_are_judged(
    tmp_path: Path, module: str, name: str, least: Severity
) -> None:
    """CVE-2025-1550 (any module), CVE-2025-8747 (get_file), CVE-2025-9906 (safe mode off)."""
    ref = {"module": module, "class_name": "function", "config": name, "registered_name": name}
    result = scan(keras_zip(tmp_path / "m.keras", _model(_dense(activation=ref))))
    assert rule_ids(result) == ["KERAS-UNSAFE-IMPORT"]
    assert worst(result, "KERAS-UNSAFE-IMPORT") >= least
    assert result.findings[0].evidence["callable"] == f"{module}.{name}"


def test_class_references_outside_keras_are_judged(tmp_path: Path) -> None:
    layer = {"module": "subprocess", "class_name": "Popen", "config": {}, "registered_name": None}
    result = scan(keras_zip(tmp_path / "m.keras", _model(layer)))
    assert worst(result, "KERAS-UNSAFE-IMPORT") >= Severity.HIGH


def test_builtin_function_names_resolve_to_keras(tmp_path: Path) -> None:
    relu = {"module": "builtins", "class_name": "function", "config": "relu"}
    custom = {"module": "builtins", "class_name": "function", "config": "my_activation"}
    result = scan(keras_zip(tmp_path / "m.keras", _model(_dense(activation=relu))))
    assert rule_ids(result) == []
    result = scan(keras_zip(tmp_path / "m2.keras", _model(_dense(activation=custom))))
    assert rule_ids(result) == ["KERAS-CUSTOM-OBJECT"]


def test_custom_objects_are_low(tmp_path: Path) -> None:
    layer = {"class_name": "MyAttention", "config": {}, "registered_name": "mylib>MyAttention"}
    result = scan(keras_zip(tmp_path / "m.keras", _model(layer)))
    assert rule_ids(result) == ["KERAS-CUSTOM-OBJECT"]
    assert result.findings[0].severity == Severity.LOW
    assert result.findings[0].evidence["object"] == "mylib>MyAttention"


# ---- external models, files, URLs, embedded payloads -----------------------------------------


def test_tfsm_layer_is_reported_with_its_path(tmp_path: Path) -> None:
    """CVE-2026-1462: a TFSMLayer loads an external SavedModel."""
    layer = {
        "module": "keras.layers",
        "class_name": "TFSMLayer",
        "config": {"filepath": "gs://attacker/model", "call_endpoint": "serve"},
    }
    result = scan(keras_zip(tmp_path / "m.keras", _model(layer)))
    assert worst(result, "KERAS-EXTERNAL-MODEL") == Severity.HIGH
    finding = next(f for f in result.findings if f.rule_id == "KERAS-EXTERNAL-MODEL")
    assert finding.evidence["filepath"] == "gs://attacker/model"
    assert "KERAS-FILE-REFERENCE" in rule_ids(result)


def test_torch_module_wrapper_pickle_is_analysed(tmp_path: Path) -> None:
    layer = {
        "module": "keras.layers",
        "class_name": "TorchModuleWrapper",
        "config": {"module": base64.b64encode(OS_SYSTEM).decode()},
    }
    result = scan(keras_zip(tmp_path / "m.keras", _model(layer)))
    assert "KERAS-EXTERNAL-MODEL" in rule_ids(result)
    assert result.max_severity == Severity.CRITICAL
    assert any(f.rule_id.startswith("PICKLE-") for f in result.findings)


def test_torch_module_wrapper_written_by_torch(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    buffer = io.BytesIO()
    torch.save(torch.nn.Linear(2, 2), buffer)
    layer = {
        "class_name": "TorchModuleWrapper",
        "config": {"module": base64.b64encode(buffer.getvalue()).decode()},
    }
    result = scan(keras_zip(tmp_path / "m.keras", _model(layer)))
    assert "pytorch-zip" in result.formats_seen
    assert worst(result, "KERAS-EXTERNAL-MODEL") == Severity.HIGH


def test_base64_pickle_anywhere_in_a_config_is_analysed(tmp_path: Path) -> None:
    blob = base64.b64encode(pickle.dumps({"a": 1}, protocol=4) + OS_SYSTEM).decode()
    result = scan(keras_zip(tmp_path / "m.keras", _model(_dense(note=blob))))
    assert result.max_severity == Severity.CRITICAL


@pytest.mark.parametrize(
    "value",
    [
        "/etc/passwd",
        "https://attacker.example/vocab.txt",
        "file:///home/user/.ssh/id_rsa",
        "~/secrets.txt",
        "C:\\Windows\\win.ini",
        "../../outside/vocab.txt",
    ],
)
def test_paths_and_urls_are_reported(tmp_path: Path, value: str) -> None:
    layer = {
        "module": "keras.layers",
        "class_name": "StringLookup",
        "config": {"vocabulary": value},
    }
    result = scan(keras_zip(tmp_path / "m.keras", _model(layer)))
    assert rule_ids(result) == ["KERAS-FILE-REFERENCE"]
    assert result.findings[0].evidence["reference"] == value


def test_relative_names_are_not_paths(tmp_path: Path) -> None:
    layer = {
        "module": "keras.layers",
        "class_name": "StringLookup",
        "config": {"vocabulary": "vocab.txt", "name": "string_lookup", "oov_token": "[UNK]"},
    }
    assert rule_ids(scan(keras_zip(tmp_path / "m.keras", _model(layer)))) == []


# ---- configs that cannot be analysed -----------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        "{not json",
        "[" * 1_000_000,
    ],
    ids=["not-json", "nested-a-million-deep"],
)
def test_unparsable_configs_are_incomplete(tmp_path: Path, config: str) -> None:
    result = scan(keras_zip(tmp_path / "m.keras", config))
    # The member is also read as a JSON document, whose reader stops at its own limits.
    assert set(rule_ids(result)) - {"SCAN-LIMIT"} == {"KERAS-CONFIG-INVALID"}
    assert result.gaps


def test_an_oversized_config_is_not_parsed(tmp_path: Path) -> None:
    config = _model(_dense(note="x" * 5000))
    result = scan(keras_zip(tmp_path / "m.keras", config), max_document_bytes=4096)
    assert set(rule_ids(result)) - {"SCAN-LIMIT"} == {"KERAS-CONFIG-INVALID"}


def test_metadata_versions_are_recorded(tmp_path: Path) -> None:
    path = keras_zip(tmp_path / "m.keras", _model(), metadata={"keras_version": "3.8.0"})
    result = scan(path)
    assert result.metadata["keras_version"] == "3.8.0"
    assert result.format == "keras-v3"


def test_config_json_outside_the_keras_layout_is_not_a_keras_config(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(_model(_dense(activation="/etc/passwd"))))
    assert rule_ids(scan(path)) == []


def test_odd_but_harmless_shapes_are_walked(tmp_path: Path) -> None:
    """A type spec names a class too; a function reference without a name names nothing;
    a broken metadata.json changes nothing Keras loads."""
    spec = {
        "class_name": "__typespec__",
        "spec_name": "RaggedTensorSpec",
        "module": "tensorflow.python.ops.ragged.ragged_tensor",
        "registered_name": None,
        "config": [[None, 3], "float32"],
    }
    nameless = {"module": "os", "class_name": "function", "config": None}
    config = _model(_dense(kernel_spec=spec, activation=nameless))
    result = scan(keras_zip(tmp_path / "m.keras", config, metadata="{broken"))
    assert rule_ids(result) == ["KERAS-UNSAFE-IMPORT"]
    assert "keras_version" not in result.metadata
    found = next(f for f in result.findings if f.rule_id == "KERAS-UNSAFE-IMPORT")
    assert (
        found.evidence["callable"] == "tensorflow.python.ops.ragged.ragged_tensor.RaggedTensorSpec"
    )


@pytest.mark.parametrize(
    ("function", "form"),
    [
        (None, "a function that could not be read"),
        ("lambda x: (os.system('id'", "Python source"),
    ],
    ids=["missing", "unparsable-source"],
)
def test_lambda_layers_whose_code_cannot_be_read_are_high(
    tmp_path: Path, function: str | None, form: str
) -> None:
    layer = {"class_name": "Lambda", "config": {"function": function}}
    result = scan(write_h5(tmp_path / "m.h5", {"model_config": _model(layer)}))
    finding = next(f for f in result.findings if f.rule_id == "KERAS-LAMBDA")
    assert finding.evidence["form"] == form
    assert finding.severity >= Severity.HIGH


def test_recorded_keras_version_feeds_the_dependency_audit(tmp_path: Path) -> None:
    from modelshield.audit.inputs.implied import recorded_versions

    path = keras_zip(tmp_path / "m.keras", _model(), metadata={"keras_version": "3.8.0"})
    assert recorded_versions(scan(path).metadata)["keras"] == ("3.8.0", "keras_version")


@pytest.mark.slow
def test_the_keras_objects_list_is_current(keras: Any) -> None:
    """scripts/generate_keras_objects.py run against the installed Keras writes the same list
    (skipped when another Keras release is installed than the one the list names)."""
    import importlib.util

    from modelshield.scanner.callables import _data_bytes

    current = _data_bytes("keras_objects.toml").decode()
    if f"from Keras {keras.__version__};" not in current.splitlines()[0]:
        pytest.skip(f"the list was generated from another Keras release than {keras.__version__}")
    script = Path(__file__).resolve().parents[3] / "scripts" / "generate_keras_objects.py"
    spec = importlib.util.spec_from_file_location("generate_keras_objects", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.render() == current


def test_a_utf16_config_is_read_as_keras_reads_it(tmp_path: Path) -> None:
    """Keras passes config.json's bytes to json.loads, which accepts UTF-16."""
    ref = {"module": "os", "class_name": "function", "config": "system"}
    text = json.dumps(_model(_dense(activation=ref))).encode("utf-16")
    path = tmp_path / "m.keras"
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        z.writestr("metadata.json", "{}")
        z.writestr("config.json", text)
    assert rule_ids(scan(path)) == ["KERAS-UNSAFE-IMPORT"]
