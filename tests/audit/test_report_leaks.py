"""Reports do not leak what they should not: issue 13, item 4.

An untrusted ``requirements.txt`` could include any readable file (``-r /abs/path``,
``-r ../../x``) and have its lines quoted in text, JSON and SARIF reports, and ``${VAR}`` was
expanded from the environment into them. Includes outside the audited tree are now refused
unless the user allows them, variables are expanded only when the user names them, and an
error quotes at most a shortened copy of the requirement it failed to parse.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelshield.audit.inputs._common import MAX_QUOTED, ParseOptions
from modelshield.audit.inputs.requirements import parse_requirements
from modelshield.cli import main
from modelshield.report import OutputFormat

from .conftest import WriteDb, osv_record

SECRET = "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY/" + "Q" * 40
"""Longer than any quote a message may make."""


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """A project beside a secrets folder: ``project/requirements.txt`` and ``secrets/key``."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "key").write_text(f"{SECRET}\n")
    project = tmp_path / "project"
    project.mkdir()
    return project, secrets / "key"


@pytest.mark.parametrize("how", ["absolute", "relative", "symlink", "constraint"])
@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_includes_outside_the_audited_tree_are_refused_and_never_quoted(
    how: str,
    fmt: OutputFormat,
    layout: tuple[Path, Path],
    write_db: WriteDb,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project, secret = layout
    include = {
        "absolute": f"-r {secret}",
        "relative": "-r ../secrets/key",
        "symlink": "-r inside.txt",
        "constraint": f"--constraint={secret}",
    }[how]
    (project / "inside.txt").symlink_to(secret)
    (project / "requirements.txt").write_text(f"joblib==1.0\n{include}\n")
    db = write_db(osv_record("PYSEC-1", "joblib", versions=["0.1"]))
    args = ["audit", "--db", str(db), "--cache-dir", str(project.parent / "c"), "-f", fmt.value]
    assert main([*args, str(project)]) == 2
    captured = capsys.readouterr()
    assert "outside the audited tree" in captured.out
    assert SECRET not in captured.out + captured.err
    # The user may allow the folder: then it is read, as pip would read it.
    assert main([*args, "--allow-include", str(secret.parent), str(project)]) == 2
    captured = capsys.readouterr()
    assert "outside the audited tree" not in captured.out
    assert "invalid requirement" in captured.out  # the key file is not a requirement...
    assert SECRET not in captured.out  # ...and only a shortened quote of it appears


def test_includes_inside_the_tree_are_read(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "more.txt").write_text("numpy==1.26.4\n")
    req = tmp_path / "requirements.txt"
    req.write_text("-r sub/more.txt\n")
    result = parse_requirements(req, str(req), ParseOptions(tree=str(tmp_path)))
    assert result.errors == () and [d.canonical for d in result.dependencies] == ["numpy"]


def test_environment_variables_are_expanded_only_when_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("TORCH_VERSION", "2.1.0")
    req = tmp_path / "requirements.txt"
    req.write_text("torch==${TORCH_VERSION}\nboto3==${AWS_SECRET_ACCESS_KEY}\n")
    refused = parse_requirements(req, str(req), ParseOptions())
    assert refused.dependencies == ()
    assert [e.message.split(": ", 1)[1][:40] for e in refused.errors] == [
        "uses the environment variable ${TORCH_VE",
        "uses the environment variable ${AWS_SECR",
    ]
    assert "wJalrXUtnFEMI" not in " ".join(e.message for e in refused.errors)
    named = parse_requirements(req, str(req), ParseOptions(expand_env=frozenset({"TORCH_VERSION"})))
    assert [(d.canonical, d.version) for d in named.dependencies] == [("torch", "2.1.0")]
    assert len(named.errors) == 1 and "wJalrXUtnFEMI" not in named.errors[0].message


def test_an_error_quotes_at_most_a_shortened_requirement(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text(f"pkg==={SECRET}\n")
    (error,) = parse_requirements(req, str(req), ParseOptions()).errors
    quoted = error.message.split("invalid requirement ", 1)[1].split("': ", 1)[0] + "'"
    assert len(quoted) <= MAX_QUOTED + 2  # the quotes
    assert SECRET not in error.message


def test_a_file_the_tree_cannot_reach_is_not_even_opened(tmp_path: Path) -> None:
    """A refused include is refused before it is opened: a FIFO outside would not block."""
    outside = tmp_path / "outside"
    os.mkfifo(outside)
    project = tmp_path / "project"
    project.mkdir()
    req = project / "requirements.txt"
    req.write_text(f"-r {outside}\n")
    (error,) = parse_requirements(req, str(req), ParseOptions()).errors
    assert "outside the audited tree" in error.message
