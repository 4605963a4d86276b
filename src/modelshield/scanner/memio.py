"""Buffers: the type every analyser reads, and a file object over a memoryview.

Files are memory-mapped and handed around as memoryviews; members of archives and inflated
streams are ``bytes`` or ``bytearray``. Libraries that want a file object (tarfile, py7zr,
zstandard) get a :class:`MemoryviewIO`, which copies only what they read.
"""

from __future__ import annotations

import io

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
