"""Instantiation targets in YAML and JSON: schemas, interpolation, helpers, allow tables."""

from __future__ import annotations

import json
from pathlib import Path

import hydra.utils
import pytest
import yaml
from omegaconf import OmegaConf

from modelshield.core.findings import FileResult, Severity
from modelshield.scanner.config.judge import allow_tables
from tests.scanner.formats.conftest import of, rules, scan_bytes


def _yaml(tmp_path: Path, config: object, name: str = "config.yaml") -> FileResult:
    return scan_bytes(tmp_path, yaml.safe_dump(config, sort_keys=False).encode(), name=name)


def _targets(result: FileResult) -> list[tuple[str, str, Severity]]:
    return [
        (f.evidence["path"], f.evidence["callable"], f.severity)
        for f in of(result, "CONFIG-TARGET")
    ]


# ---- the real loaders call what the scanner names ----------------------------------------


def test_hydra_instantiate_calls_the_target_the_scanner_reports(tmp_path: Path) -> None:
    config = {"text": {"_target_": "textwrap.dedent", "_args_": ["  x"]}}
    assert hydra.utils.instantiate(OmegaConf.create(config)).text == "x"
    assert _targets(_yaml(tmp_path, config)) == [
        ("text._target_", "textwrap.dedent", Severity.MEDIUM)
    ]


def test_interpolation_resolves_as_omegaconf_resolves_it(tmp_path: Path) -> None:
    config = {
        "pkg": "textwrap",
        "names": {"fn": "dedent"},
        "model": {"inner": {"_target_": "${pkg}.${..fn_name}"}, "fn_name": "${names.fn}"},
    }
    resolved = OmegaConf.create(config).model.inner._target_
    assert resolved == "textwrap.dedent"
    found = of(_yaml(tmp_path, config), "CONFIG-TARGET")
    assert [f.evidence["callable"] for f in found] == [resolved]
    assert found[0].evidence["expression"] == "${pkg}.${..fn_name}"


def test_dangerous_targets_at_any_depth(tmp_path: Path) -> None:
    config = {
        "model": {
            "_target_": "torch.nn.Sequential",
            "_args_": [
                {"_target_": "torch.nn.Linear", "in_features": 2, "out_features": 2},
                {"_target_": "posix.system", "_args_": ["id"]},
            ],
        },
        "callbacks": [{"_target_": "builtins.exec", "_partial_": True}],
    }
    result = _yaml(tmp_path, config)
    assert _targets(result) == [
        ("model._args_[1]._target_", "os.system", Severity.CRITICAL),
        ("callbacks[0]._target_", "builtins.exec", Severity.CRITICAL),
    ]
    partial = of(result, "CONFIG-TARGET")[1]
    assert partial.evidence["partial"] == "true" and partial.evidence["line"]


def test_published_framework_targets_pass(tmp_path: Path) -> None:
    """A config in the shape OmegaConf.save writes for a NeMo/Lightning training run."""
    config = OmegaConf.create(
        {
            "target": "nemo.collections.asr.models.ctc_bpe_models.EncDecCTCModelBPE",
            "preprocessor": {
                "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor"
            },
            "encoder": {"_target_": "nemo.collections.asr.modules.ConformerEncoder", "n": 2},
            "optim": {"_target_": "torch.optim.AdamW", "lr": 1e-3},
            "sched": {"_target_": "torch.optim.lr_scheduler.CosineAnnealingLR", "T_max": 5},
            "act": {"_target_": "torch.nn.functional.gelu", "_partial_": True},
            "relu": {"_target_": "hydra.utils.get_method", "path": "torch.nn.functional.relu"},
            "trainer": {
                "_target_": "lightning.pytorch.Trainer",
                "callbacks": [{"_target_": "lightning.pytorch.callbacks.ModelCheckpoint"}],
            },
            "data": {"root": "${oc.env:HOME}/data", "batch_size": 8},
        }
    )
    path = tmp_path / "model_config.yaml"
    OmegaConf.save(config, path)
    result = scan_bytes(tmp_path, path.read_bytes(), name="model_config.yaml")
    assert result.findings == () and result.gaps == ()


def test_allow_tables_hold_exact_entries_only() -> None:
    entries = allow_tables()
    assert len(entries) > 500
    for key, reason in entries.items():
        module, _, name = key.partition(":")
        assert module and name and "*" not in key and reason, key


# ---- schemas -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "path", "schema"),
    [
        (
            {"model": {"class_path": "os.system", "init_args": {}}},
            "model.class_path",
            "jsonargparse",
        ),
        ({"m": {"cls": "os.system", "params": {"command": "id"}}}, "m.cls", "hydra-0"),
        ({"m": {"target": "os.system", "params": {}}}, "m.target", "hydra-0"),
        ({"target": "os.system", "train_ds": {}}, "target", "nemo"),
        ({"m": {"type": "os.system"}}, "m.type", "mmengine"),
        (
            {"version": 1, "handlers": {"h": {"class": "os.system"}}},
            "handlers.h.class",
            "logging",
        ),
        (
            {"version": 1, "formatters": {"f": {"()": "subprocess.getoutput"}}},
            "formatters.f.()",
            "logging",
        ),
    ],
)
def test_instantiation_schemas(
    tmp_path: Path, config: dict[str, object], path: str, schema: str
) -> None:
    found = of(_yaml(tmp_path, config), "CONFIG-TARGET")
    assert [(f.evidence["path"], f.evidence["schema"]) for f in found] == [(path, schema)]
    assert found[0].severity is Severity.CRITICAL


def test_type_keys_are_reported_only_when_denied(tmp_path: Path) -> None:
    """mmengine registries look ``type`` up by name first: unknown dotted values are scopes."""
    config = {"backbone": {"type": "mmdet.ResNet"}, "tok": {"type": "BPE"}}
    assert "CONFIG-TARGET" not in rules(_yaml(tmp_path, config))


def test_target_nested_keys_are_not_nemo_targets(tmp_path: Path) -> None:
    config = {"loss": {"target": "os.system"}, "metric": {"target": 0.9}}
    assert "CONFIG-TARGET" not in rules(_yaml(tmp_path, config))


def test_targets_in_json_documents(tmp_path: Path) -> None:
    """uni2TS-style config.json instantiated with hydra.utils.instantiate."""
    config = {"module": {"_target_": "uni2ts.model.moirai.MoiraiModule", "d_model": 8},
              "hook": {"_target_": "builtins.eval", "_args_": ["1"]}}  # fmt: skip
    result = scan_bytes(tmp_path, json.dumps(config).encode(), name="config.json")
    assert _targets(result) == [
        ("module._target_", "uni2ts.model.moirai.MoiraiModule", Severity.MEDIUM),
        ("hook._target_", "builtins.eval", Severity.CRITICAL),
    ]


# ---- helpers, interpolation, resolvers -----------------------------------------------------


@pytest.mark.parametrize(
    ("config", "callable_", "via"),
    [
        ({"f": {"_target_": "hydra.utils.get_method", "path": "os.system"}}, "os.system",
         "hydra.utils.get_method"),
        ({"f": {"_target_": "hydra.utils.get_class", "_args_": ["subprocess.Popen"]}},
         "subprocess.Popen", "hydra.utils.get_class"),
        ({"f": {"_target_": "pydoc.locate", "path": "builtins.exec"}}, "builtins.exec",
         "pydoc.locate"),
        ({"f": {"_target_": "importlib.import_module", "name": "os"}}, "os",
         "importlib.import_module"),
    ],
)  # fmt: skip
def test_lookup_helpers_are_judged_by_their_argument(
    tmp_path: Path, config: dict[str, object], callable_: str, via: str
) -> None:
    found = of(_yaml(tmp_path, config), "CONFIG-TARGET")
    assert [(f.evidence["callable"], f.evidence["via"]) for f in found] == [(callable_, via)]
    assert found[0].severity is Severity.CRITICAL


def test_get_method_really_returns_what_it_names() -> None:
    config = OmegaConf.create({"_target_": "hydra.utils.get_method", "path": "textwrap.dedent"})
    assert hydra.utils.instantiate(config)("  y") == "y"


def test_a_partial_of_a_nested_target_is_judged_by_the_nested_target(tmp_path: Path) -> None:
    config = {
        "f": {
            "_target_": "functools.partial",
            "_args_": [{"_target_": "hydra.utils.get_method", "path": "torch.nn.functional.relu"}],
        }
    }
    assert _yaml(tmp_path, config).findings == ()


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("${oc.env:MODEL_CLASS}", "environment"),
        ("${missing.key}", "does not hold"),
        ("${mandatory}", "mandatory"),
        ("${my_resolver:x}", "resolver"),
    ],
)
def test_targets_the_file_does_not_determine(tmp_path: Path, target: str, why: str) -> None:
    result = _yaml(tmp_path, {"mandatory": "???", "m": {"_target_": target}})
    found = of(result, "CONFIG-TARGET-DYNAMIC")
    assert found and why in found[0].evidence["reason"]
    assert found[0].evidence["expression"] == target


def test_an_interpolation_loop_is_dynamic(tmp_path: Path) -> None:
    result = _yaml(tmp_path, {"a": "${b}", "b": "${a}", "m": {"_target_": "${a}"}})
    assert "CONFIG-TARGET-DYNAMIC" in rules(result)


def test_custom_resolvers_are_reported(tmp_path: Path) -> None:
    config = {"lr": "${eval:'1/0'}", "size": "${my.helper:3}", "home": "${oc.env:HOME}"}
    found = {
        f.evidence["resolver"]: f.severity for f in of(_yaml(tmp_path, config), "CONFIG-RESOLVER")
    }
    assert found == {"eval": Severity.HIGH, "my.helper": Severity.MEDIUM}


def test_trust_remote_code_beside_a_target(tmp_path: Path) -> None:
    config = {
        "model": {
            "_target_": "transformers.AutoModel.from_pretrained",
            "pretrained_model_name_or_path": "org/repo",
            "trust_remote_code": True,
        }
    }
    result = _yaml(tmp_path, config)
    assert of(result, "CONFIG-TRUST-REMOTE-CODE")[0].evidence["path"] == "model.trust_remote_code"
    assert of(result, "CONFIG-TARGET")[0].severity is Severity.MEDIUM  # from_pretrained: unknown


def test_trust_remote_code_without_a_target_is_data(tmp_path: Path) -> None:
    assert "CONFIG-TRUST-REMOTE-CODE" not in rules(_yaml(tmp_path, {"trust_remote_code": True}))


@pytest.mark.parametrize(
    "target",
    ["${oc.select:nowhere,textwrap.dedent}", "${oc.select:real}", "${oc.decode:'textwrap.dedent'}"],
)
def test_builtin_resolvers_with_values_in_the_file_are_resolved(
    tmp_path: Path, target: str
) -> None:
    config = {"real": "textwrap.dedent", "m": {"_target_": target, "_args_": ["  x"]}}
    assert hydra.utils.instantiate(OmegaConf.create(config)).m == "x"
    found = of(_yaml(tmp_path, config), "CONFIG-TARGET")
    assert [f.evidence["callable"] for f in found] == ["textwrap.dedent"]


def test_logging_ext_references_are_imported(tmp_path: Path) -> None:
    config = {
        "version": 1,
        "handlers": {
            "console": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout"},
            "evil": {"class": "logging.StreamHandler", "stream": "ext://os.system"},
        },
    }
    found = of(_yaml(tmp_path, config), "CONFIG-TARGET")
    assert [(f.evidence["path"], f.evidence["via"]) for f in found] == [
        ("handlers.evil.stream", "ext://")
    ]
