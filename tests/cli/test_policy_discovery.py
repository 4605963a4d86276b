"""Which policy a command runs under: --policy, else ./modelshield.toml, else the
``[tool.modelshield]`` table of ./pyproject.toml, else the defaults, and never a silent fallback
from a file that might hold the policy the user meant."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelshield.cli._common import resolve_policy
from modelshield.core.errors import ConfigError
from modelshield.core.findings import Severity
from modelshield.core.policy import Policy

TOOL_TABLE = "[project]\nname = 'x'\n\n[tool.modelshield]\nfail_on = 'high'\n"


def test_an_explicit_policy_file_wins(tmp_path: Path) -> None:
    (tmp_path / "modelshield.toml").write_text("fail_on = 'low'\n")
    (tmp_path / "pyproject.toml").write_text(TOOL_TABLE)
    other = tmp_path / "ci-policy.toml"
    other.write_text("fail_on = 'critical'\n")
    policy, source = resolve_policy(str(other), cwd=tmp_path)
    assert (policy.fail_on, source) == (Severity.CRITICAL, str(other))


def test_an_explicit_policy_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "modelshield.toml").write_text("fail_on = 'low'\n")
    with pytest.raises(ConfigError, match="cannot read policy file"):
        resolve_policy(str(tmp_path / "absent.toml"), cwd=tmp_path)


def test_modelshield_toml_comes_before_pyproject(tmp_path: Path) -> None:
    (tmp_path / "modelshield.toml").write_text("fail_on = 'low'\n")
    (tmp_path / "pyproject.toml").write_text(TOOL_TABLE)
    policy, source = resolve_policy(None, cwd=tmp_path)
    assert (policy.fail_on, source) == (Severity.LOW, "modelshield.toml")


def test_the_pyproject_tool_table_is_found(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(TOOL_TABLE)
    policy, source = resolve_policy(None, cwd=tmp_path)
    assert (policy.fail_on, source) == (Severity.HIGH, "pyproject.toml [tool.modelshield]")


@pytest.mark.parametrize(
    "text",
    [
        "tool.modelshield.fail_on = 'high'\n",  # dotted keys
        "tool = { modelshield = { fail_on = 'high' } }\n",  # inline table
        "[tool]\nmodelshield.fail_on = 'high'\n",
    ],
    ids=["dotted", "inline", "mixed"],
)
def test_every_toml_spelling_of_the_tool_table_is_found(tmp_path: Path, text: str) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    assert resolve_policy(None, cwd=tmp_path)[0].fail_on is Severity.HIGH


@pytest.mark.parametrize(
    "text",
    [
        "[project]\nname = 'x'\n",
        # Names the tool without holding its table: defaults, not an error.
        "[project]\nname = 'modelshield-plugin'\n[tool.other]\nx = 1\n",
    ],
    ids=["never-named", "named-elsewhere"],
)
def test_a_pyproject_without_the_table_means_defaults(tmp_path: Path, text: str) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    assert resolve_policy(None, cwd=tmp_path) == (Policy(), None)


def test_no_policy_anywhere_means_defaults(tmp_path: Path) -> None:
    assert resolve_policy(None, cwd=tmp_path) == (Policy(), None)


def test_a_folder_named_pyproject_toml_means_defaults(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").mkdir()
    assert resolve_policy(None, cwd=tmp_path) == (Policy(), None)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"[tool.modelshield\nfail_on = 'low'\n", "cannot read .*pyproject.toml"),
        (b"# modelshield \xff\n[tool.modelshield]\n", "cannot read .*pyproject.toml"),
        (b"[tool]\nmodelshield = 3\n", r"\[tool.modelshield\] must be a table"),
        (b"[tool.modelshield]\nfail_on = 3\n", r"pyproject.toml:2: 'fail_on'"),
    ],
    ids=["bad-toml", "not-utf8", "not-a-table", "bad-key"],
)
def test_a_pyproject_that_may_hold_the_policy_must_be_valid(
    tmp_path: Path, content: bytes, message: str
) -> None:
    (tmp_path / "pyproject.toml").write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        resolve_policy(None, cwd=tmp_path)


def test_a_pyproject_that_cannot_be_read_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "pyproject.toml"
    target.write_text(TOOL_TABLE)
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        # What reading a mode-000 file does (root ignores the mode, so it is simulated).
        if self == target:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with pytest.raises(ConfigError, match="Permission denied"):
        resolve_policy(None, cwd=tmp_path)


def test_the_working_directory_is_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "modelshield.toml").write_text("fail_on = 'info'\n")
    monkeypatch.chdir(tmp_path)
    assert resolve_policy(None)[0].fail_on is Severity.INFO
