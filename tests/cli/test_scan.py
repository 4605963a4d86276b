"""``modelshield scan`` end to end: the real command line on files built by the tests."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import jsonschema
import pytest

from modelshield.report import OutputFormat, json_report
from tests.cli.conftest import reduce_os_system_pickle, run_cli, run_cli_with_terminal_stderr
from tests.report.conftest import validate_sarif
from tests.report.junit_schema import validate_junit

ANSI = "\x1b["

# A policy whose size limit every test file exceeds: the engine reports SCAN-FILE-TOO-LARGE
# (medium) for each file, which gives the policy options a finding to act on.
TINY_LIMIT_POLICY = "[limits]\nmax_file_bytes = 16\n"


def scan_json(*args: str, cwd: Path) -> tuple[int, dict[str, Any]]:
    run = run_cli("scan", "--format", "json", *args, cwd=cwd)
    document: dict[str, Any] = json.loads(run.stdout)
    jsonschema.Draft202012Validator(json_report.schema()).validate(document)
    assert document["exit_code"] == run.code
    return run.code, document


def big_pickle(directory: Path, name: str = "big.pkl") -> Path:
    path = directory / name
    path.write_bytes(pickle.dumps(list(range(100)), protocol=4))
    return path


# ---- verdicts ---------------------------------------------------------------------------


def test_clean_pickle_passes(clean_pickle: Path, tmp_path: Path) -> None:
    run = run_cli("scan", str(clean_pickle), cwd=tmp_path)
    assert run.code == 0, run.stdout + run.stderr
    assert f"✓ {clean_pickle}" in run.stdout
    assert run.stdout.splitlines()[-1] == "PASS: no findings at or above medium (exit code 0)"


def test_os_system_pickle_fails(os_system_pickle: Path, tmp_path: Path) -> None:
    code, document = scan_json(str(os_system_pickle), cwd=tmp_path)
    assert code == 1
    result = document["results"][0]
    assert "os:system" in result["imports"]
    assert result["max_severity"] in ("high", "critical")


def test_missing_path_is_an_error_that_names_it(clean_pickle: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model.pt"
    run = run_cli("scan", str(clean_pickle), str(missing), cwd=tmp_path)
    assert run.code == 2
    assert f"✗ {missing}" in run.stdout
    assert "cannot open" in run.stdout
    assert run.stdout.splitlines()[-1].startswith("ERROR: 1 file could not be analysed fully")


def test_one_malformed_file_does_not_stop_the_scan(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    for name in ("a.pkl", "c.pkl"):
        (models / name).write_bytes(pickle.dumps({"layer": name}, protocol=2))
    # Protocol 2 header, a SHORT_BINUNICODE that claims 200 bytes, then the file ends.
    (models / "b_truncated.pkl").write_bytes(b"\x80\x02\x8c\xc8abc")
    code, document = scan_json(str(models), cwd=tmp_path)
    assert code != 0
    by_name = {Path(r["path"]).name: r for r in document["results"]}
    assert sorted(by_name) == ["a.pkl", "b_truncated.pkl", "c.pkl"]
    bad = by_name["b_truncated.pkl"]
    assert bad["findings"] or bad["errors"]
    for good in ("a.pkl", "c.pkl"):
        assert by_name[good]["findings"] == [] and by_name[good]["errors"] == []


# ---- options ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_every_format_choice(
    fmt: OutputFormat, clean_pickle: Path, os_system_pickle: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.pkl"
    paths = (str(clean_pickle), str(os_system_pickle), str(missing))
    run = run_cli("scan", "--format", fmt.value, *paths, cwd=tmp_path)
    assert run.code == 1, run.stderr
    if fmt is OutputFormat.TEXT:
        assert run.stdout.splitlines()[-1].startswith("FAIL: ")
        assert f"✗ {missing}" in run.stdout
    elif fmt is OutputFormat.JSON:
        document = json.loads(run.stdout)
        jsonschema.Draft202012Validator(json_report.schema()).validate(document)
        assert [r["path"] for r in document["results"]] == list(paths)
    elif fmt is OutputFormat.SARIF:
        document = json.loads(run.stdout)
        validate_sarif(document)
        sarif_run = document["runs"][0]
        assert sarif_run["results"]
        assert {r["level"] for r in sarif_run["results"]} >= {"error"}
        invocation = sarif_run["invocations"][0]
        assert (invocation["exitCode"], invocation["executionSuccessful"]) == (1, False)
        assert len(invocation["toolExecutionNotifications"]) == 1
    elif fmt is OutputFormat.JUNIT:
        validate_junit(run.stdout)
        root = ElementTree.fromstring(run.stdout)
        (suite,) = root.findall("testsuite")  # one pillar, a test case per file
        assert [c.get("name") for c in suite.findall("testcase")] == list(paths)
        assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "1")
    elif fmt is OutputFormat.HTML:
        assert run.stdout.startswith("<!DOCTYPE html>")
        assert ">FAIL</span>" in run.stdout and "PICKLE-" in run.stdout
    else:  # pragma: no cover - a new format must be added to this test
        raise AssertionError(fmt)


def test_output_writes_the_file_not_stdout(clean_pickle: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.sarif"
    run = run_cli("scan", "-f", "sarif", "--output", str(out), str(clean_pickle), cwd=tmp_path)
    assert run.code == 0
    assert run.stdout == ""
    assert f"report written to {out}" in run.stderr
    assert json.loads(out.read_text(encoding="utf-8"))["version"] == "2.1.0"


def test_output_to_an_unwritable_place_is_an_error(clean_pickle: Path, tmp_path: Path) -> None:
    out = tmp_path / "no-such-dir" / "report.json"
    run = run_cli("scan", "-f", "json", "-o", str(out), str(clean_pickle), cwd=tmp_path)
    assert run.code == 2
    assert f"cannot write the json report to {out}: " in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    ("option", "where", "problem"),
    [
        ("--sarif", "no-such-dir/r.sarif", "does not exist"),
        ("--html", ".", "it is a directory"),
        ("--json", "report.txt", "is named for two reports"),
    ],
)
def test_every_report_path_is_checked_before_the_scan(
    os_system_pickle: Path, tmp_path: Path, option: str, where: str, problem: str
) -> None:
    """A bad output path is an error before any work: nothing else is written, and no scan
    result reaches the terminal."""
    run = run_cli(
        "scan",
        "-o",
        "report.txt",
        "--junit",
        "r.xml",
        option,
        where,
        str(os_system_pickle),
        cwd=tmp_path,
    )
    assert run.code == 2
    assert problem in run.stderr and run.stdout == ""
    assert not (tmp_path / "report.txt").exists() and not (tmp_path / "r.xml").exists()


def test_one_scan_writes_every_report(os_system_pickle: Path, tmp_path: Path) -> None:
    run = run_cli(
        "scan",
        str(os_system_pickle),
        "--sarif",
        "r.sarif",
        "--junit",
        "r.xml",
        "--json",
        "r.json",
        "--html",
        "r.html",
        cwd=tmp_path,
    )
    assert run.code == 1
    assert "CRITICAL PICKLE-CALL-DANGEROUS" in run.stdout  # the text still on the terminal
    assert "reports written to r.sarif, r.xml, r.json, r.html (exit code 1)" in run.stderr
    validate_sarif(json.loads((tmp_path / "r.sarif").read_text()))
    validate_junit((tmp_path / "r.xml").read_text())
    document = json.loads((tmp_path / "r.json").read_text())
    jsonschema.Draft202012Validator(json_report.schema()).validate(document)
    assert document["exit_code"] == 1
    assert ">FAIL</span>" in (tmp_path / "r.html").read_text()


def test_scan_leaves_out_what_is_excluded_and_ignored(tmp_path: Path) -> None:
    (tmp_path / "models" / "tmp").mkdir(parents=True)
    (tmp_path / "models" / "a.pkl").write_bytes(reduce_os_system_pickle())
    (tmp_path / "models" / "tmp" / "b.pkl").write_bytes(reduce_os_system_pickle())
    (tmp_path / "models" / ".venv").mkdir()
    (tmp_path / "models" / ".venv" / "c.pkl").write_bytes(reduce_os_system_pickle())
    code, document = scan_json("models", "--exclude", "models/tmp/", cwd=tmp_path)
    assert code == 1
    assert [r["path"] for r in document["results"]] == ["models/a.pkl"]
    assert {e["path"] for e in document["excluded"]} == {"models/tmp", "models/.venv"}
    code, document = scan_json("models", "models/.venv", cwd=tmp_path)
    assert [r["path"] for r in document["results"]] == [
        "models/a.pkl",
        "models/tmp/b.pkl",
        "models/.venv/c.pkl",
    ]


def test_a_file_not_analysed_never_passes_whatever_fail_on_says(tmp_path: Path) -> None:
    target = big_pickle(tmp_path)
    (tmp_path / "tiny.toml").write_text(TINY_LIMIT_POLICY)
    code, document = scan_json("--policy", "tiny.toml", str(target), cwd=tmp_path)
    assert code == 1
    result = document["results"][0]
    assert [f["rule_id"] for f in result["findings"]] == ["SCAN-FILE-TOO-LARGE"]
    assert result["status"] == "skipped"
    code, document = scan_json(
        "--policy", "tiny.toml", "--fail-on", "high", str(target), cwd=tmp_path
    )
    # The finding is below the threshold, but the file was never read: not a pass.
    assert (code, document["fail_on"], document["outcome"]) == (2, "high", "error")
    assert document["summary"]["not_fully_analysed"] == 1
    assert document["results"][0]["gaps"][0]["rule_id"] == "SCAN-FILE-TOO-LARGE"
    assert document["results"][0]["gaps"][0]["accepted"] is False


def test_an_accepted_gap_passes_and_is_still_reported(tmp_path: Path) -> None:
    target = big_pickle(tmp_path)
    (tmp_path / "tiny.toml").write_text(
        TINY_LIMIT_POLICY + '\n[[accept_incomplete]]\nrule = "SCAN-FILE-TOO-LARGE"\n'
    )
    code, document = scan_json(
        "--policy", "tiny.toml", "--fail-on", "high", str(target), cwd=tmp_path
    )
    assert code == 0
    result = document["results"][0]
    assert result["status"] == "skipped"
    assert result["gaps"][0]["accepted"] is True
    text = run_cli("scan", "--policy", "tiny.toml", "--fail-on", "high", str(target), cwd=tmp_path)
    assert text.code == 0
    assert "not analysed (accepted by the policy)" in text.stdout
    assert "✓" not in text.stdout


def test_ignore_drops_a_rule(tmp_path: Path) -> None:
    target = big_pickle(tmp_path)
    (tmp_path / "tiny.toml").write_text(TINY_LIMIT_POLICY)
    args = ("--policy", "tiny.toml", "--ignore", "SCAN-FILE-TOO-LARGE", str(target))
    code, document = scan_json(*args, cwd=tmp_path)
    assert code == 0
    assert document["summary"]["findings"] == 0
    assert document["summary"]["suppressed"] == 1


def test_ignoring_an_unknown_rule_warns(clean_pickle: Path, tmp_path: Path) -> None:
    run = run_cli("scan", "--ignore", "SCAN-LIMT", str(clean_pickle), cwd=tmp_path)
    assert run.code == 0
    assert "warning: --ignore SCAN-LIMT: no such rule" in run.stderr
    run = run_cli("scan", "--ignore", "SCAN-LIMIT", str(clean_pickle), cwd=tmp_path)
    assert "warning" not in run.stderr


def test_policy_with_an_unknown_key_is_a_clear_error(clean_pickle: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('fail_on = "high"\nfail_onn = "low"\n')
    run = run_cli("scan", "--policy", "bad.toml", str(clean_pickle), cwd=tmp_path)
    assert run.code == 2
    assert run.stdout == ""
    assert "bad.toml:2: unknown key(s) fail_onn" in run.stderr
    assert "Traceback" not in run.stderr


def test_missing_policy_file_is_a_clear_error(clean_pickle: Path, tmp_path: Path) -> None:
    run = run_cli("scan", "--policy", "absent.toml", str(clean_pickle), cwd=tmp_path)
    assert run.code == 2
    assert "cannot read policy file absent.toml" in run.stderr


# ---- policy discovery ---------------------------------------------------------------------


def test_modelshield_toml_in_the_working_directory_is_used(tmp_path: Path) -> None:
    target = big_pickle(tmp_path)
    (tmp_path / "modelshield.toml").write_text(TINY_LIMIT_POLICY)
    run = run_cli("scan", str(target), cwd=tmp_path)
    assert run.code == 1
    assert "policy: modelshield.toml" in run.stdout.splitlines()[0]


def test_pyproject_tool_table_is_used_when_there_is_no_policy_file(tmp_path: Path) -> None:
    target = big_pickle(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.modelshield.limits]\nmax_file_bytes = 16\n'
    )
    run = run_cli("scan", str(target), cwd=tmp_path)
    assert run.code == 1
    assert "policy: pyproject.toml [tool.modelshield]" in run.stdout.splitlines()[0]


def test_pyproject_without_a_tool_table_means_defaults(clean_pickle: Path, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    run = run_cli("scan", str(clean_pickle), cwd=tmp_path)
    assert run.code == 0
    assert "policy: built-in defaults" in run.stdout.splitlines()[0]


def test_pyproject_policy_in_dotted_keys_is_found(tmp_path: Path) -> None:
    target = big_pickle(tmp_path)
    (tmp_path / "pyproject.toml").write_text("tool.modelshield.limits.max_file_bytes = 16\n")
    run = run_cli("scan", str(target), cwd=tmp_path)
    assert run.code == 1
    assert "policy: pyproject.toml [tool.modelshield]" in run.stdout.splitlines()[0]


def test_broken_pyproject_that_names_the_tool_is_an_error(
    clean_pickle: Path, tmp_path: Path
) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.modelshield\nfail_on = 'low'\n")
    run = run_cli("scan", str(clean_pickle), cwd=tmp_path)
    assert run.code == 2
    assert "cannot read" in run.stderr and "[tool.modelshield]" in run.stderr


def test_pyproject_that_never_names_the_tool_is_not_parsed(
    clean_pickle: Path, tmp_path: Path
) -> None:
    # Not valid TOML, but it cannot hold modelshield's table: defaults, no error.
    (tmp_path / "pyproject.toml").write_bytes(b"[project\nname = \xff\n")
    run = run_cli("scan", str(clean_pickle), cwd=tmp_path)
    assert run.code == 0
    assert "policy: built-in defaults" in run.stdout.splitlines()[0]


# ---- terminal behaviour -------------------------------------------------------------------


def test_no_colour_and_no_progress_on_a_pipe(tmp_path: Path) -> None:
    paths = [big_pickle(tmp_path, f"m{i}.pkl") for i in range(6)]
    run = run_cli("scan", *map(str, paths), cwd=tmp_path)
    assert ANSI not in run.stdout
    assert run.stderr == ""


def test_progress_bar_only_on_a_terminal_for_several_files(tmp_path: Path) -> None:
    paths = [str(big_pickle(tmp_path, f"m{i}.pkl")) for i in range(5)]
    run, terminal = run_cli_with_terminal_stderr("scan", *paths, cwd=tmp_path)
    assert run.code == 0
    assert b"scanning" in terminal and b"/5" in terminal
    assert "scanning" not in run.stdout
    _, terminal = run_cli_with_terminal_stderr("scan", "--no-progress", *paths, cwd=tmp_path)
    assert terminal == b""
    _, terminal = run_cli_with_terminal_stderr("scan", "--quiet", *paths, cwd=tmp_path)
    assert terminal == b""
    _, terminal = run_cli_with_terminal_stderr("scan", *paths[:2], cwd=tmp_path)
    assert terminal == b""


def test_force_color_and_no_color(clean_pickle: Path, tmp_path: Path) -> None:
    forced = run_cli("scan", str(clean_pickle), cwd=tmp_path, env={"FORCE_COLOR": "1"})
    assert ANSI in forced.stdout
    both = run_cli(
        "scan", str(clean_pickle), cwd=tmp_path, env={"FORCE_COLOR": "1", "NO_COLOR": "1"}
    )
    assert ANSI not in both.stdout


def test_quiet_lists_only_problems(clean_pickle: Path, tmp_path: Path) -> None:
    missing = tmp_path / "gone.pkl"
    run = run_cli("scan", "--quiet", str(clean_pickle), str(missing), cwd=tmp_path)
    assert str(missing) in run.stdout
    assert str(clean_pickle) not in run.stdout


def test_hostile_file_name_reaches_the_terminal_escaped(tmp_path: Path) -> None:
    name = "evil\x1b[2J.pkl"
    (tmp_path / name).write_bytes(reduce_os_system_pickle())
    run = run_cli("scan", name, cwd=tmp_path)
    assert "\x1b[2J" not in run.stdout
    assert "evil\\x1b[2J.pkl" in run.stdout


def test_undecodable_file_name_does_not_crash(tmp_path: Path) -> None:
    # b"caf\xe9.pkl" (Latin-1) is not UTF-8: Python names it with a lone surrogate.
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "caf\udce9.pkl").write_bytes(pickle.dumps([1, 2]))
    for fmt in OutputFormat:
        run = run_cli("scan", "-f", fmt.value, "models", cwd=tmp_path)
        assert run.code == 0, run.stderr
        assert "Traceback" not in run.stderr
