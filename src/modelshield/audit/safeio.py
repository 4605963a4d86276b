"""Opening the files the audit reads without ever blocking on them.

A plain ``open`` of a FIFO waits for a writer forever, so a FIFO named ``requirements.txt`` in
an audited folder (or ``x.json`` in an advisory database) would hang the audit. Files are
opened with ``O_NONBLOCK``, which returns at once for a FIFO, and anything that is not a
regular file is refused before a byte is read, as the scanner does.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO


class NotRegularFile(OSError):
    """The path is a FIFO, socket, device or directory: it is not read."""


def open_regular(path: Path | str) -> tuple[IO[bytes], int]:
    """A regular file opened for reading, and its size; never blocks.

    Raises :class:`NotRegularFile` for anything else, and ``OSError`` when it cannot be opened.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(
                f"{os.fspath(path)}: not a regular file (a FIFO, socket or device); not read"
            )
        return os.fdopen(fd, "rb"), st.st_size
    except BaseException:
        os.close(fd)
        raise
