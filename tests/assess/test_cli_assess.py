"""``modelshield assess``: options, exit codes, and the JSON document against its schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from modelshield.cli import main
from modelshield.report.json_report import schema


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["assess", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_validates_and_counts_queries(
    capsys: pytest.CaptureFixture[str], cancer_files: dict[str, str], tmp_path: Path
) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text('[assess]\nskip = ["evasion", "backdoor", "robustness"]\n')
    code, out, _ = run(
        capsys,
        "--model",
        cancer_files["model"],
        "--data",
        cancer_files["test"],
        "--target",
        "target",
        "--format",
        "json",
        "--policy",
        str(policy),
    )
    doc = json.loads(out)
    jsonschema.Draft202012Validator(schema()).validate(doc)
    assert doc["command"] == "assess"
    info = doc["assessment"]
    assert info["queries"]["calls"] == sum(q["calls"] for q in info["queries"]["by_check"])
    assert info["scanned"] is True
    assert {c["check"] for c in info["checks"]} >= {"performance", "fairness"}
    assert code == doc["exit_code"]


def test_a_missed_floor_exits_1_and_the_text_names_it(
    capsys: pytest.CaptureFixture[str], cancer_files: dict[str, str], tmp_path: Path
) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text(
        '[assess]\nmin_metric = {roc_auc = 0.9999}\nskip = ["evasion", "backdoor", '
        '"robustness", "slices", "calibration", "consistency", "extraction"]\n'
    )
    code, out, _ = run(
        capsys,
        "--model",
        cancer_files["model"],
        "--data",
        cancer_files["test"],
        "--target",
        "target",
        "--policy",
        str(policy),
    )
    assert code == 1
    assert "ASSESS-METRIC-THRESHOLD" in out and "roc_auc is" in out
    assert "Queries:" in out and "FAIL" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--target", "nope"], "no target column 'nope'"),
        (["--target", "target", "--column-type", "bad"], "COLUMN=KIND"),
        (["--target", "target", "--check", "nothing"], "--check 'nothing'"),
        (["--target", "target", "--seed", "-1"], "--seed must be >= 0"),
    ],
)
def test_bad_inputs_exit_2_with_the_problem_named(
    extra: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    cancer_files: dict[str, str],
) -> None:
    model = ["--model", cancer_files["model"], "--data", cancer_files["test"]]
    code, _, err = run(capsys, *model, *extra)
    assert code == 2 and message in err


def test_an_unknown_assess_setting_is_a_policy_error(
    capsys: pytest.CaptureFixture[str], cancer_files: dict[str, str], tmp_path: Path
) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text("[assess]\nmax_ece2 = 0.1\n")
    code, _, err = run(
        capsys,
        "--model",
        cancer_files["model"],
        "--data",
        cancer_files["test"],
        "--target",
        "target",
        "--policy",
        str(policy),
    )
    assert code == 2 and "unknown key(s) in [assess]: max_ece2" in err


def test_help_and_scan_stay_light(cancer_files: dict[str, str]) -> None:
    """`import modelshield`, `--help` and `scan` never import the assessment's libraries."""
    import subprocess
    import sys

    code = (
        "import contextlib, io, sys\n"
        "from modelshield.cli import main\n"
        "quiet = io.StringIO()\n"
        "with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):\n"
        f"    main(['scan', {cancer_files['model']!r}])\n"
        "    try:\n"
        "        main(['assess', '--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted(m for m in ('numpy', 'pandas', 'sklearn') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
