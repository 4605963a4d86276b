"""The integrations shipped at the repository root and in docs/ci: the GitHub Action
(``action.yml``), the pre-commit hook (``.pre-commit-hooks.yaml``) and the GitLab CI job.

None of them can run here as its host runs it (GitHub's runners, GitLab, a pre-commit
environment installed from PyPI), so each is checked against the rules of its host's metadata
format, and its shell steps or its command are run here with the host's conventions."""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from modelshield.cli import build_parser, load_subcommands
from modelshield.scanner.registry import MODEL_EXTENSIONS
from tests.cli.conftest import reduce_os_system_pickle

REPO = Path(__file__).resolve().parents[1]
ACTION = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
HOOKS = REPO / ".pre-commit-hooks.yaml"
GITLAB = yaml.safe_load((REPO / "docs" / "ci" / "gitlab-ci.yml").read_text(encoding="utf-8"))
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}", re.DOTALL)
NAME = "^[_a-zA-Z][a-zA-Z0-9_-]*$"

# ---- the GitHub Action --------------------------------------------------------------------

#: GitHub's metadata syntax for a composite action (docs.github.com, "Metadata syntax for
#: GitHub Actions"), as a JSON Schema: the keys GitHub reads, and nothing else.
_SCALAR = {"type": ["string", "number", "boolean"]}
COLOURS = ("white", "yellow", "blue", "green", "orange", "red", "purple", "gray-dark")
_STEP = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "pattern": NAME},
        "name": {"type": "string"},
        "if": {"type": "string"},
        "run": {"type": "string"},
        "shell": {"enum": ["bash", "pwsh", "python", "sh", "cmd", "powershell"]},
        "uses": {"type": "string", "pattern": r"^[\w.-]+/[\w./-]+@[\w.-]+$"},
        "with": {"type": "object", "additionalProperties": _SCALAR},
        "env": {"type": "object", "additionalProperties": _SCALAR},
        "working-directory": {"type": "string"},
        "continue-on-error": {"type": ["boolean", "string"]},
    },
    "oneOf": [
        {"required": ["run", "shell"], "not": {"required": ["uses"]}},
        {"required": ["uses"], "not": {"anyOf": [{"required": ["run"]}, {"required": ["shell"]}]}},
    ],
}
ACTION_SCHEMA = {
    "type": "object",
    "required": ["name", "description", "runs"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "description": {"type": "string", "minLength": 1},
        "author": {"type": "string"},
        "branding": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "icon": {"type": "string"},
                "color": {"enum": list(COLOURS)},
            },
        },
        "inputs": {
            "type": "object",
            "propertyNames": {"pattern": NAME},
            "additionalProperties": {
                "type": "object",
                "required": ["description"],
                "additionalProperties": False,
                "properties": {
                    "description": {"type": "string", "minLength": 1},
                    "required": {"type": "boolean"},
                    "default": {"type": "string"},
                    "deprecationMessage": {"type": "string"},
                },
            },
        },
        "outputs": {
            "type": "object",
            "propertyNames": {"pattern": NAME},
            "additionalProperties": {
                "type": "object",
                "required": ["description", "value"],
                "additionalProperties": False,
                "properties": {"description": {"type": "string"}, "value": {"type": "string"}},
            },
        },
        "runs": {
            "type": "object",
            "required": ["using", "steps"],
            "additionalProperties": False,
            "properties": {
                "using": {"const": "composite"},
                "steps": {"type": "array", "minItems": 1, "items": _STEP},
            },
        },
    },
}


def steps() -> list[dict[str, Any]]:
    return list(ACTION["runs"]["steps"])


def step(step_id_or_name: str) -> dict[str, Any]:
    [found] = [s for s in steps() if step_id_or_name in (s.get("id"), s.get("name"))]
    return found


def strings(value: Any, where: str = "") -> list[tuple[str, str]]:
    """Every string in a document, with where it is."""
    if isinstance(value, str):
        return [(where, value)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in strings(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in strings(v, f"{where}[{i}]")]
    return []


def test_the_action_follows_githubs_metadata_syntax() -> None:
    jsonschema.validate(ACTION, ACTION_SCHEMA)
    ids = [s["id"] for s in steps() if "id" in s]
    assert len(ids) == len(set(ids))


def test_a_bad_action_is_caught_by_the_check() -> None:
    """The schema is not a rubber stamp: the mistakes GitHub rejects are caught."""
    for broken in (
        {**ACTION, "runs": {"using": "composite", "steps": [{"run": "echo hi"}]}},  # no shell
        {**ACTION, "runs": {"using": "composite", "steps": [{"uses": "actions/checkout"}]}},
        {**ACTION, "inputs": {"path": {"default": "."}}},  # no description
        {**ACTION, "outputs": {"x": {"description": "no value"}}},
        {**ACTION, "on": "push"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, ACTION_SCHEMA)


def test_every_expression_names_something_that_exists() -> None:
    inputs = set(ACTION["inputs"])
    written: dict[str, set[str]] = {}
    for s in steps():
        if "id" in s:
            written[s["id"]] = set(re.findall(r'echo "([\w-]+)=', s.get("run", "")))
    seen = set()
    for where, text in strings(ACTION):
        for expression in EXPRESSION.findall(text):
            for name in re.findall(r"\binputs\.([\w-]+)", expression):
                assert name in inputs, f"{where}: unknown input {name}"
                seen.add(name)
            for sid, output in re.findall(r"\bsteps\.([\w-]+)\.outputs\.([\w-]+)", expression):
                assert output in written.get(sid, set()), f"{where}: {sid} never writes {output}"
    assert seen == inputs  # every input is used


def test_no_expression_is_pasted_into_a_script() -> None:
    """GitHub substitutes ``${{ }}`` into a script before the shell sees it: an input holding
    quotes or ``$(...)`` would run as code. Inputs go through ``env`` instead."""
    for s in steps():
        assert "${{" not in s.get("run", ""), s.get("name")


def test_the_action_runs_ci_and_uploads_the_sarif_whatever_the_verdict() -> None:
    ci = step("ci")
    assert re.search(
        r'modelshield ci "\$MODELSHIELD_PATH" --sarif "\$MODELSHIELD_SARIF"', ci["run"]
    )
    upload = step("Upload SARIF to code scanning")
    assert upload["uses"].startswith("github/codeql-action/upload-sarif@")
    assert "always()" in upload["if"] and "inputs.upload-sarif == 'true'" in upload["if"]
    assert upload["with"]["sarif_file"] == "${{ inputs.sarif-file }}"
    assert steps().index(upload) > steps().index(ci)


def test_the_options_the_integrations_use_exist() -> None:
    """Checked against ``modelshield ci`` when this build has it (it lands separately)."""
    ci = load_subcommands("ci")
    if not ci:
        pytest.skip("this build has no `modelshield ci` yet")
    parser = build_parser(ci)
    parser.parse_args(["ci", ".", "--sarif", "modelshield.sarif"])
    words = shlex.split(" ".join(GITLAB["modelshield"]["script"][1].split()))
    assert words[0] == "modelshield"
    parser.parse_args(words[1:])


def _evaluate(text: str, inputs: dict[str, str]) -> str:
    """GitHub's substitution of the expressions this action uses."""

    def one(match: re.Match[str]) -> str:
        expression = match.group(1)
        if expression.startswith("inputs."):
            return inputs[expression[len("inputs.") :]]
        if expression == "github.action_path":
            return str(REPO)
        raise AssertionError(f"the test does not know {expression}")

    return EXPRESSION.sub(one, text)


def _run_step(s: dict[str, Any], inputs: dict[str, str], bindir: Path, work: Path) -> int:
    """Run a ``run`` step as GitHub's runner does: ``bash --noprofile --norc -eo pipefail``,
    its ``env`` evaluated, ``GITHUB_OUTPUT`` a file; only our fake tools on ``PATH``."""
    assert s["shell"] == "bash"
    env = {k: _evaluate(str(v), inputs) for k, v in s.get("env", {}).items()}
    env |= {
        "PATH": f"{bindir}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "GITHUB_OUTPUT": str(work / "github_output"),
        "HOME": str(work),
    }
    script = work / "step.sh"
    script.write_text(s["run"])
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode


def _fake(bindir: Path, name: str, body: str) -> None:
    path = bindir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.mark.parametrize(("code", "args"), [(0, ""), (1, "--baseline base line.json"), (2, "")])
def test_the_steps_pass_inputs_and_the_exit_code(tmp_path: Path, code: int, args: str) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "calls"
    # Fake python and modelshield: record the arguments (one a line), write the SARIF file.
    record = f'for a in "$@"; do echo "$a" >> "{calls}"; done; echo --- >> "{calls}"'
    _fake(bindir, "python", record)
    sarif = f'shift 3; echo "{{}}" > "$1"; exit {code}'
    _fake(bindir, "modelshield", f'{record}\n[ "$1" = ci ] || exit 0\n{sarif}')
    inputs = {k: v.get("default", "") for k, v in ACTION["inputs"].items()}
    inputs["args"] = args
    assert _run_step(step("Install modelshield"), inputs, bindir, tmp_path) == 0
    assert _run_step(step("ci"), inputs, bindir, tmp_path) == code
    install, version, ci, _ = calls.read_text().split("---\n")
    # pip installs the action's own checkout unless a package is named.
    assert install.splitlines()[-1] == str(REPO)
    assert version.splitlines() == ["--version"]
    assert ci.splitlines() == ["ci", ".", "--sarif", "modelshield.sarif", *args.split()]
    outputs = (tmp_path / "github_output").read_text().splitlines()
    assert outputs == [f"exit-code={code}", "sarif-file=modelshield.sarif"]
    assert (tmp_path / "modelshield.sarif").is_file()


# ---- the pre-commit hook ------------------------------------------------------------------


def hook() -> dict[str, Any]:
    from pre_commit.clientlib import load_manifest

    [only] = load_manifest(str(HOOKS))  # pre-commit's own validation of the manifest
    return dict(only)


def hook_selects(name: str) -> bool:
    """Whether pre-commit would pass ``name`` to the hook (``files`` and ``types``)."""
    h = hook()
    return bool(re.search(h["files"], name)) and not re.search(h["exclude"], name)


def test_the_hook_is_a_valid_pre_commit_manifest() -> None:
    h = hook()
    assert h["id"] == "modelshield-scan" and h["language"] == "python"
    assert h["types"] == ["file"] and h["pass_filenames"]


def test_the_hook_sees_every_model_extension_and_no_source_or_text() -> None:
    for extension in sorted(MODEL_EXTENSIONS):
        assert hook_selects(f"models/weights{extension}"), extension
        assert hook_selects(f"MODEL{extension.upper()}"), extension
    for name in ("MLmodel", "run/MLmodel", "conf/train.yaml", "config.json", "model.tar.gz"):
        assert hook_selects(name), name
    for name in ("train.py", "README.md", "notes.txt", "MLmodel.bak", "src/binary.c"):
        assert not hook_selects(name), name


def test_the_hook_runs_as_pre_commit_runs_it(tmp_path: Path) -> None:
    """``entry`` + the staged files it selects, with the modelshield of this environment."""
    (tmp_path / "evil.pkl").write_bytes(reduce_os_system_pickle())
    (tmp_path / "notes.md").write_text("# not a model\n")
    (tmp_path / "ok.pkl").write_bytes(b"\x80\x04K\x01.")
    entry = shlex.split(hook()["entry"])
    assert entry[0] == "modelshield"

    def run(names: list[str]) -> subprocess.CompletedProcess[str]:
        selected = [n for n in names if hook_selects(n)]
        command = [sys.executable, "-m", "modelshield", *entry[1:], *selected]
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)

    failed = run(["evil.pkl", "notes.md", "ok.pkl"])
    assert failed.returncode == 1 and "evil.pkl" in failed.stdout
    assert "ok.pkl" not in failed.stdout  # --quiet: only files with findings
    assert run(["ok.pkl", "notes.md"]).returncode == 0


# ---- the GitLab CI job --------------------------------------------------------------------


def test_the_gitlab_job_keeps_its_reports_whatever_the_verdict() -> None:
    job = GITLAB["modelshield"]
    assert set(job) <= {"stage", "image", "variables", "cache", "script", "artifacts", "rules"}
    command = shlex.split(" ".join(job["script"][-1].split()))
    assert command[:3] == ["modelshield", "ci", "."]
    options = dict(zip(command[3::2], command[4::2], strict=True))
    artifacts = job["artifacts"]
    assert artifacts["when"] == "always"  # reports of a failing run are kept and shown
    assert artifacts["reports"]["junit"] == options["--junit"]
    assert set(artifacts["paths"]) == set(options.values())
