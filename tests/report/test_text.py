"""The terminal reporter: exact golden text, colour only on request, escaped hostile text."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import replace

from modelshield.core.findings import FileResult, Finding, Location, Report, Severity
from modelshield.core.policy import Policy
from modelshield.report import Invocation, text
from tests.report.conftest import golden_check

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def render(report: Report, policy: Policy, **kwargs: object) -> str:
    invocation = Invocation(policy_source="modelshield.toml")
    return text.render(report, policy=policy, invocation=invocation, **kwargs)  # type: ignore[arg-type]


def test_golden(report: Report, policy: Policy) -> None:
    golden_check("report.txt", render(report, policy))


def test_plain_by_default_and_coloured_on_request(report: Report, policy: Policy) -> None:
    plain = render(report, policy)
    coloured = render(report, policy, color=True)
    assert not ANSI.search(plain)
    assert ANSI.search(coloured)
    assert ANSI.sub("", coloured) == plain


def test_files_are_grouped_worst_finding_first(report: Report, policy: Policy) -> None:
    out = render(report, policy)
    block = out[out.index("✗ models/evil.pkl") : out.index("✗ models/checkpoint.pt")]
    assert block.index("CRITICAL") < block.index("MEDIUM")
    assert "callable: os.system" not in block  # compact by default: one or two lines each
    assert block.count("\n") == 6  # the file, two findings in two lines each, a blank
    verbose = render(report, policy, verbose=True)
    block = verbose[verbose.index("✗ models/evil.pkl") : verbose.index("✗ models/checkpoint.pt")]
    assert "Loading this file runs a shell command.\n    args: ('id',)\n" in block
    assert "callable: os.system" in block


def test_summary_and_verdict_name_counts_and_threshold(report: Report, policy: Policy) -> None:
    lines = render(report, policy).splitlines()
    assert lines[-2] == (
        "Scanned 6 files in 0.42 s: 4 findings (critical 1, high 1, medium 1, low 1, info 0), "
        "2 errors, 2 suppressed by the policy"
    )
    assert lines[-1] == "FAIL: 3 findings at or above medium (exit code 1)"
    lenient = render(report, replace(policy, fail_on=Severity.CRITICAL)).splitlines()
    assert lenient[-1] == "FAIL: 1 finding at or above critical (exit code 1)"


def test_errors_alone_give_an_error_verdict(report: Report, policy: Policy) -> None:
    only_errors = replace(report, results=report.results[3:], suppressed=0)
    assert render(only_errors, policy).splitlines()[-1] == (
        "ERROR: 1 file could not be analysed fully; no findings at or above medium (exit code 2)"
    )


def test_clean_run_passes_and_names_the_default_policy() -> None:
    result = FileResult("a.pkl", "pickle", size=2048, formats_seen=("pickle",))
    out = text.render(Report("scan", "1.0", (result,)), policy=Policy(), invocation=Invocation())
    header = "modelshield 1.0 scan · policy: built-in defaults · fail on: medium"
    assert out.splitlines()[0] == header
    assert "✓ a.pkl  pickle, 2.0 KiB, no findings" in out
    assert out.splitlines()[-1] == "PASS: no findings at or above medium (exit code 0)"


def test_many_clean_files_collapse_into_one_line() -> None:
    many = tuple(FileResult(f"m{i}.pkl", "pickle" if i % 3 else "zip") for i in range(25))
    out = text.render(Report("scan", "1", many), policy=Policy(), invocation=Invocation())
    assert "✓ 25 clean files (pickle 16, zip 9); --format json lists them" in out
    assert "m7.pkl" not in out


def test_quiet_lists_only_files_that_need_attention(report: Report, policy: Policy) -> None:
    out = render(report, policy, quiet=True)
    assert "models/clean.pkl" not in out
    assert "policy:" not in out
    assert "models/evil.pkl" in out


def test_terminal_escapes_from_a_hostile_file_are_neutralised(policy: Policy) -> None:
    # CWE-150: evidence and names come from the scanned file; they must not reach the
    # terminal as control sequences or forge extra report lines.
    hostile = "\x1b[2J\x1b[1;1HPASS: all clean\n\u202eelif.lcp"
    finding = Finding(
        "EXAMPLE-CALL-DANGEROUS",
        Severity.HIGH,
        f"calls {hostile}",
        "m",
        Location(f"x{hostile}.pkl", (hostile,)),
        evidence={hostile: hostile},
    )
    result = FileResult(f"x{hostile}.pkl", "zip", findings=(finding,))
    out = text.render(Report("scan", "1", (result,)), policy=policy, invocation=Invocation())
    assert "\x1b" not in out
    assert "\u202e" not in out
    assert not any(line.startswith("PASS") for line in out.splitlines())
    assert "\\x1b[2J\\x1b[1;1HPASS: all clean\\x0a\\u202eelif.lcp" in out


def test_human_sizes() -> None:
    assert [text.human_size(n) for n in (0, 1023, 1024, 1536, 5 * 2**20, 3 * 2**30)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "1.5 KiB",
        "5.0 MiB",
        "3.0 GiB",
    ]


@given(st.text(alphabet=st.characters(exclude_categories=())))
def test_safe_leaves_no_control_or_invisible_characters(value: str) -> None:
    cleaned = text.safe(value)
    for ch in cleaned:
        code = ord(ch)
        assert not (code < 0x20 or 0x7F <= code <= 0x9F), repr(cleaned)
        assert not (0xD800 <= code <= 0xDFFF or 0x202A <= code <= 0x202E), repr(cleaned)
    if not any(ch != text.safe(ch) for ch in value):
        assert cleaned == value


def test_plain_text_never_imports_rich(tmp_path: Path) -> None:
    """A piped or CI run renders without the terminal library (start-up time)."""
    target = tmp_path / "evil.pkl"
    target.write_bytes(b"\x80\x04cos\nsystem\n\x8c\x02id\x85R.")
    code = (
        "import sys; from modelshield.cli import main; "
        f"rc = main(['scan', {str(target)!r}]); "
        "assert rc == 1, rc; "
        "assert not [m for m in sys.modules if m.split('.')[0] == 'rich'], 'rich imported'"
    )
    env = {k: v for k, v in os.environ.items() if k != "FORCE_COLOR"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "CRITICAL" in proc.stdout


def _repeated(n: int) -> FileResult:
    findings = tuple(
        Finding(
            "PICKLE-IMPORT-UNKNOWN",
            Severity.MEDIUM,
            "Pickle imports mylib:Layer",
            "Review it.",
            Location("m.pkl", (), 10 * (i + 1)),
            evidence={"callable": "mylib:Layer"},
        )
        for i in range(n)
    )
    other = Finding(
        "PICKLE-CALL-DANGEROUS", Severity.CRITICAL, "Pickle calls os.system", "x", Location("m.pkl")
    )
    return FileResult("m.pkl", "pickle", findings=(*findings, other))


def test_the_same_finding_repeated_is_one_line_with_a_count() -> None:
    report = Report("scan", "1", (_repeated(5),))
    out = text.render(report, policy=Policy(), invocation=Invocation())
    assert (
        "  MEDIUM   PICKLE-IMPORT-UNKNOWN  Pickle imports mylib:Layer  ×5\n"
        "    at offset 10, offset 20, offset 30 and 2 more: Review it.\n"
    ) in out
    assert out.count("PICKLE-IMPORT-UNKNOWN") == 1
    assert "1 finding" not in out and "6 findings" in out  # the count is the real one
    verbose = text.render(report, policy=Policy(), invocation=Invocation(), verbose=True)
    assert verbose.count("PICKLE-IMPORT-UNKNOWN") == 5


def _vulnerability(package: str, version: str, ids: str, line: int, fixed: str) -> Finding:
    return Finding(
        "AUDIT-VULNERABLE-DEPENDENCY",
        Severity.HIGH,
        f"{package} {version} is affected by {ids.split(', ')[0]}",
        "Upgrade.",
        Location("requirements.txt"),
        evidence={
            "package": package,
            "version": version,
            "ids": ids,
            "fixed_versions": fixed,
            "line": str(line),
        },
    )


def audit_report() -> Report:
    findings = (
        _vulnerability("jinja2", "2.4.1", "PYSEC-2014-8, CVE-2014-1402", 3, "2.7.2"),
        _vulnerability("jinja2", "2.4.1", "GHSA-462w-v97r-4m45", 3, "2.10.1, 3.0.0"),
        _vulnerability("torch", "1.13.0", "PYSEC-2024-259", 1, ""),
        Finding(
            "AUDIT-UNPINNED-MAY-RESOLVE-VULNERABLE",
            Severity.MEDIUM,
            "numpy>=1.0 admits a vulnerable version",
            "Pin it.",
            Location("requirements.txt"),
            evidence={"package": "numpy", "line": "2"},
        ),
    )
    result = FileResult("requirements.txt", "requirements", findings=findings, size=40)
    return Report("audit", "9.8.7", (result,), duration_s=0.1)


def test_known_vulnerabilities_are_a_table() -> None:
    out = text.render(audit_report(), policy=Policy(), invocation=Invocation())
    golden_check("audit.txt", out)
    lines = out.splitlines()
    head = lines.index("Found 3 known vulnerabilities in 2 package versions")
    assert lines[head + 1].split() == [
        "Name",
        "Version",
        "ID",
        "Severity",
        "Fix",
        "Versions",
        "Where",
    ]
    assert lines[head + 3].split() == [
        "jinja2",
        "2.4.1",
        "PYSEC-2014-8",
        "high",
        "2.7.2",
        "requirements.txt:3",
    ]
    assert lines[head + 5].split()[:5] == ["torch", "1.13.0", "PYSEC-2024-259", "high", "none"]
    # The file block does not repeat the table; the other findings are listed with their line.
    assert "  3 known vulnerabilities: see the table above" in lines
    assert "    at line 2: Pin it." in lines
    verbose = text.render(audit_report(), policy=Policy(), invocation=Invocation(), verbose=True)
    assert verbose.count("AUDIT-VULNERABLE-DEPENDENCY") == 3


def test_paths_left_out_are_named() -> None:
    from modelshield.core.findings import Excluded

    left = tuple(Excluded(f"repo/d{i}", "gitignore", f".gitignore:{i}: d{i}/") for i in range(7))
    report = Report(
        "scan",
        "1",
        (FileResult("a.pkl", "pickle"),),
        excluded=(Excluded(".venv", "default", ".venv"), *left),
        excluded_total=8,
    )
    out = text.render(report, policy=Policy(), invocation=Invocation())
    assert "○ 8 paths left out of the search (1 by default, 7 by gitignore)" in out
    assert "  .venv  (default: .venv)" in out
    assert "  ... 3 more (--verbose lists them)" in out
    verbose = text.render(report, policy=Policy(), invocation=Invocation(), verbose=True)
    assert "  repo/d6  (gitignore: .gitignore:6: d6/)" in verbose


def test_a_merged_report_has_a_section_per_pillar() -> None:
    scan = replace(_repeated(1), pillar="scan")
    audit = replace(audit_report().results[0], pillar="audit")
    gate = FileResult("modelshield.toml", "modelshield-policy", pillar="gate")
    out = text.render(
        Report("ci", "1", (audit, scan, gate)), policy=Policy(), invocation=Invocation()
    )
    headings = [line for line in out.splitlines() if line.startswith("── ")]
    assert headings == [
        "── Policy (1 input, 0 findings)",
        "── Model scan (1 input, 2 findings)",
        "── Dependency audit (1 input, 4 findings)",
    ]
