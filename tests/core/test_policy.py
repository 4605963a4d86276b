"""The policy file: every key validated (a wrong type or an unknown key is a ConfigError naming
it, never a silent default), and every setting doing what the README says it does."""

from __future__ import annotations

import datetime
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from msgspec.structs import replace

from modelshield.core.errors import ConfigError
from modelshield.core.findings import FileResult, Finding, Gap, Location, Report, Severity
from modelshield.core.limits import Limits
from modelshield.core.policy import ExitCode, Policy


def _finding(rule: str, path: str = "models/a.pkl", severity: Severity = Severity.HIGH) -> Finding:
    return Finding(rule, severity, "title", "message", Location(path))


def _report(*results: FileResult) -> Report:
    return Report.of("scan", results)


def _policy(text: str) -> Policy:
    """A policy from TOML text, as a policy file would give it."""
    return Policy.from_mapping(tomllib.loads(text), source="modelshield.toml")


# ---- wrong shapes: each key, each way ------------------------------------------------------

BAD_POLICIES: list[tuple[str, str]] = [
    # (policy text, what the error must name)
    ("failon = 'high'", "unknown key(s) failon"),
    ("fail_on = 3", "'fail_on' must be a str"),
    ("fail_on = 'severe'", "unknown severity 'severe'"),
    ("ignore = 'PICKLE-CALL-DANGEROUS'", "'ignore' must be a list"),
    ("ignore = ['A-B', 3]", "'ignore' must be a str"),
    ("suppress = 'x'", "'suppress' must be a list"),
    ("suppress = ['x']", "'suppress[0]' must be a dict"),
    ("[[suppress]]\nrule = 'A-B'", "suppress[0] needs exactly 'rule' and 'paths'"),
    ("[[suppress]]\npaths = ['*']", "suppress[0] needs exactly 'rule' and 'paths'"),
    ("[[suppress]]\nrule = 'A-B'\npaths = ['*']\npath = 'x'", "suppress[0] needs exactly"),
    ("[[suppress]]\nrule = 1\npaths = ['*']", "'suppress[0].rule' must be a str"),
    ("[[suppress]]\nrule = 'A-B'\npaths = '*'", "'suppress[0].paths' must be a list"),
    ("[[suppress]]\nrule = 'A-B'\npaths = ['*', 2]", "'suppress[0].paths' must be a str"),
    ("accept_incomplete = 'SCAN-LIMIT'", "'accept_incomplete' must be a list"),
    ("accept_incomplete = [1]", "'accept_incomplete[0]' must be a dict"),
    ("[[accept_incomplete]]\npaths = ['*']", "accept_incomplete[0] needs 'rule'"),
    (
        "[[accept_incomplete]]\nrule = 'SCAN-LIMIT'\nreason = 'trusted'",
        "accept_incomplete[0] needs 'rule'",
    ),
    ("[[accept_incomplete]]\nrule = ['SCAN-LIMIT']", "'accept_incomplete[0].rule' must be a str"),
    (
        "[[accept_incomplete]]\nrule = 'SCAN-LIMIT'\npaths = 'x/*'",
        "'accept_incomplete[0].paths' must be a list",
    ),
    ("severity = 'low'", "'severity' must be a dict"),
    ("[severity]\n'A-B' = 1", "'severity.A-B' must be a str"),
    ("[severity]\n'A-B' = 'urgent'", "unknown severity 'urgent'"),
    ("callables = ['os.system']", "'callables' must be a dict"),
    ("[callables]\nallowed = ['x']", "unknown key(s) in [callables]: allowed"),
    ("[callables]\nallow = 'mypkg.*'", "'callables.allow' must be a list"),
    ("[callables]\ndeny = [1]", "'callables.deny' must be a str"),
    ("limits = 4", "'limits' must be a dict"),
    ("[limits]\nmax_depth = 4", "unknown limit(s): max_depth"),
    ("[limits]\nmax_nested_depth = 0", "limit 'max_nested_depth' must be a positive number"),
    ("[limits]\nmax_opcodes = -1", "limit 'max_opcodes' must be a positive number"),
    ("[limits]\nmax_file_bytes = '64 GiB'", "limit 'max_file_bytes' must be a positive number"),
    ("[limits]\nmax_members = true", "limit 'max_members' must be a positive number"),
    ("models = 'models/'", "'models' must be a list"),
    ("exclude = [1]", "'exclude' must be a str"),
    ("gitignore = 'yes'", "'gitignore' must be a bool"),
    ("manifest = 'x'", "'manifest' must be a dict"),
    ("[manifest]\ndir = 'models'", "unknown key(s) in [manifest]: dir"),
    ("[manifest]\npath = 1", "'manifest.path' must be a str"),
    ("ci = []", "'ci' must be a dict"),
    ("[ci]\nskip = ['scan', 'lint']", "ci.skip: unknown pillar(s) lint"),
    ("[ci]\nbaseline = 1", "'ci.baseline' must be a str"),
    ("[ci]\nbase = 'x'", "unknown key(s) in [ci]: base"),
    ("[audit]\nignore = 'GHSA-1'", "'audit.ignore' must be a list"),
    ("[[audit.ignore]]\nid = 'GHSA-1'", "audit.ignore[0] needs 'id' and 'reason'"),
    ("[[audit.ignore]]\nid = 'GHSA-1'\nreason = ' '", "audit.ignore[0].reason is empty"),
    (
        "[[audit.ignore]]\nid = 'GHSA-1'\nreason = 'r'\nexpires = 'soon'",
        "'audit.ignore[0].expires' must be a date",
    ),
    (
        "[[audit.ignore]]\nid = 'GHSA-1'\nreason = 'r'\nexpires = 2026-01-01T10:00:00",
        "'audit.ignore[0].expires' must be a date",
    ),
    ("[audit]\ndb = ['x']", "'audit.db' must be a str"),
]


@pytest.mark.parametrize(("text", "message"), BAD_POLICIES, ids=[m for _, m in BAD_POLICIES])
def test_a_malformed_policy_is_a_config_error_naming_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _policy(text)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    "text",
    [
        t
        for t, m in BAD_POLICIES
        if not m.startswith(("limit", "unknown severity", "unknown limit"))
    ],
)
def test_shape_errors_name_the_policy_file(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^modelshield\.toml: "):
        _policy(text)


@pytest.mark.parametrize(("text", "message"), BAD_POLICIES, ids=[m for _, m in BAD_POLICIES])
def test_a_policy_file_error_names_its_line(tmp_path: Path, text: str, message: str) -> None:
    """The line of the key (or, for an entry missing a key, of its table header)."""
    path = tmp_path / "modelshield.toml"
    path.write_text("# the team's policy\n\n" + text + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        Policy.from_file(path)
    line = 1 if " needs " in message else len(text.splitlines())
    if message == "'suppress[0].rule' must be a str":
        line = 2  # rule = 1, before the paths
    assert str(raised.value).startswith(f"{path}:{line + 2}: ")
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        # the second entry of an array of tables, not the first
        ("[[suppress]]\nrule = 'A'\npaths = ['*']\n\n[[suppress]]\nrule = 'B'\npaths = 'x'", 7),
        # a dotted key at the top level, and a quoted one
        ("fail_on = 'low'\nci.skip = 3", 2),
        ("[callables]\n\"allow\" = 'x'", 2),
        # a key after a comment on the header line
        ("[ci]  # what ci runs\nbase = 'x'", 2),
    ],
)
def test_the_line_of_nested_and_dotted_keys(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "modelshield.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:{line}: "):
        Policy.from_file(path)


def test_a_pyproject_error_names_its_line_among_other_tools_tables(tmp_path: Path) -> None:
    """Tables of other tools with the same key names are not the policy's."""
    path = tmp_path / "pyproject.toml"
    path.write_text(
        "[project]\nname = 'x'\n\n[tool.other.ci]\nskip = 3\n\n"
        "[tool.modelshield]\nfail_on = 'high'\n\n[tool.modelshield.ci]\nskip = 3\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:11: 'ci.skip' must be"):
        Policy.from_file(path)


def test_every_top_level_key_has_a_malformed_case() -> None:
    """A new policy key needs its wrong-shape case above."""
    valid: dict[str, Any] = {
        "fail_on": "low",
        "ignore": [],
        "suppress": [],
        "accept_incomplete": [],
        "severity": {},
        "callables": {},
        "limits": {},
        "models": [],
        "exclude": [],
        "gitignore": True,
        "manifest": {},
        "ci": {},
    }
    Policy.from_mapping(valid)  # the loader knows each of these keys...
    for key in valid:  # ...and each has a wrong-shape case above
        assert any(text.lstrip("[").startswith(key) for text, _ in BAD_POLICIES), key


def test_every_limit_is_checked_for_positive_numbers() -> None:
    for name in Limits.__struct_fields__:
        with pytest.raises(ConfigError, match=name):
            Limits.from_mapping({name: 0})
        with pytest.raises(ConfigError, match=name):
            Limits.from_mapping({name: "1"})
    assert Limits.from_mapping({"max_seconds_per_file": 0.5}).max_seconds_per_file == 0.5


# ---- what a valid policy does ----------------------------------------------------------------


def test_the_readme_example_keys_load_into_the_fields() -> None:
    policy = _policy(
        """
        fail_on = "HIGH"
        ignore = ["ARCHIVE-DUPLICATE-NAME"]
        [[suppress]]
        rule = "PICKLE-IMPORT-UNKNOWN"
        paths = ["models/legacy/*"]
        [severity]
        "ARCHIVE-ENCRYPTED-MEMBER" = "low"
        [callables]
        allow = ["mypkg.models.*"]
        deny = ["somelib:unsafe_loader"]
        [[accept_incomplete]]
        rule = "SCAN-FILE-TOO-LARGE"
        [limits]
        max_nested_depth = 4
        """
    )
    assert policy.fail_on is Severity.HIGH
    assert policy.ignore == frozenset({"ARCHIVE-DUPLICATE-NAME"})
    assert policy.suppress[0].rule == "PICKLE-IMPORT-UNKNOWN"
    assert policy.suppress[0].paths == ("models/legacy/*",)
    assert policy.severity_overrides == {"ARCHIVE-ENCRYPTED-MEMBER": Severity.LOW}
    assert policy.allow_callables == ("mypkg.models.*",)
    assert policy.deny_callables == ("somelib:unsafe_loader",)
    assert policy.accept_incomplete[0].paths == ()
    assert policy.limits == Limits(max_nested_depth=4)


def test_callables_may_name_only_one_list() -> None:
    policy = _policy("[callables]\ndeny = ['x.y']")
    assert (policy.allow_callables, policy.deny_callables) == ((), ("x.y",))


@pytest.mark.parametrize(
    ("glob", "path", "dropped"),
    [
        ("models/legacy/*", "models/legacy/a.pkl", True),
        ("models/legacy/*", "models/legacy/sub/a.pkl", True),  # fnmatch's * crosses folders
        ("models/legacy/*", "models/current/a.pkl", False),
        ("*.pkl", "models/a.pkl", True),
        ("*.pkl", "models/a.pt", False),
        ("models/[ab].pkl", "models/b.pkl", True),
        ("models/?.pkl", "models/ab.pkl", False),
    ],
)
def test_suppress_globs_match_the_finding_path(glob: str, path: str, dropped: bool) -> None:
    policy = _policy(f"[[suppress]]\nrule = 'PICKLE-IMPORT-UNKNOWN'\npaths = [{glob!r}]")
    finding = _finding("PICKLE-IMPORT-UNKNOWN", path)
    assert (policy.keep(finding) is None) == dropped
    assert policy.keep(_finding("PICKLE-CALL-DANGEROUS", path)) is not None


def test_suppress_of_every_rule_and_the_count_of_dropped_findings() -> None:
    policy = _policy("[[suppress]]\nrule = '*'\npaths = ['vendor/*']")
    result = FileResult(
        "vendor/m.pkl",
        "pickle",
        findings=(_finding("A-B", "vendor/m.pkl"), _finding("C-D", "vendor/m.pkl")),
    )
    kept = FileResult("m.pkl", "pickle", findings=(_finding("A-B", "m.pkl"),))
    applied = policy.apply(_report(result, kept))
    assert [len(r.findings) for r in applied.results] == [0, 1]
    assert applied.suppressed == 2


def test_severity_overrides_rerank_findings_and_move_the_exit_code() -> None:
    report = _report(FileResult("m.pkl", "pickle", findings=(_finding("A-B"),)))
    policy = _policy("[severity]\n'A-B' = 'info'")
    applied = policy.apply(report)
    assert applied.findings[0].severity is Severity.INFO
    assert policy.exit_code(applied) is ExitCode.OK
    assert Policy().exit_code(Policy().apply(report)) is ExitCode.FINDINGS


def _gap_result(path: str, rule: str = "SCAN-LIMIT") -> FileResult:
    return FileResult(path, "pickle", gaps=(Gap(rule, Location(path), "stopped"),))


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("[[accept_incomplete]]\nrule = 'SCAN-LIMIT'", True),
        ("[[accept_incomplete]]\nrule = 'SCAN-LIMIT'\npaths = ['big/*']", True),
        ("[[accept_incomplete]]\nrule = 'SCAN-LIMIT'\npaths = ['small/*']", False),
        ("[[accept_incomplete]]\nrule = 'SCAN-FILE-TOO-LARGE'", False),
        ("[[accept_incomplete]]\nrule = '*'", True),
        ("ignore = ['SCAN-LIMIT']", True),
        ("[[suppress]]\nrule = 'SCAN-LIMIT'\npaths = ['big/*']", True),
        ("[[suppress]]\nrule = 'SCAN-LIMIT'\npaths = ['small/*']", False),
        ("fail_on = 'critical'", False),
    ],
)
def test_gaps_fail_the_run_until_the_policy_accepts_them(text: str, accepted: bool) -> None:
    policy = _policy(text)
    applied = policy.apply(_report(_gap_result("big/m.pkl")))
    gap = applied.results[0].gaps[0]
    assert gap.accepted is accepted
    assert applied.results[0].status == "incomplete"  # accepted or not, it is still reported
    assert policy.exit_code(applied) is (ExitCode.OK if accepted else ExitCode.ERROR)


def test_a_finding_at_the_threshold_wins_over_an_unfinished_file() -> None:
    report = _report(
        FileResult("a.pkl", "pickle", findings=(_finding("A-B", "a.pkl"),)), _gap_result("b.pkl")
    )
    assert Policy().exit_code(report) is ExitCode.FINDINGS
    assert Policy(fail_on=Severity.CRITICAL).exit_code(report) is ExitCode.ERROR


def test_paths_in_the_policy_are_relative_to_its_file_whatever_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    (project / "models" / "legacy").mkdir(parents=True)
    (project / "modelshield.toml").write_text(
        "[[suppress]]\nrule = 'A-B'\npaths = ['models/legacy/*']\n"
        "[[accept_incomplete]]\nrule = 'SCAN-LIMIT'\npaths = ['./models/*']\n"
    )
    policy = Policy.from_file(project / "modelshield.toml")
    assert policy.root == str(project)
    for cwd in (project, tmp_path, project / "models"):
        monkeypatch.chdir(cwd)
        inside = os.path.relpath(project / "models" / "legacy" / "a.pkl")
        assert policy.keep(_finding("A-B", inside)) is None, cwd
        assert policy.keep(_finding("A-B", str(project / "models" / "legacy" / "a.pkl"))) is None
        assert policy.keep(_finding("A-B", os.path.relpath(project / "a.pkl"))) is not None
        gap = Gap("SCAN-LIMIT", Location(os.path.relpath(project / "models" / "b.pkl")), "x")
        assert policy.accepts(gap), cwd
    # Before: globs matched the path as the command line wrote it, so running from the
    # parent directory silently stopped matching.
    monkeypatch.chdir(tmp_path)
    assert Policy(suppress=policy.suppress).keep(_finding("A-B", "project/models/legacy/a.pkl"))


def test_vulnerability_ignores_have_a_reason_and_expire() -> None:
    policy = _policy(
        """
        [[audit.ignore]]
        id = "GHSA-aaaa-bbbb-cccc"
        reason = "the vulnerable parser is never called"
        expires = 2026-06-30
        [[audit.ignore]]
        id = "PYSEC-2024-1"
        reason = "accepted by the risk board"
        """
    )
    first, second = policy.audit.ignore
    assert (first.id, first.expires) == ("GHSA-aaaa-bbbb-cccc", datetime.date(2026, 6, 30))
    assert second.expires is None
    assert policy.audit.active_ignores(datetime.date(2026, 6, 30)) == (first.id, second.id)
    assert policy.audit.active_ignores(datetime.date(2026, 7, 1)) == (second.id,)
    as_text = _policy("[[audit.ignore]]\nid='X-1'\nreason='r'\nexpires='2026-01-02'")
    assert as_text.audit.ignore[0].expires == datetime.date(2026, 1, 2)


def test_ci_settings_load() -> None:
    policy = _policy(
        """
        models = ["models/", "weights.pt"]
        exclude = ["models/scratch/"]
        gitignore = false
        [manifest]
        path = "models"
        file = "models/modelshield.manifest.json"
        [ci]
        skip = ["assess"]
        baseline = "modelshield-baseline.json"
        """
    )
    assert policy.models == ("models/", "weights.pt")
    assert policy.exclude == ("models/scratch/",)
    assert policy.gitignore is False
    assert policy.manifest.path == "models"
    assert policy.ci.skip == ("assess",)
    assert policy.ci.baseline == "modelshield-baseline.json"


# ---- reading the file ------------------------------------------------------------------------


def test_from_file_reads_a_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "modelshield.toml"
    path.write_text("fail_on = 'low'\n", encoding="utf-8")
    assert Policy.from_file(path).fail_on is Severity.LOW


def test_from_file_reads_the_tool_table_of_a_pyproject(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text("[project]\nname = 'x'\n[tool.modelshield]\nfail_on = 'low'\n")
    assert Policy.from_file(path).fail_on is Severity.LOW
    path.write_text("[project]\nname = 'x'\n")
    read = Policy.from_file(path)  # the defaults, rooted at the file's directory
    assert (read.root, read.file) == (str(tmp_path), str(path))
    assert replace(read, root=None, file=None) == Policy()


def test_errors_in_a_pyproject_tool_table_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.modelshield]\nfail_on = 'sometimes'\n")
    with pytest.raises(ConfigError, match="unknown severity"):
        Policy.from_file(path)
    path.write_text("[tool.modelshield]\nfailon = 'low'\n")
    with pytest.raises(ConfigError, match=r"pyproject\.toml:2: unknown key"):
        Policy.from_file(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read policy file"),
        (b"fail_on = \n", "is not valid TOML"),
        (b"fail_on = '\xff'\n", "is not valid TOML"),
    ],
    ids=["missing", "bad-toml", "not-utf8"],
)
def test_an_unreadable_policy_file_is_a_config_error(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "modelshield.toml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as raised:
        Policy.from_file(path)
    assert str(path) in str(raised.value)


def test_config_errors_explain_themselves() -> None:
    with pytest.raises(ConfigError) as raised:
        _policy("fail_on = 1")
    assert raised.value.diagnostics().startswith("configuration error: modelshield.toml:")
