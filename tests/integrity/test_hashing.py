"""Parallel chunked hashing: digests equal independent references; bad files fail cleanly."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from pathlib import Path

import pytest

import modelshield.integrity.hashing as hashing
from modelshield.core.errors import ConfigError
from modelshield.integrity.hashing import (
    FileDigest,
    HashFailure,
    HashJob,
    blake3_available,
    chunk_ranges,
    combine_chunk_digests,
    hash_files,
)

CHUNK = 1024 * 1024


def reference_chunks(data: bytes, chunk: int) -> list[str]:
    """Chunk digests computed independently of the code under test."""
    return [hashlib.sha256(data[i : i + chunk]).hexdigest() for i in range(0, len(data), chunk)]


@pytest.fixture
def big(tmp_path: Path) -> tuple[Path, bytes]:
    """A 5.5 MiB random file: five full chunks of 1 MiB and a partial one."""
    data = os.urandom(5 * CHUNK + CHUNK // 2)
    path = tmp_path / "weights.bin"
    path.write_bytes(data)
    return path, data


def test_chunk_digests_equal_an_independent_reference(big: tuple[Path, bytes]) -> None:
    path, data = big
    (result,) = hash_files([HashJob("weights.bin", str(path))], chunk_size=CHUNK, workers=3)
    assert isinstance(result, FileDigest)
    assert result.size == len(data)
    assert list(result.chunks) == reference_chunks(data, CHUNK)
    assert len(result.chunks) == 6
    concatenated = b"".join(bytes.fromhex(h) for h in reference_chunks(data, CHUNK))
    assert result.chunked_sha256 == hashlib.sha256(concatenated).hexdigest()
    # Not asked for, and not free for a multi-chunk file.
    assert result.sha256 is None


def test_plain_digest_is_the_whole_file_sha256(big: tuple[Path, bytes]) -> None:
    path, data = big
    (result,) = hash_files([HashJob("w", str(path), plain=True)], chunk_size=CHUNK)
    assert isinstance(result, FileDigest)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    (only,) = hash_files([HashJob("w", str(path), plain=True, chunked=False)])
    assert isinstance(only, FileDigest)
    assert (only.sha256, only.chunks) == (hashlib.sha256(data).hexdigest(), ())


def test_a_single_chunk_file_gets_its_plain_digest_for_free(tmp_path: Path) -> None:
    data = os.urandom(1000)
    path = tmp_path / "small.bin"
    path.write_bytes(data)
    (result,) = hash_files([HashJob("small.bin", str(path))], chunk_size=CHUNK)
    assert isinstance(result, FileDigest)
    assert result.chunks == (hashlib.sha256(data).hexdigest(),)
    assert result.sha256 == hashlib.sha256(data).hexdigest()


def test_empty_file_has_no_chunks_and_the_empty_digest(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    (result,) = hash_files([HashJob("empty", str(path))], chunk_size=CHUNK)
    assert isinstance(result, FileDigest)
    assert result.chunks == ()
    assert result.sha256 == hashlib.sha256(b"").hexdigest()


def test_small_chunks_are_grouped_but_digested_one_by_one(tmp_path: Path) -> None:
    data = os.urandom(200_000)
    path = tmp_path / "f"
    path.write_bytes(data)
    (result,) = hash_files([HashJob("f", str(path))], chunk_size=4096)
    assert isinstance(result, FileDigest)
    assert list(result.chunks) == reference_chunks(data, 4096)


@pytest.mark.skipif(not blake3_available(), reason="the blake3 package is not installed")
def test_blake3_equals_the_reference(big: tuple[Path, bytes]) -> None:
    import blake3

    path, data = big
    (result,) = hash_files([HashJob("w", str(path), blake3=True)], chunk_size=CHUNK)
    assert isinstance(result, FileDigest)
    assert result.blake3 == blake3.blake3(data).hexdigest()


def test_chunk_ranges_tile_the_file() -> None:
    assert chunk_ranges(0, 10) == []
    assert chunk_ranges(10, 10) == [(0, 10)]
    assert chunk_ranges(25, 10) == [(0, 10), (10, 20), (20, 25)]
    with pytest.raises(ConfigError):
        chunk_ranges(5, 0)


def test_combine_chunk_digests_is_sha256_of_the_raw_digests() -> None:
    a, b = hashlib.sha256(b"a").hexdigest(), hashlib.sha256(b"b").hexdigest()
    expected = hashlib.sha256(bytes.fromhex(a) + bytes.fromhex(b)).hexdigest()
    assert combine_chunk_digests([a, b]) == expected


def test_chunks_of_one_file_run_on_several_threads(
    big: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: set[str] = set()
    barrier = threading.Barrier(2, timeout=10)
    original = hashing.hash_ranges

    def spy(source: str, ranges: list[tuple[int, int]], follow: bool = False) -> list[str]:
        seen.add(threading.current_thread().name)
        if len(seen) <= 2:
            # Two tasks must be in flight at once for the barrier to open.
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()
        return original(source, ranges, follow)

    monkeypatch.setattr(hashing, "hash_ranges", spy)
    path, data = big
    (result,) = hash_files([HashJob("w", str(path))], chunk_size=CHUNK, workers=2)
    assert isinstance(result, FileDigest)
    assert list(result.chunks) == reference_chunks(data, CHUNK)
    assert len(seen) == 2
    assert not barrier.broken


def test_many_files_come_back_in_job_order(tmp_path: Path) -> None:
    jobs, blobs = [], []
    for i in range(12):
        data = os.urandom(1000 * (12 - i))
        path = tmp_path / f"f{i}"
        path.write_bytes(data)
        jobs.append(HashJob(f"f{i}", str(path), plain=True))
        blobs.append(data)
    results = hash_files(jobs, chunk_size=4096, workers=4)
    assert [r.path for r in results] == [j.path for j in jobs]
    for r, data in zip(results, blobs, strict=True):
        assert isinstance(r, FileDigest)
        assert r.sha256 == hashlib.sha256(data).hexdigest()


def test_missing_file_is_a_failure_not_an_exception(tmp_path: Path) -> None:
    (result,) = hash_files([HashJob("gone", str(tmp_path / "gone"))])
    assert isinstance(result, HashFailure)
    assert "cannot read" in result.message


@pytest.mark.timeout(30)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (result,) = hash_files([HashJob("pipe", str(fifo))])
    assert isinstance(result, HashFailure)
    assert "not a regular file" in result.message


def test_a_symlink_is_not_followed_unless_asked(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"secret")
    link = tmp_path / "link"
    link.symlink_to(target)
    (refused,) = hash_files([HashJob("link", str(link))])
    assert isinstance(refused, HashFailure)
    (followed,) = hash_files([HashJob("link", str(link), follow=True)])
    assert isinstance(followed, FileDigest)
    assert followed.sha256 == hashlib.sha256(b"secret").hexdigest()


def test_a_file_above_the_size_limit_is_not_read(big: tuple[Path, bytes]) -> None:
    path, _ = big
    (result,) = hash_files([HashJob("w", str(path))], max_file_bytes=1000)
    assert isinstance(result, HashFailure)
    assert "max_file_bytes" in result.message


def test_a_file_that_grows_while_hashed_fails(
    big: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = big
    original = hashing.hash_ranges

    def grow_then_hash(
        source: str, ranges: list[tuple[int, int]], follow: bool = False
    ) -> list[str]:
        with Path(source).open("ab") as fh:
            fh.write(b"appended")
        return original(source, ranges, follow)

    monkeypatch.setattr(hashing, "hash_ranges", grow_then_hash)
    (result,) = hash_files([HashJob("w", str(path))], chunk_size=CHUNK)
    assert isinstance(result, HashFailure)
    assert "changed size" in result.message


def test_a_file_that_shrinks_while_hashed_fails(
    big: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = big
    original = hashing.hash_ranges

    def shrink_then_hash(
        source: str, ranges: list[tuple[int, int]], follow: bool = False
    ) -> list[str]:
        os.truncate(source, CHUNK)
        return original(source, ranges, follow)

    monkeypatch.setattr(hashing, "hash_ranges", shrink_then_hash)
    (result,) = hash_files([HashJob("w", str(path))], chunk_size=CHUNK)
    assert isinstance(result, HashFailure)
    assert "shrank" in result.message
