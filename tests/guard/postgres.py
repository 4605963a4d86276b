"""A throwaway PostgreSQL server from Debian's binaries, for the replica tests."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.guard.conftest import free_port


def binaries() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin`` with initdb and pg_ctl."""
    root = Path("/usr/lib/postgresql")
    folders = sorted(root.glob("*/bin"), reverse=True) if root.is_dir() else []
    for folder in folders:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


class Postgres:
    """initdb into a fresh directory, start on a free loopback port, stop at the end. As
    root (PostgreSQL refuses to run as root), the server runs as the ``postgres`` user."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="guard-pg-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.port = free_port()
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError as e:
                raise RuntimeError("running as root and there is no 'postgres' user") from e
            self.prefix = ["runuser", "-u", "postgres", "--"]
            os.chown(self.root, user.pw_uid, user.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql://guard@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run(
            [*self.prefix, *args], check=True, capture_output=True, timeout=120, cwd=self.root
        )

    def init(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "guard",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )

    def start(self) -> None:
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def cleanup(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def running_postgres() -> Iterator[Postgres]:
    bindir = binaries()
    if bindir is None:
        import pytest

        pytest.skip(
            "PostgreSQL binaries not found under /usr/lib/postgresql/*/bin: install Debian's "
            "postgresql package (.ci/run does) to run the replica tests"
        )
    pg = Postgres(bindir)
    try:
        pg.init()
        pg.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                import psycopg

                psycopg.connect(pg.url, connect_timeout=2).close()
                break
            except Exception:
                time.sleep(0.2)
        yield pg
    finally:
        pg.cleanup()
