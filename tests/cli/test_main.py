"""The top-level command: version, usage errors, subcommand discovery, start-up weight."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from modelshield import __version__
from modelshield.cli import SUBCOMMANDS, build_parser, load_subcommands, main
from tests.cli.conftest import run_cli


def test_version(tmp_path: Path) -> None:
    run = run_cli("--version", cwd=tmp_path)
    assert (run.code, run.stdout.strip()) == (0, f"modelshield {__version__}")


def test_no_command_prints_usage_and_exits_2(tmp_path: Path) -> None:
    run = run_cli(cwd=tmp_path)
    assert run.code == 2
    assert "usage: modelshield" in run.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("scan",),
        ("scan", "--format", "xml", "a.pkl"),
        ("scan", "--fail-on", "severe", "a.pkl"),
        ("scan", "--no-such-option", "a.pkl"),
        ("no-such-command",),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...], tmp_path: Path) -> None:
    run = run_cli(*args, cwd=tmp_path)
    assert run.code == 2
    assert "usage:" in run.stderr
    assert "Traceback" not in run.stderr


def test_console_script_is_the_same_entry_point(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "modelshield"
    if not script.exists():
        pytest.skip("the console script is not installed beside this interpreter")
    proc = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    assert (proc.returncode, proc.stdout.strip()) == (0, f"modelshield {__version__}")


def test_every_existing_subcommand_module_honours_the_contract() -> None:
    modules = load_subcommands()
    assert "scan" in modules
    assert set(modules) <= set(SUBCOMMANDS)
    for name, module in modules.items():
        assert callable(module.add_parser), name
        assert callable(module.run), name
    help_text = build_parser(modules).format_help()
    for name in modules:
        assert name in help_text


def test_main_returns_the_exit_code_in_process(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pkl"
    assert main(["scan", "--format", "json", "--no-progress", str(missing)]) == 2


def test_building_the_parser_imports_nothing_heavy() -> None:
    # Every subcommand module is imported for --help; heavy libraries must wait for run().
    code = (
        "import sys, modelshield.cli as c; c.build_parser(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'rich', 'torch', 'numpy', 'sklearn', 'joblib', 'yaml', 'jsonschema'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    ("fmt", "absent"),
    [("json", {"rich", "torch", "numpy"}), ("text", {"rich.console", "torch", "numpy"})],
)
def test_a_piped_scan_imports_only_what_it_needs(
    fmt: str, absent: set[str], tmp_path: Path
) -> None:
    # JSON never needs the terminal library; plain text needs its Text type, not a console.
    target = tmp_path / "a.pkl"
    target.write_bytes(b"\x80\x04N.")
    code = (
        "import sys; from modelshield.cli import main; "
        f"main(['scan', '--format', {fmt!r}, '--no-progress', {str(target)!r}]); "
        "print(file=sys.stderr); "
        f"print(sorted(set(sys.modules) & set({sorted(absent)!r})), file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stderr.strip().splitlines()[-1] == "[]"
