"""Environment markers describe where the model runs, not where the audit runs: issue 13, item 3.

Requirements files, ``pylock.toml`` and ``Pipfile.lock`` used to drop a dependency whose marker
was false on the machine running the audit, while ``uv.lock`` and ``poetry.lock`` kept it, so
one resolution gave different answers per format. Now every format audits every dependency by
default, and evaluates markers only for a target the user names, the same way everywhere,
listing what was left out (and why) in every report format.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelshield.audit.discover import collect_inputs, parse_options
from modelshield.audit.inputs.dependency import ParsedInput
from modelshield.audit.inputs.markers import MarkerEvaluator, Target
from modelshield.cli import main
from modelshield.core.policy import AuditSettings, Policy
from modelshield.report import OutputFormat

from .conftest import WriteDb, osv_record

WIN = "sys_platform == 'win32'"

# The same resolution, written by each tool: the project needs requests everywhere and pywin32
# on Windows only (uv and Poetry record the marker on the dependency edge or the package).
FORMATS = {
    "requirements.txt": f"requests==2.19.0\npywin32==306 ; {WIN}\n",
    "pylock.toml": (
        'lock-version = "1.0"\ncreated-by = "tests"\n'
        '[[packages]]\nname = "requests"\nversion = "2.19.0"\n'
        '[[packages.wheels]]\nname = "requests-2.19.0-py2.py3-none-any.whl"\n'
        'url = "https://files.example/requests-2.19.0-py2.py3-none-any.whl"\n'
        'hashes = { sha256 = "aa" }\n'
        f'[[packages]]\nname = "pywin32"\nversion = "306"\nmarker = "{WIN}"\n'
        '[[packages.wheels]]\nname = "pywin32-306-cp311-cp311-win_amd64.whl"\n'
        'url = "https://files.example/pywin32-306-cp311-cp311-win_amd64.whl"\n'
        'hashes = { sha256 = "bb" }\n'
    ),
    "Pipfile.lock": json.dumps(
        {
            "_meta": {"hash": {"sha256": "x"}},
            "default": {
                "requests": {"version": "==2.19.0"},
                "pywin32": {"version": "==306", "markers": WIN},
            },
            "develop": {},
        }
    ),
    "uv.lock": (
        'version = 1\nrequires-python = ">=3.9"\n\n'
        '[[package]]\nname = "project"\nversion = "0.1.0"\nsource = { virtual = "." }\n'
        "dependencies = [\n"
        '    { name = "requests" },\n'
        f'    {{ name = "pywin32", marker = "{WIN}" }},\n'
        "]\n\n"
        '[[package]]\nname = "requests"\nversion = "2.19.0"\n'
        'source = { registry = "https://pypi.org/simple" }\n\n'
        '[[package]]\nname = "pywin32"\nversion = "306"\n'
        'source = { registry = "https://pypi.org/simple" }\n'
    ),
    "poetry.lock": (
        '[[package]]\nname = "requests"\nversion = "2.19.0"\nfiles = []\n\n'
        '[[package]]\nname = "pywin32"\nversion = "306"\n'
        f'markers = "{WIN}"\nfiles = []\n\n'
        '[metadata]\nlock-version = "2.1"\npython-versions = ">=3.9"\ncontent-hash = "x"\n'
    ),
    "pyproject.toml": (
        f'[project]\nname = "demo"\ndependencies = ["requests==2.19.0", "pywin32==306 ; {WIN}"]\n'
    ),
}


def read(tmp_path: Path, name: str, policy: Policy) -> ParsedInput:
    folder = tmp_path / name.replace(".", "-")
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(FORMATS[name])
    (parsed,) = collect_inputs([folder / name], parse_options(policy), policy)
    assert parsed.errors == (), parsed.errors
    return parsed


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_audits_every_dependency_by_default(tmp_path: Path, name: str) -> None:
    parsed = read(tmp_path, name, Policy())
    assert sorted(d.canonical for d in parsed.dependencies) == ["pywin32", "requests"]
    assert parsed.excluded == ()


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_leaves_out_the_same_dependency_for_a_target(
    tmp_path: Path, name: str
) -> None:
    policy = Policy(audit=AuditSettings(python_version="3.11", platform="linux"))
    parsed = read(tmp_path, name, policy)
    assert [d.canonical for d in parsed.dependencies] == ["requests"]
    (excluded,) = parsed.excluded
    assert excluded.canonical == "pywin32" and "win32" in excluded.marker
    windows = Policy(audit=AuditSettings(platform="windows"))
    assert len(read(tmp_path, name, windows).dependencies) == 2


def test_a_uv_lock_and_its_export_agree_for_a_target(tmp_path: Path) -> None:
    """Reached only through a Windows-only dependency, colorama is excluded from uv.lock as
    ``uv export`` excludes it (it writes the path's marker on colorama's line)."""
    lock = tmp_path / "lock" / "uv.lock"
    lock.parent.mkdir()
    lock.write_text(
        'version = 1\n\n[[package]]\nname = "project"\nversion = "0.1.0"\n'
        'source = { editable = "." }\n'
        f'dependencies = [{{ name = "click" }}, {{ name = "pywin32", marker = "{WIN}" }}]\n\n'
        '[[package]]\nname = "click"\nversion = "8.1.7"\nsource = { registry = "x" }\n\n'
        '[[package]]\nname = "pywin32"\nversion = "306"\nsource = { registry = "x" }\n'
        'dependencies = [{ name = "colorama" }]\n\n'
        '[[package]]\nname = "colorama"\nversion = "0.4.6"\nsource = { registry = "x" }\n'
    )
    exported = tmp_path / "export" / "requirements.txt"
    exported.parent.mkdir()
    exported.write_text(f"click==8.1.7\ncolorama==0.4.6 ; {WIN}\npywin32==306 ; {WIN}\n")
    for target in (None, Target("3.12", "linux"), Target("3.12", "windows")):
        policy = Policy(
            audit=AuditSettings(
                python_version=target.python_version if target else None,
                platform=target.platform if target else None,
            )
        )
        answers = []
        for path in (lock, exported):
            (parsed,) = collect_inputs([path], parse_options(policy), policy)
            audited = sorted((d.canonical, d.version) for d in parsed.dependencies)
            answers.append((audited, sorted(e.canonical for e in parsed.excluded)))
        assert answers[0] == answers[1], target


def test_markers_the_target_leaves_open_keep_their_dependency() -> None:
    evaluator = MarkerEvaluator(Target("3.11", "linux"))
    assert evaluator.evaluate("platform_machine == 'arm64'") is None  # not named: kept
    assert evaluator.evaluate("platform_machine == 'arm64' and sys_platform == 'win32'") is False
    assert evaluator.evaluate("python_version < '3.8' or sys_platform == 'win32'") is False
    assert evaluator.evaluate("python_full_version >= '3.11.2'") is None  # 3.11 is any 3.11.x
    assert MarkerEvaluator(Target("3.11.4")).evaluate("python_full_version >= '3.11.2'")
    assert evaluator.evaluate("extra == 'gpu'") is None
    assert evaluator.evaluate("extra == 'gpu'", extras=["gpu"]) is True


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_what_was_left_out_is_listed_in_every_report_format(
    fmt: OutputFormat, tmp_path: Path, write_db: WriteDb, capsys: pytest.CaptureFixture[str]
) -> None:
    db = write_db(osv_record("PYSEC-1", "requests", versions=["2.0"]))
    req = tmp_path / "requirements.txt"
    req.write_text(FORMATS["requirements.txt"])
    args = ["audit", "--db", str(db), "--cache-dir", str(tmp_path / "c"), "-f", fmt.value]
    assert main([*args, "--python-version", "3.11", "--platform", "linux", str(req)]) == 0
    out = capsys.readouterr().out
    assert "AUDIT-DEPENDENCY-EXCLUDED" in out and "pywin32==306" in out and "win32" in out
    assert main([*args, str(req)]) == 0
    assert "AUDIT-DEPENDENCY-EXCLUDED" not in capsys.readouterr().out


@pytest.mark.parametrize("value", ["3", "3.x", "py311", "3.11.4.1"])
def test_a_malformed_target_is_a_usage_error(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("requests==2.19.0\n")
    assert main(["audit", "--offline", "--python-version", value, str(req)]) == 2
    assert "--python-version" in capsys.readouterr().err


def test_a_forked_uv_resolution_keeps_the_version_the_target_installs(tmp_path: Path) -> None:
    """uv locks one numpy per fork of the resolution (``resolution-markers``): a target picks
    one, no target audits both."""
    lock = tmp_path / "uv.lock"
    lock.write_text(
        "version = 1\nresolution-markers = [\"python_full_version < '3.10'\", "
        "\"python_full_version >= '3.10'\"]\n\n"
        '[[package]]\nname = "project"\nversion = "0.1.0"\nsource = { virtual = "." }\n'
        'dependencies = [\n    { name = "numpy", version = "1.26.4", source = { registry = "x" },'
        " marker = \"python_full_version < '3.10'\" },\n"
        '    { name = "numpy", version = "2.1.0", source = { registry = "x" },'
        " marker = \"python_full_version >= '3.10'\" },\n]\n\n"
        '[[package]]\nname = "numpy"\nversion = "1.26.4"\nsource = { registry = "x" }\n'
        "resolution-markers = [\"python_full_version < '3.10'\"]\n\n"
        '[[package]]\nname = "numpy"\nversion = "2.1.0"\nsource = { registry = "x" }\n'
        "resolution-markers = [\"python_full_version >= '3.10'\"]\n"
    )
    versions = []
    for target in (None, "3.11.4", "3.9.18"):
        policy = Policy(audit=AuditSettings(python_version=target))
        (parsed,) = collect_inputs([lock], parse_options(policy), policy)
        versions.append(sorted(d.version or "" for d in parsed.dependencies))
    assert versions == [["1.26.4", "2.1.0"], ["2.1.0"], ["1.26.4"]]


def test_only_what_a_false_marker_cuts_off_is_left_out() -> None:
    from modelshield.audit.inputs.markers import reachable

    edges = [
        ("root", "win", False),  # win and its cycle partner are reached through a false marker
        ("win", "helper", True),
        ("helper", "win", True),
        ("root", "maybe", None),  # an open marker: kept
        ("loose", "other", True),  # nothing the root reaches: kept, the lock does not say why
        ("other", "loose", True),
    ]
    nodes = ["root", "win", "helper", "maybe", "loose", "other"]
    assert reachable(nodes, ["root"], edges) == {
        "root": True,
        "win": False,
        "helper": False,
        "maybe": None,
        "loose": None,
        "other": None,
    }
