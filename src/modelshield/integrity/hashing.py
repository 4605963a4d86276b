"""Parallel, chunked hashing of model files.

A SHA-256 of a whole file is sequential by construction: each block depends on the state left
by the one before. To hash a multi-gigabyte checkpoint on every core, a file is cut into
fixed-size *chunks* (64 MiB by default) whose SHA-256 digests are computed concurrently; the
file's *chunked digest* is the SHA-256 of its chunk digests concatenated in order. This is the
scheme of the OpenSSF model-signing "shards" serialization (one resource per
``path:start:end`` range), so the same chunk digests serve both formats.

Threads are enough: :mod:`hashlib` releases the GIL while it hashes a buffer larger than a few
kilobytes, and positioned reads (``os.preadv``) release it too. Every task opens the file itself
and reads its byte range into a buffer of bounded size, so memory stays at about
``workers x READ_BLOCK`` however large the files are. Files are read, never memory-mapped: a file
truncated while a mapping is being read kills the process with ``SIGBUS``, whereas a short read
is an error we can report.

The plain whole-file SHA-256 (the digest ``sha256sum`` prints) is computed when asked for; for a
file no larger than one chunk it is the single chunk's digest and costs nothing extra. BLAKE3 is
computed when the ``blake3`` package is installed and asked for; it is parallel by itself, and
the next block is read while the current one is hashed.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from msgspec import Struct

from modelshield.core.errors import ConfigError

_MIB = 1024 * 1024

DEFAULT_CHUNK_SIZE = 64 * _MIB
"""Bytes per chunk. Large enough that a manifest stays small (16 digests per GiB), small enough
that a 2 GiB file gives every core work."""

MIN_CHUNK_SIZE = 4096
"""The smallest chunk size a manifest may use: a manifest lists one digest per chunk, and tiny
chunks only make it large."""

BLAKE3_BLOCK = 8 * _MIB
"""Bytes per BLAKE3 update: large enough for blake3 to spread one update over its threads."""

TASK_BYTES = 16 * _MIB
"""Consecutive chunks smaller than this are hashed by one task, so that a small chunk size
does not create millions of tasks."""

READ_BLOCK = 1 * _MIB
"""Bytes read per ``readinto`` call. A block that stays in the CPU cache between the copy and the
hash is faster than a large one."""

SHA256 = "sha256"
"""Name of the SHA-256 algorithm in manifests."""
BLAKE3 = "blake3"
"""Name of the BLAKE3 algorithm in manifests."""

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_FLAGS = os.O_RDONLY | _O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class FileChangedError(OSError):
    """A file changed size or type while it was being hashed."""


def blake3_available() -> bool:
    """Whether the optional ``blake3`` package can be imported."""
    try:
        import blake3  # noqa: F401
    except ImportError:
        return False
    return True


def default_workers() -> int:
    """Worker threads used when none is given: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on every platform
        return max(1, os.cpu_count() or 1)


def chunk_ranges(size: int, chunk_size: int) -> list[tuple[int, int]]:
    """The ``(start, end)`` byte ranges of a file's chunks; none for an empty file.

    The last chunk is shorter when ``size`` is not a multiple of ``chunk_size``, exactly like
    model-signing's shards.
    """
    if chunk_size < 1:
        raise ConfigError(f"chunk size must be positive, got {chunk_size}")
    return [(start, min(start + chunk_size, size)) for start in range(0, size, chunk_size)]


def combine_chunk_digests(chunks: Iterable[str]) -> str:
    """The chunked digest: SHA-256 over the raw chunk digests (hex in, hex out), in order."""
    h = hashlib.sha256()
    for digest in chunks:
        h.update(bytes.fromhex(digest))
    return h.hexdigest()


class FileDigest(Struct, frozen=True):
    """The digests of one regular file."""

    path: str
    """The file's path relative to the model root, with ``/`` separators."""
    size: int
    """Size in bytes when it was hashed."""
    chunk_size: int
    """Chunk size the chunk digests were computed with."""
    chunks: tuple[str, ...]
    """Hex SHA-256 of each chunk, in file order (empty for an empty file)."""
    sha256: str | None = None
    """Hex SHA-256 of the whole file, when it was computed."""
    blake3: str | None = None
    """Hex BLAKE3 of the whole file, when it was computed."""

    @property
    def chunked_sha256(self) -> str:
        """SHA-256 over the concatenated raw chunk digests."""
        return combine_chunk_digests(self.chunks)


class HashFailure(Struct, frozen=True):
    """A file that could not be hashed, and why."""

    path: str
    """The file's path relative to the model root."""
    message: str
    """What went wrong, for a person."""


HashResult = FileDigest | HashFailure
"""What hashing one file gives."""


class HashJob(Struct, frozen=True):
    """One file to hash, and which digests to compute besides the chunk digests."""

    path: str
    """Path relative to the model root (reported back as :attr:`FileDigest.path`)."""
    source: str
    """Where to read it."""
    plain: bool = False
    """Also compute the whole-file SHA-256 (free for files of at most one chunk)."""
    blake3: bool = False
    """Also compute the whole-file BLAKE3 (needs the ``blake3`` package)."""
    chunked: bool = True
    """Compute the chunk digests (turn off when only whole-file digests are wanted)."""
    follow: bool = False
    """Open through a symbolic link (only for links the caller decided to follow)."""


def _open_regular(source: str, follow: bool = False) -> tuple[int, int]:
    """Open a regular file without following a final symlink or blocking on a FIFO.

    Returns the descriptor and the size. ``O_NONBLOCK`` makes opening a FIFO return at once
    instead of waiting for a writer; the type check then rejects it.
    """
    flags = _O_FLAGS & ~_O_NOFOLLOW if follow else _O_FLAGS
    fd = os.open(source, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileChangedError(f"{source} is not a regular file")
        return fd, st.st_size
    except BaseException:
        os.close(fd)
        raise


def _read_at(fd: int, view: memoryview, offset: int) -> int:
    """Read into ``view`` at ``offset``; each task has its own descriptor, so seeking is safe."""
    if hasattr(os, "preadv"):
        return os.preadv(fd, [view], offset)
    if hasattr(os, "pread"):  # no preadv (older macOS): one copy more
        data = os.pread(fd, len(view), offset)
    else:  # Windows
        os.lseek(fd, offset, os.SEEK_SET)
        data = os.read(fd, len(view))
    view[: len(data)] = data
    return len(data)


def _read_range(
    fd: int, start: int, end: int, update: Callable[[memoryview], Any], block: int
) -> None:
    """Feed bytes ``[start, end)`` of ``fd`` to ``update`` in blocks of ``block`` bytes."""
    buf = bytearray(min(block, max(end - start, 1)))
    view = memoryview(buf)
    offset = start
    while offset < end:
        got = _read_at(fd, view[: min(len(buf), end - offset)], offset)
        if got <= 0:
            raise FileChangedError(f"file shrank while it was hashed (no data at byte {offset})")
        update(view[:got])
        offset += got


def hash_range(source: str, start: int, end: int, follow: bool = False) -> str:
    """Hex SHA-256 of bytes ``[start, end)`` of a regular file."""
    return hash_ranges(source, [(start, end)], follow)[0]


def hash_ranges(source: str, ranges: Sequence[tuple[int, int]], follow: bool = False) -> list[str]:
    """Hex SHA-256 of each ``(start, end)`` byte range of a regular file, in order."""
    fd, _ = _open_regular(source, follow)
    try:
        out = []
        for start, end in ranges:
            h = hashlib.sha256()
            _read_range(fd, start, end, h.update, READ_BLOCK)
            out.append(h.hexdigest())
        return out
    finally:
        os.close(fd)


def sha256_file(source: str) -> str:
    """Hex SHA-256 of a whole regular file, read in bounded blocks (sequential)."""
    fd, size = _open_regular(source)
    try:
        h = hashlib.sha256()
        _read_range(fd, 0, size, h.update, READ_BLOCK)
        return h.hexdigest()
    finally:
        os.close(fd)


def _fill(fd: int, buf: bytearray, offset: int, end: int) -> int:
    """Fill ``buf`` from ``offset`` (up to ``end``); the number of bytes read."""
    view = memoryview(buf)
    want = min(len(buf), end - offset)
    got = 0
    while got < want:
        n = _read_at(fd, view[got:want], offset + got)
        if n <= 0:
            raise FileChangedError(f"file shrank while it was hashed (at byte {offset + got})")
        got += n
    return got


def _blake3_file(source: str, size: int, threads: int, follow: bool) -> str:
    """Whole-file BLAKE3; the next block is read while the current one is hashed."""
    import blake3

    fd, _ = _open_regular(source, follow)
    try:
        h = blake3.blake3(max_threads=threads)
        bufs = [bytearray(min(BLAKE3_BLOCK, max(size, 1))) for _ in range(2)]
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="modelshield-read") as reader:
            offset, current = 0, 0
            pending = reader.submit(_fill, fd, bufs[0], 0, size) if size else None
            while pending is not None:
                got = pending.result()
                offset += got
                if offset < size:
                    pending = reader.submit(_fill, fd, bufs[1 - current], offset, size)
                else:
                    pending = None
                h.update(memoryview(bufs[current])[:got])
                current = 1 - current
        return str(h.hexdigest())
    finally:
        os.close(fd)


class _Pending(Struct):
    job: HashJob
    size: int
    chunks: list[Future[list[str]]]
    plain: Future[str] | None
    blake3: Future[str] | None


def hash_files(
    jobs: Sequence[HashJob],
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    workers: int | None = None,
    max_file_bytes: int | None = None,
) -> list[HashResult]:
    """Hash files concurrently: every chunk of every file is a task in one thread pool.

    Whole-file digests (a job's ``plain`` SHA-256 of a file larger than one chunk, and its
    ``blake3``) are one sequential task per file, submitted first so that they run beside the
    chunk tasks. Results come back in the order of ``jobs``; a file that cannot be read, is
    not a regular file, is larger than ``max_file_bytes`` or changes size while it is read gives
    a :class:`HashFailure`.
    """
    if chunk_size < 1:
        raise ConfigError(f"chunk size must be positive, got {chunk_size}")
    if any(j.blake3 for j in jobs) and not blake3_available():
        from modelshield.core.errors import MissingExtraError

        raise MissingExtraError("BLAKE3 digests", "hash", "blake3")
    n_workers = workers or default_workers()
    results: list[HashResult | None] = [None] * len(jobs)
    sized: list[tuple[int, HashJob, int]] = []
    for i, job in enumerate(jobs):
        try:
            fd, size = _open_regular(job.source, job.follow)
            os.close(fd)
        except OSError as e:
            results[i] = HashFailure(job.path, _describe(e))
            continue
        if max_file_bytes is not None and size > max_file_bytes:
            results[i] = HashFailure(
                job.path,
                f"not hashed: {size} bytes is above limits.max_file_bytes ({max_file_bytes})",
            )
            continue
        sized.append((i, job, size))
    with ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="modelshield-hash") as pool:
        # Long sequential tasks first, so that they overlap with the chunk tasks instead of
        # running alone at the end.
        whole: dict[int, tuple[Future[str] | None, Future[str] | None]] = {}
        for i, job, size in sized:
            needs_plain = job.plain and (size > chunk_size or not job.chunked)
            p = pool.submit(hash_range, job.source, 0, size, job.follow) if needs_plain else None
            # BLAKE3 spreads each update over its own threads: beside the chunk tasks that
            # oversubscribes a small machine a little, but keeps one huge file from making a
            # single thread the bottleneck on a large one.
            b = (
                pool.submit(_blake3_file, job.source, size, n_workers, job.follow)
                if job.blake3
                else None
            )
            whole[i] = (p, b)
        pending: list[tuple[int, _Pending]] = []
        for i, job, size in sized:
            ranges = chunk_ranges(size, chunk_size) if job.chunked else []
            # Group small chunks, but keep several tasks per worker for the pool to balance.
            step = max(1, min(TASK_BYTES // chunk_size, len(ranges) // (4 * n_workers)))
            futures = [
                pool.submit(hash_ranges, job.source, ranges[k : k + step], job.follow)
                for k in range(0, len(ranges), step)
            ]
            pending.append((i, _Pending(job, size, futures, *whole[i])))
        for i, item in pending:
            results[i] = _collect(item, chunk_size)
    return [r for r in results if r is not None]


def _collect(item: _Pending, chunk_size: int) -> HashResult:
    try:
        chunks = tuple(d for f in item.chunks for d in f.result())
        sha256: str | None = None
        if item.plain is not None:
            sha256 = item.plain.result()
        elif item.job.chunked and len(chunks) <= 1:
            # One chunk covering the whole file is the plain digest; an empty file has none.
            sha256 = chunks[0] if chunks else _EMPTY_SHA256
        b3 = item.blake3.result() if item.blake3 is not None else None
        # A file that grew while it was hashed passes every range read: check its size again.
        fd, size = _open_regular(item.job.source, item.job.follow)
        os.close(fd)
        if size != item.size:
            raise FileChangedError(f"file changed size while it was hashed ({item.size} -> {size})")
    except OSError as e:
        return HashFailure(item.job.path, _describe(e))
    return FileDigest(item.job.path, item.size, chunk_size, chunks, sha256, b3)


def _describe(e: OSError) -> str:
    if isinstance(e, FileChangedError):
        return str(e)
    return f"cannot read: {e.strerror or e}"
