"""Files that hubs and servers run because of where they stand, and the directory summary as
the reports show it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import torch

from modelshield.core.findings import Severity
from modelshield.core.policy import Policy
from modelshield.report import Invocation, OutputFormat, render
from modelshield.report.json_report import schema
from tests.scanner.repos.conftest import of, result, roles, scan_dir, write

SHELL = "import subprocess\n\ndef entry():\n    subprocess.run('id', shell=True)\n"


def test_hubconf_is_run_by_torch_hub(tmp_path: Path) -> None:
    hubconf = "from helpers import build\ndependencies = ['torch']\n" + SHELL
    folder = write(
        tmp_path / "hub", {"hubconf.py": hubconf, "helpers.py": "import os\nos.popen('x')\n"}
    )
    report = scan_dir(folder)
    [hub] = of(result(report, "hubconf.py"), "REPO-LOADER-CODE")
    assert (hub.severity, hub.evidence["loader"]) == (Severity.HIGH, "torch.hub.load")
    # torch.hub puts the folder on sys.path: the local modules it imports run too.
    [helper] = of(result(report, "helpers.py"), "REPO-LOADER-CODE")
    assert "imported by hubconf.py" in helper.evidence["loader"]
    assert report.repositories[0].layouts == ("torch-hub",)


def test_inference_handlers_and_sagemaker_scripts(tmp_path: Path) -> None:
    torch.save({"w": torch.zeros(2)}, tmp_path / "weights.pt")
    folder = write(
        tmp_path / "endpoint",
        {
            "handler.py": "class EndpointHandler:\n    def __init__(self, path=''):\n"
            "        self.path = path\n",
            "config.json": {"model_type": "bert"},
            "code/inference.py": SHELL,
            "code/requirements.txt": "torch\n",
        },
    )
    report = scan_dir(folder)
    [handler] = of(result(report, "handler.py"), "REPO-LOADER-CODE")
    assert handler.severity == Severity.LOW
    [sagemaker] = of(result(report, "inference.py"), "REPO-LOADER-CODE")
    assert sagemaker.severity == Severity.HIGH
    assert set(report.repositories[0].layouts) >= {"inference-endpoint", "sagemaker"}


def test_a_lone_handler_script_is_not_an_endpoint(tmp_path: Path) -> None:
    report = scan_dir(write(tmp_path / "scripts", {"handler.py": SHELL, "other.py": "x = 1\n"}))
    assert of(result(report, "handler.py"), "REPO-LOADER-CODE") == []


def test_torchserve_manifest_names_its_handler(tmp_path: Path) -> None:
    manifest = {
        "createdOn": "01/08/2024 12:00:00",
        "runtime": "python",
        "model": {
            "modelName": "tiny",
            "serializedFile": "model.pt",
            "handler": "my_handler.py",
            "modelFile": "model.py",
            "modelVersion": "1.0",
        },
        "archiverVersion": "0.11.0",
    }
    folder = write(
        tmp_path / "mar",
        {
            "MAR-INF/MANIFEST.json": manifest,
            "my_handler.py": SHELL,
            "model.py": "import torch\nclass Tiny(torch.nn.Module):\n    pass\n",
        },
    )
    report = scan_dir(folder)
    assert of(result(report, "my_handler.py"), "REPO-LOADER-CODE")[0].severity == Severity.HIGH
    assert of(result(report, "model.py"), "REPO-LOADER-CODE")[0].severity == Severity.LOW
    assert "torchserve" in report.repositories[0].layouts


def test_every_file_gets_a_role(tmp_path: Path) -> None:
    torch.save({"w": torch.zeros(2)}, tmp_path / "checkpoint.pt")
    folder = write(
        tmp_path / "mixed",
        {
            "checkpoint.pt": (tmp_path / "checkpoint.pt").read_bytes(),
            "tool.py": "print('hello')\n",
            "hook.pth": "import os; os.system('id')\n",
            "notes.txt": "just notes\n",
            "blob.bin": bytes(range(256)) * 4,
        },
    )
    report = scan_dir(folder)
    assert roles(report.repositories[0]) == {
        "blob.bin": "not-analysed",
        "checkpoint.pt": "executable",
        "hook.pth": "executable",
        "notes.txt": "inert",
        "tool.py": "code",
    }
    assert report.repositories[0].layouts == ()


def test_reports_show_the_summary(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "repo",
        {
            "config.json": {"model_type": "x", "auto_map": {"AutoModel": "modeling_x.X"}},
            "modeling_x.py": "class X: pass\n",
            "README.md": "# x\n",
        },
    )
    policy = Policy()
    report = policy.apply(scan_dir(folder))
    document = json.loads(render(report, OutputFormat.JSON, policy=policy))
    jsonschema.Draft202012Validator(schema()).validate(document)
    [entry] = document["repositories"]
    assert entry["layouts"] == ["huggingface"]
    assert entry["roles"] == {"executable": 1, "code": 0, "inert": 2, "not-analysed": 0}
    text = render(report, OutputFormat.TEXT, policy=policy, invocation=Invocation())
    assert "huggingface): 1 executable in effect, 2 inert data" in text
    assert "executable in effect: modeling_x.py" in text


def test_single_files_get_no_repository_pass(tmp_path: Path) -> None:
    """The pass is for directories, and a one-file scan never imports it (start-up time)."""
    folder = write(tmp_path / "repo", {"config.json": {"auto_map": {"AutoModel": "m.X"}}})
    code = (
        "import sys\nfrom modelshield.scanner.engine import scan_paths\n"
        f"report = scan_paths([{str(folder / 'config.json')!r}])\n"
        "assert report.repositories == (), report.repositories\n"
        "assert 'modelshield.scanner.repository' not in sys.modules\n"
        "assert 'modelshield.scanner.pysource' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert len(scan_dir(folder).repositories) == 1


def test_a_bug_in_the_pass_keeps_the_file_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelshield.scanner import repository

    def broken(*args: object) -> None:
        raise KeyError("boom")

    monkeypatch.setattr(repository, "scan_repository", broken)
    report = scan_dir(write(tmp_path / "repo", {"a.txt": "x\n", "b.txt": "y\n"}))
    assert len(report.results) == 2
    assert report.repositories == ()
    [error] = report.results[0].errors
    assert "internal error in the repository pass: KeyError" in error.message
