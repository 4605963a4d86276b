"""Run the real command line in a subprocess, on files the tests build."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# The test process may run under a coloured terminal or CI settings; the command line must
# be judged on a plain pipe unless a test asks otherwise.
_SCRUBBED = ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "TERM")


@dataclass(frozen=True)
class Run:
    """A finished command line run."""

    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Run:
    """Run ``python -m modelshield ARGS`` in ``cwd`` and capture everything."""
    environ = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    environ.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "modelshield", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def reduce_os_system_pickle(command: bytes = b"id") -> bytes:
    """The classic REDUCE payload (CWE-502; picklescan's ``malicious1``), byte by byte.

    Protocol 2: ``GLOBAL 'os system'``, the argument tuple, ``REDUCE``, ``STOP``. Loading it
    would run ``os.system(command)``; the tests only ever scan it.
    """
    arg = b"X" + len(command).to_bytes(4, "little") + command  # BINUNICODE
    return b"\x80\x02" + b"cos\nsystem\n" + arg + b"\x85" + b"R" + b"."


@pytest.fixture
def clean_pickle(tmp_path: Path) -> Path:
    """A harmless pickle made by the real pickle module (plain data only)."""
    path = tmp_path / "clean.pkl"
    path.write_bytes(pickle.dumps({"weights": [0.5, 1.5], "name": "tiny"}, protocol=4))
    return path


@pytest.fixture
def os_system_pickle(tmp_path: Path) -> Path:
    """A pickle whose load would call ``os.system("id")``."""
    path = tmp_path / "reduce_os_system.pkl"
    path.write_bytes(reduce_os_system_pickle())
    return path


def run_cli_with_terminal_stderr(*args: str, cwd: Path) -> tuple[Run, bytes]:
    """Run the command line with stderr on a pseudo-terminal; returns what reached it."""
    import pty

    master, slave = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "modelshield", *args],
            cwd=cwd,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=slave,
            stdin=subprocess.DEVNULL,
            timeout=120,
            check=False,
        )
    finally:
        os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal was closed and drained
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    return Run(proc.returncode, proc.stdout.decode("utf-8", "replace"), ""), seen
