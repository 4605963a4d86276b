"""Fingerprints and the baseline: a finding keeps its identity when lines move, a file is
saved again with the same content or the run starts elsewhere; a new finding does not; a
baseline from anything else is a clear error naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelshield.audit.sources.osv_db import OfflineDatabase
from modelshield.core.errors import ConfigError
from modelshield.core.findings import FileResult, Finding, Location, Report, Severity
from modelshield.core.fingerprint import fingerprint
from modelshield.core.policy import Policy
from modelshield.gate.baseline import Baseline, apply_baseline
from modelshield.gate.ci import run_ci
from modelshield.scanner.engine import scan_paths
from tests.cli.conftest import reduce_os_system_pickle
from tests.gate.conftest import Project


def test_a_pickle_finding_survives_a_resave_that_moves_it(tmp_path: Path) -> None:
    """The same call at another byte offset (a NONE/POP pair before it) is the same finding;
    another callable is not."""
    model = tmp_path / "m.pkl"
    model.write_bytes(reduce_os_system_pickle())
    before = scan_paths([model]).findings
    model.write_bytes(b"\x80\x02NN00" + reduce_os_system_pickle()[2:])
    after = scan_paths([model]).findings
    assert [f.location.offset for f in before] != [f.location.offset for f in after]
    assert [fingerprint(f) for f in before] == [fingerprint(f) for f in after]
    model.write_bytes(reduce_os_system_pickle().replace(b"os\nsystem", b"os\npopen"))
    assert [fingerprint(f) for f in scan_paths([model]).findings] != [
        fingerprint(f) for f in before
    ]


def test_a_python_finding_survives_lines_moving(tmp_path: Path) -> None:
    source = tmp_path / "loader.py"
    source.write_text("import os\n\ndef load():\n    os.system('id')\n")
    before = scan_paths([source]).findings
    source.write_text("import os\n\n\n# moved down\n\ndef load():\n    os.system('id')\n")
    after = scan_paths([source]).findings
    assert [f.evidence["line"] for f in before] == ["4"]
    assert [f.evidence["line"] for f in after] == ["7"]
    assert [fingerprint(f) for f in before] == [fingerprint(f) for f in after]


def test_a_vulnerability_survives_lines_moving_and_another_working_directory(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.without_baseline()
    policy = Policy.from_file(project.root / "modelshield.toml")
    source = OfflineDatabase(str(project.root.parent / "osv"), cache_dir=None)
    monkeypatch.chdir(project.elsewhere)
    first = run_ci(project.root, policy, source=source).report
    requirements = project.root / "requirements.txt"
    requirements.write_text("\n\n# moved\n" + requirements.read_text())
    monkeypatch.chdir(project.root)
    second = run_ci(".", policy, source=source).report
    a = {f.evidence["package"]: f for f in first.findings if f.rule_id.startswith("AUDIT-VUL")}
    b = {f.evidence["package"]: f for f in second.findings if f.rule_id.startswith("AUDIT-VUL")}
    assert set(a) == set(b) == {"jinja2", "requests"}
    assert {p: a[p].evidence["line"] for p in a} != {p: b[p].evidence["line"] for p in b}
    assert {p: fingerprint(a[p], str(project.root)) for p in a} == {
        p: fingerprint(b[p], str(project.root)) for p in b
    }
    assert Baseline.of(first.findings, str(project.root)) == Baseline.of(
        second.findings, str(project.root)
    )


def _finding(path: str, offset: int, callable_: str = "os.system") -> Finding:
    return Finding(
        "PICKLE-CALL-DANGEROUS",
        Severity.CRITICAL,
        f"calls {callable_}",
        "m",
        Location(path, (), offset),
        evidence={"callable": callable_},
    )


def test_the_baseline_accepts_as_many_as_it_recorded() -> None:
    old = [_finding("m.pkl", 10), _finding("m.pkl", 20)]
    baseline = Baseline.of(old)
    assert [(e.count, e.path, e.rule_id) for e in baseline.entries] == [
        (2, "m.pkl", "PICKLE-CALL-DANGEROUS")
    ]
    third = _finding("m.pkl", 30)
    other = _finding("m.pkl", 40, "subprocess.run")
    report = Report("ci", "1", (FileResult("m.pkl", "pickle", findings=(*old, third, other)),))
    applied = apply_baseline(report, baseline)
    assert [f.location.offset for f in applied.report.findings] == [30, 40]
    assert applied.report.baselined == 2
    assert Policy().exit_code(applied.report) == 1
    gone = apply_baseline(Report("ci", "1", (FileResult("m.pkl", "pickle"),)), baseline)
    assert [e.path for e in gone.absent] == ["m.pkl"]


def test_the_baseline_file_round_trips(tmp_path: Path) -> None:
    baseline = Baseline.of([_finding("models/a.pkl", 1), _finding("b.pkl", 2)])
    path = tmp_path / "b.json"
    baseline.write(path)
    assert Baseline.read(path) == baseline
    document = json.loads(path.read_text())
    assert [e["path"] for e in document["findings"]] == ["b.pkl", "models/a.pkl"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"version": "2.1.0", "runs": []}',
            "not a modelshield baseline (it looks like a SARIF log)",
        ),
        ('{"schema_version": "2.0", "results": []}', "looks like a modelshield JSON report"),
        ('{"kind": "baseline", "tool": "other"}', "a baseline of another tool ('other')"),
        ("[1, 2]", "not a modelshield baseline;"),
        (
            '{\n  "kind": "baseline",\n  "tool": \n}',
            ":4:1: not a modelshield baseline: invalid JSON",
        ),
        (
            '{"kind": "baseline", "tool": "modelshield", "baseline_version": 1, '
            '"fingerprint": "v1", "findings": []}',
            "made with fingerprints 'v1'",
        ),
        (
            '{"kind": "baseline", "tool": "modelshield", "baseline_version": 1, '
            '"fingerprint": "v2", "findings": [{"count": 2}]}',
            "findings[0] needs a 'fingerprint' string",
        ),
    ],
)
def test_a_baseline_from_anything_else_is_an_error_naming_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"^" + str(path).replace(".", r"\.")) as raised:
        Baseline.read(path)
    assert message in str(raised.value)
