"""Content of no recognised format, and the pickle reading every other format also gets.

Any buffer can be handed to a pickle loader, which reads it from byte 0: unrecognised content
is read that way (:func:`scan_unknown`), and so are the first bytes of every recognised format
that is not a pickle (:func:`read_as_pickle`, run by the scan context before the format's own
handler), so that a polyglot (a tar header whose member name is a pickle) is seen both ways.
Both report only what a real unpickler would run (see :mod:`modelshield.scanner.pickle.tolerant`).

Unrecognised content is reported as not analysed (``SCAN-UNRECOGNISED``): medium under a name
that a model loader reads (the format table's ``executes_on_load`` extensions), low anywhere
else. Ordinary images, PDFs, text and known data files are recognised formats of their own
(:func:`scan_ordinary`), not unrecognised content.
"""

from __future__ import annotations

import re

from modelshield.core.findings import Location, Severity
from modelshield.scanner.context import ScanContext
from modelshield.scanner.pickle.tolerant import try_as_pickle
from modelshield.scanner.registry import EXECUTABLE_EXTENSIONS, model_extension
from modelshield.scanner.rules import SCAN_UNRECOGNISED

_HEAD = 4096
#: What archive handlers append to a member's name in its location (duplicates, a local
#: header that names the member differently).
_DECORATION = re.compile(r"(?: \(local header: .*\))?(?: \(copy \d+\))?$")
#: Parts of a location that a loader reads under their parent's name: an inflated stream is
#: what ``joblib.load("model.pkl.gz")`` unpickles, the bytes before a zip's first entry are
#: what ``torch.load`` unpickles when a prefix hides the zip.
_SAME_NAME = re.compile(r"<(?:gzip|bzip2|xz|lzma|zlib|lz4|zstd|prefix)>")


def scan_unknown(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """Read unrecognised content as a pickle, then report it as not analysed: medium under a
    name a model loader opens, low anywhere else (a pass means "checked")."""
    if try_as_pickle(ctx, data, location):
        if ctx.depth == 0:
            ctx.refined_format = "pickle"  # a broken one, whose payload runs before it fails
        return
    head = bytes(data[:_HEAD])
    name = loader_name(location)
    ext = None if name is None else model_extension(name)
    shown = "This content" if name is None else repr(name)
    evidence = {"head": head[:16].hex()}
    if ext is not None and ext in EXECUTABLE_EXTENSIONS:
        evidence["extension"] = ext
        message = (
            f"{shown} is named like a file that model loaders open ('{ext}'), but its content "
            "is of no format modelshield recognises. It was read as a pickle from its first "
            "byte (the loaders' fallback) and runs nothing that way; nothing else could be "
            "checked. Find out what the file is before loading it, or accept the gap in the "
            f'policy ([[accept_incomplete]] rule = "{SCAN_UNRECOGNISED.id}").'
        )
        ctx.add(SCAN_UNRECOGNISED.finding(location, message, evidence=evidence))
        return
    message = (
        f"{shown} is binary content of no format modelshield recognises. It was read as a "
        "pickle from its first byte and runs nothing that way, but nothing else could be "
        "checked, so it is not called clean. Accept the gap in the policy "
        f'([[accept_incomplete]] rule = "{SCAN_UNRECOGNISED.id}") for data files you know.'
    )
    ctx.add(
        SCAN_UNRECOGNISED.finding(
            location,
            message,
            title="Unrecognised binary content",
            severity=Severity.LOW,
            evidence=evidence,
        )
    )


def scan_ordinary(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """Text, images, PDFs and known data files: no model loader runs them, except a pickle
    fallback reading byte 0, which is what this checks."""
    if try_as_pickle(ctx, data, location) and ctx.depth == 0:
        ctx.refined_format = "pickle"


def read_as_pickle(ctx: ScanContext, data: memoryview, location: Location) -> None:
    """Report what a pickle loader would run from byte 0 of recognised, non-pickle content."""
    try_as_pickle(ctx, data, location)


def loader_name(location: Location) -> str | None:
    """The name a loader would open this buffer under: the innermost member's (an inflated
    stream goes by the file it was inflated from), or the file's; None for parts no loader
    opens by name (an array's data, bytes after a pickle, a constant inside a pickle)."""
    for member in reversed(location.members):
        if _SAME_NAME.fullmatch(member):
            continue
        if member.startswith("<") and member.endswith(">"):
            return None
        return _DECORATION.sub("", member)
    return location.path
