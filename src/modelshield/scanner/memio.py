"""Buffers: the type every analyser reads, a file object over a memoryview, and a spill buffer.

Files are memory-mapped and handed around as memoryviews; members of archives and inflated
streams are ``bytes``, ``bytearray`` or views of a :class:`Spill`, which keeps inflated data in
memory up to a threshold and in an anonymous temporary file beyond it. Libraries that want a
file object (tarfile, py7zr, zstandard) get a :class:`MemoryviewIO`, which copies only what
they read.
"""

from __future__ import annotations

import contextlib
import io
import mmap
from typing import IO

#: Anything that supports the buffer protocol and slicing: ``bytes``, ``memoryview``, ``mmap``.
Buffer = bytes | bytearray | memoryview


class MemoryviewIO(io.RawIOBase):
    """A read-only, seekable file over a memoryview, for libraries that want a file object.

    Reads copy only what is asked for, so a library walking headers never copies the whole
    (memory-mapped) buffer.
    """

    def __init__(self, data: memoryview) -> None:
        """Wrap ``data``; the position starts at 0."""
        super().__init__()
        self._data = data
        self._pos = 0

    def readable(self) -> bool:
        """Always readable."""
        return True

    def seekable(self) -> bool:
        """Always seekable."""
        return True

    def tell(self) -> int:
        """The current position."""
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move like a regular file (past the end is allowed; reads there return nothing)."""
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = len(self._data) + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def readinto(self, buffer: Buffer) -> int:  # type: ignore[override]
        """Copy the next bytes into ``buffer``."""
        target = memoryview(buffer).cast("B")
        chunk = self._data[self._pos : self._pos + len(target)]
        target[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)

    def read(self, size: int = -1) -> bytes:
        """Read ``size`` bytes (all that remain when negative)."""
        end = len(self._data) if size is None or size < 0 else self._pos + size
        chunk = bytes(self._data[self._pos : end])
        self._pos += len(chunk)
        return chunk


class Spill:
    """Bytes written piece by piece, kept in memory up to ``threshold`` and in an anonymous
    temporary file (deleted when closed, or at once where the system allows) beyond it.

    :meth:`view` returns the bytes as a memoryview; a spilled buffer is memory-mapped, so only
    the pages an analyser touches are read, and :meth:`release_pages` drops them from the
    process again. Gigabytes of inflated data therefore never sit in memory.
    """

    def __init__(self, threshold: int) -> None:
        """Spill once more than ``threshold`` bytes were written (0: spill at once)."""
        self.threshold = max(0, threshold)
        """Bytes kept in memory before spilling."""
        self.size = 0
        """Bytes written so far."""
        self._memory = bytearray()
        self._file: IO[bytes] | None = None
        self._map: mmap.mmap | None = None
        self._view: memoryview | None = None

    @property
    def in_memory(self) -> int:
        """Bytes held in process memory (not in the temporary file)."""
        return len(self._memory)

    @property
    def spilled(self) -> bool:
        """Whether the data went to a temporary file."""
        return self._file is not None

    def write(self, data: Buffer) -> None:
        """Append ``data``."""
        n = len(data)
        if not n:
            return
        if self._file is None and self.size + n > self.threshold:
            import tempfile  # only when spilling: it costs start-up time every run would pay

            self._file = tempfile.TemporaryFile(prefix="modelshield-")  # noqa: SIM115 - closed in close()
            self._file.write(self._memory)
            self._memory = bytearray()
        if self._file is not None:
            self._file.write(data)
        else:
            self._memory += data
        self.size += n

    def view(self) -> memoryview:
        """The bytes written (writing is over once this is called)."""
        if self._view is None:
            if self._file is None:
                self._view = memoryview(self._memory)
            else:
                self._file.flush()
                self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
                self._view = memoryview(self._map)
        return self._view

    def release_pages(self) -> None:
        """Let the system drop the pages of a spilled buffer that analysers touched (they are
        read again from the file on next use): only touched pages count towards the process's
        memory, and this uncounts them."""
        release(self._map)

    def close(self) -> None:
        """Free the memory and delete the temporary file.

        A view still exported by an analyser keeps the mapping alive until it is collected.
        """
        if self._view is not None:
            with contextlib.suppress(BufferError):
                self._view.release()
            self._view = None
        if self._map is not None:
            with contextlib.suppress(BufferError):  # a slice someone still holds
                self._map.close()
            self._map = None
        if self._file is not None:
            self._file.close()
            self._file = None
        self._memory = bytearray()

    def __enter__(self) -> Spill:
        """Use as a context manager that closes the buffer."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the buffer."""
        self.close()


def release(mapping: mmap.mmap | None) -> None:
    """Drop the resident pages of a read-only file mapping (no-op where unsupported)."""
    advice = getattr(mmap, "MADV_DONTNEED", None)
    if mapping is None or advice is None or mapping.closed:
        return
    with contextlib.suppress(OSError, ValueError):
        mapping.madvise(advice)
