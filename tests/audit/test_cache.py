"""Where the audit keeps its caches, and writes that never leave a half-written file."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelshield.audit.cache import atomic_write, default_cache_dir, default_database_dir


def test_the_cache_directory_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("MODELSHIELD_CACHE_DIR", raising=False)
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "modelshield"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "modelshield"
    monkeypatch.setenv("MODELSHIELD_CACHE_DIR", str(tmp_path / "own"))
    assert default_cache_dir() == tmp_path / "own"
    assert default_database_dir() == tmp_path / "own" / "osv-db"
    assert default_database_dir(tmp_path / "x") == tmp_path / "x" / "osv-db"


def test_atomic_write_creates_folders_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "index.bin"
    assert atomic_write(target, b"one")
    assert atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["index.bin"]


def test_an_unwritable_cache_only_costs_speed(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    assert atomic_write(blocker / "index.bin", b"x") is False  # its folder is a file
    taken = tmp_path / "cache" / "index.bin"
    taken.mkdir(parents=True)  # a folder where the file should go: the rename fails
    assert atomic_write(taken, b"x") is False
    assert list(taken.parent.iterdir()) == [taken]  # the temporary file was removed
