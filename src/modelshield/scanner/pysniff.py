"""Python source and ``.pth`` files recognised by their text, cheaply (detection imports this
module for every file it sniffs: no parser, no policy here; the analysis is in
:mod:`modelshield.scanner.pysource`)."""

from __future__ import annotations

import re
from collections.abc import Iterator

#: Lines that only Python starts with, at column 0.
PYTHON_LINE = re.compile(
    rb"^(?:from[ \t]+\.*[A-Za-z_][\w.]*[ \t]+import[ \t]+[\w*(]"
    rb"|import[ \t]+[A-Za-z_][\w.]*[ \t]*(?:,|[ \t]as[ \t]|;|#|\r?$)"
    rb"|(?:async[ \t]+)?def[ \t]+[A-Za-z_]\w*[ \t]*\("
    rb"|class[ \t]+[A-Za-z_]\w*[ \t]*[(:]"
    rb"|if[ \t]+__name__[ \t]*==)",
    re.MULTILINE,
)
_SHEBANG = re.compile(rb"^#![^\n]*python", re.IGNORECASE)
#: Characters no path line of a ``.pth`` file holds in practice, but Python statements do.
_NOT_A_PATH = re.compile(r"[()\[\]{}=;'\"<>|*?`]")


def looks_like_python(head: bytes) -> bool:
    """Whether text starts like Python source: an interpreter line naming Python, or a line
    at column 0 that only Python writes (an import, a ``def`` or ``class`` header)."""
    return bool(_SHEBANG.match(head) or PYTHON_LINE.search(head))


def pth_lines(text: str) -> Iterator[tuple[int, str, bool]]:
    """The lines of a ``.pth`` file as :mod:`site` reads them: ``(line number, line, runs)``
    for every line that is not blank or a comment; ``runs`` is true for the lines ``site``
    executes (those starting with ``import`` and a space or tab)."""
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        yield number, line, line.startswith(("import ", "import\t"))


def looks_like_pth(head: bytes, *, complete: bool) -> bool:
    """Whether text reads as a ``.pth`` path configuration file that runs code: at least one
    line that :mod:`site` executes does more than import (``import os; os.system(...)``), and
    every other line is a comment or a path. Path-only files, and Python files whose first
    lines are plain imports, are not recognised (nothing of them runs as a ``.pth``)."""
    text = head.decode("utf-8", "replace")
    lines = list(pth_lines(text))
    if not complete and lines and not text.endswith(("\n", "\r")):
        lines.pop()  # cut by the end of the window
    runs = [line for _, line, executed in lines if executed]
    if not runs or not any(";" in line for line in runs):
        return False
    return all(executed or not _NOT_A_PATH.search(line) for _, line, executed in lines)
