"""Configuration files that run code, and their benign twins, for the scan benchmarks.

``build(folder)`` writes a small labelled set: YAML with Python object tags in the forms
PyYAML resolves (short, verbatim, ``%TAG``, URI escape, alias, merge key), Hydra targets in a
loose config, in a NeMo ``.nemo`` archive and in a uni2TS-style ``config.json``, a target
reached through interpolation and through ``hydra.utils.get_method``, a FlexTok-style config in
safetensors metadata, jsonpickle ``py/reduce``, a skops schema with a denied function and a
``.skops`` that is a pickle; and benign files from the real writers where they are installed
(``yaml.safe_dump``, ``yaml.dump`` of Lightning-style hyper-parameters with tuples,
``OmegaConf.save``, ``jsonpickle.encode``, ``skops.io.dump``), hand-written otherwise.
"""

from __future__ import annotations

import io
import json
import struct
import tarfile
import zipfile
from pathlib import Path

_OS_SYSTEM_PICKLE = (
    b"\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94"
    b"\x8c\x02id\x94\x85\x94R\x94."
)

HOSTILE_TEXT: dict[str, str] = {
    "yaml_apply_short.yaml": "model: !!python/object/apply:os.system ['id']\n",
    "yaml_apply_verbatim.yaml": "x: !<tag:yaml.org,2002:python/object/apply:os.system> [id]\n",
    "yaml_tag_handle.yaml": (
        "%TAG !p! tag:yaml.org,2002:python/\n---\nx: !p!object/apply:os.system [id]\n"
    ),
    "yaml_uri_escape.yaml": "x: !!python/object/apply:os%2Esystem [id]\n",
    "yaml_alias.yaml": "a: &p !!python/name:builtins.eval ''\nb: *p\n",
    "yaml_new_popen.yaml": "p: !!python/object/new:subprocess.Popen [[id]]\n",
    "hparams_module.yaml": "lr: 0.1\nhook: !!python/module:subprocess ''\n",
    "hydra_exec.yaml": "model:\n  _target_: builtins.exec\n  _args_: ['import os']\n",
    "hydra_interpolated.yaml": "pkg: os\nmodel:\n  _target_: ${pkg}.system\n  _args_: [id]\n",
    "hydra_get_method.yaml": "f:\n  _target_: hydra.utils.get_method\n  path: posix.system\n",
    "hydra_merge_key.yaml": (
        "base: &b {_target_: subprocess.getoutput}\nrun:\n  <<: *b\n  _args_: [id]\n"
    ),
    "lightning_class_path.yaml": (
        "model:\n  class_path: subprocess.Popen\n  init_args: {args: [id]}\n"
    ),
    "omegaconf_eval_resolver.yaml": 'lr: ${eval:\'__import__("os").system("id")\'}\n',
    "uni2ts_config.json": json.dumps({"module": {"_target_": "builtins.eval", "_args_": ["1"]}}),
    "jsonpickle_reduce.json": json.dumps(
        {"py/reduce": [{"py/function": "os.system"}, {"py/tuple": ["id"]}]}
    ),
}


def _nemo(config: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        data = config.encode()
        info = tarfile.TarInfo("./model_config.yaml")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _safetensors(metadata: dict[str, str]) -> bytes:
    header = json.dumps({"__metadata__": metadata}).encode()
    return struct.pack("<Q", len(header)) + header


def _skops_schema(function: tuple[str, str] | None) -> bytes:
    """A skops zip of a FunctionTransformer; ``function`` replaces its function's name."""
    node = {"__class__": "log1p", "__module__": "numpy", "__loader__": "FunctionNode"}
    if function is not None:
        node["__module__"], node["__class__"] = function
    schema = {
        "__class__": "FunctionTransformer",
        "__module__": "sklearn.preprocessing._function_transformer",
        "__loader__": "ObjectNode",
        "content": {
            "__class__": "dict",
            "__module__": "builtins",
            "__loader__": "DictNode",
            "content": {"func": node},
            "key_types": {
                "__class__": "list",
                "__module__": "builtins",
                "__loader__": "ListNode",
                "content": [
                    {"__class__": "str", "__module__": "builtins", "__loader__": "TypeNode"}
                ],
            },
        },
        "protocol": 2,
        "_skops_version": "0.16.0",
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("schema.json", json.dumps(schema, indent=2))
    return out.getvalue()


_NEMO_BENIGN = """target: nemo.collections.asr.models.ctc_bpe_models.EncDecCTCModelBPE
preprocessor:
  _target_: nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor
  sample_rate: 16000
encoder:
  _target_: nemo.collections.asr.modules.ConformerEncoder
  d_model: 176
optim:
  name: adamw
  lr: 0.001
"""


def _benign_written(folder: Path) -> dict[str, bytes]:
    """Benign files from the real writers that are installed."""
    import yaml

    files = {
        "safe_dump.yaml": yaml.safe_dump({"model": {"layers": [64, 64]}, "seed": 1}).encode(),
        "hparams.yaml": yaml.dump({"lr": 1e-3, "betas": (0.9, 0.999), "sizes": [(1, 2)]}).encode(),
    }
    try:
        from omegaconf import OmegaConf

        path = folder / "_omegaconf.yaml"
        config = {
            "model": {"_target_": "torch.nn.Linear", "in_features": 4, "out_features": 2},
            "optim": {"_target_": "torch.optim.AdamW", "lr": 1e-3, "_partial_": True},
            "data": {"root": "${oc.env:HOME}/data"},
        }
        OmegaConf.save(OmegaConf.create(config), path)
        files["omegaconf_save.yaml"] = path.read_bytes()
        path.unlink()
    except ImportError:
        pass
    try:
        import jsonpickle

        data = {"pair": (1, 2), "tags": {"a"}, "blob": b"x"}
        files["jsonpickle_plain.json"] = jsonpickle.encode(data, keys=True).encode()
    except ImportError:
        pass
    try:
        import skops.io as sio
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        files["pipeline.skops"] = sio.dumps(
            Pipeline([("s", StandardScaler()), ("c", LogisticRegression())])
        )
    except ImportError:
        files["pipeline.skops"] = _skops_schema(None)
    return files


def build(folder: Path) -> list[tuple[Path, str]]:
    """Write the set into ``folder``; ``(path, "malicious" | "benign")`` for each file."""
    folder.mkdir(parents=True, exist_ok=True)
    hostile: dict[str, bytes] = {name: text.encode() for name, text in HOSTILE_TEXT.items()}
    hostile["nemo_exec.nemo"] = _nemo(
        _NEMO_BENIGN + "decoder:\n  _target_: builtins.exec\n  _args_: ['import os']\n"
    )
    hostile["flextok_metadata.safetensors"] = _safetensors(
        {"args": json.dumps({"encoder": {"_target_": "os.system", "_args_": ["id"]}})}
    )
    hostile["skops_eval.skops"] = _skops_schema(("builtins", "eval"))
    hostile["pickle_named.skops"] = _OS_SYSTEM_PICKLE
    benign = _benign_written(folder)
    benign["model.nemo"] = _nemo(_NEMO_BENIGN)
    benign["MLmodel"] = (
        b"artifact_path: model\nflavors:\n  python_function:\n    env: {conda: conda.yaml}\n"
        b"    loader_module: mlflow.sklearn\n    model_path: model.pkl\n  sklearn:\n"
        b"    pickled_model: model.pkl\n    serialization_format: cloudpickle\n"
        b"mlflow_version: 2.14.1\n"
    )
    benign["conda.yaml"] = (
        b"channels:\n- conda-forge\ndependencies:\n- python=3.11\n- pip:\n  - mlflow==2.14.1\n"
    )
    benign["config.json"] = json.dumps({"model_type": "bert", "hidden_size": 8}).encode()
    out: list[tuple[Path, str]] = []
    for label, files in (("malicious", hostile), ("benign", benign)):
        for name, data in sorted(files.items()):
            path = folder / label / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            out.append((path, label))
    return out


if __name__ == "__main__":  # pragma: no cover - a helper for people
    import sys

    for path, label in build(Path(sys.argv[1] if len(sys.argv) > 1 else "bench-out/config")):
        print(label, path)
