"""Streams of pickles in one buffer: concatenated pickles, PyTorch's legacy format, trailers.

``pickle.load`` called in a loop, ``torch.load`` on a legacy (non-zip) checkpoint and
``joblib.load`` all read several pickles, or a pickle followed by raw data, from one file.
:func:`analyze_pickles` walks every stream in order, continues while what follows a STOP is
another pickle, skips the raw data the formats define (PyTorch storages, joblib arrays), and
reports anything else after the last pickle as trailing data.

PyTorch's legacy layout is five pickles (magic number, protocol version 1001, system info, the
object with persistent ids for storages, the list of storage keys) and then, for each key, an
8-byte little-endian element count and the storage's bytes. It is recognised by its content,
never by the magic number alone: a file whose magic is *computed* (by ``builtins.eval``) is
still analysed stream by stream.
"""

from __future__ import annotations

import struct
from typing import Any

from modelshield.core.findings import Location
from modelshield.scanner.context import ScanContext
from modelshield.scanner.memio import Buffer
from modelshield.scanner.pickle import rules
from modelshield.scanner.pickle.embedded import EmbeddedScanner
from modelshield.scanner.pickle.sniff import looks_like_pickle
from modelshield.scanner.pickle.state import Session
from modelshield.scanner.pickle.values import Global, unwrap
from modelshield.scanner.pickle.vm import Interpreter, Outcome

#: Buffers up to this size are copied to ``bytes`` (faster opcode reads, and no view of the
#: caller's memory map outlives the analysis); larger ones are read through the view.
COPY_BELOW = 64 * 1024 * 1024
#: Bytes copied that way at any one time per file (nested pickles are analysed while the
#: pickles around them are; past this, they are read through views).
COPY_BUDGET = 128 * 1024 * 1024

TORCH_MAGIC = 0x1950A86A20F9469CFC6C
"""The first pickle of a legacy PyTorch file."""
TORCH_PROTOCOL = 1001
"""The second pickle of a legacy PyTorch file."""

#: Bytes per element of the storage classes a legacy checkpoint names.
_STORAGE_ELEMENT_SIZES = {
    "DoubleStorage": 8,
    "FloatStorage": 4,
    "HalfStorage": 2,
    "BFloat16Storage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
    "ComplexDoubleStorage": 16,
    "ComplexFloatStorage": 8,
    "QUInt8Storage": 1,
    "QInt8Storage": 1,
    "QInt32Storage": 4,
    "QUInt4x2Storage": 1,
    "QUInt2x4Storage": 1,
    "UntypedStorage": 1,
}
_U64 = struct.Struct("<Q").unpack_from


def analyze_pickles(
    ctx: ScanContext,
    data: Buffer,
    location: Location,
    *,
    persistent_ids_expected: bool = False,
    max_streams: int | None = None,
    torch_legacy: bool = False,
    torchscript: bool = False,
) -> int:
    """Analyse the pickle stream(s) in ``data``; return the offset where analysis stopped.

    ``persistent_ids_expected`` is for pickles inside PyTorch checkpoints (PERSID is how they
    reference storages). ``max_streams`` stops after that many pickles without judging what
    follows (the caller knows the layout, e.g. a ``.npy`` object array). ``torch_legacy``
    treats the buffer as a legacy PyTorch file even before its content confirms it.
    ``torchscript`` is for the pickles of a TorchScript archive, which torch.jit's own
    unpickler reads: its list helpers and ``__torch__`` classes are not Python imports.
    """
    size = len(data)
    if size == 0:
        ctx.add(rules.MALFORMED.finding(location.at(0), "The pickle is empty (0 bytes)."))
        return 0
    copied = 0
    buf: Buffer
    if type(data) is bytes:
        buf = data
    elif size <= COPY_BELOW and ctx.copied + size <= COPY_BUDGET:
        buf = bytes(data)
        copied = size
    else:
        buf = memoryview(data)
    ctx.copied += copied
    session = Session(ctx, buf, location, torchscript=torchscript)
    session.embedded = EmbeddedScanner(ctx, buf, location)
    vm = Interpreter(session)
    # Only what legacy-checkpoint detection needs is kept: the first five outcomes, while the
    # buffer may still be one. Nothing of a stream outlives it otherwise.
    outcomes: list[Outcome] = []
    count = 0
    legacy = torch_legacy
    storages_done = False
    pos = 0
    try:
        while pos < size:
            if max_streams is not None and count >= max_streams:
                break
            if legacy and not storages_done and count == 5:
                storages_done = True
                pos = _skip_storages(session, outcomes, pos)
                outcomes = []
                if pos < 0:
                    return size
                continue
            if count and not looks_like_pickle(buf, pos):
                _trailing(session, pos)
                break
            ctx.check_deadline(location)
            expected = persistent_ids_expected or (legacy and count == 3)
            outcome = vm.run(pos, persistent_ids_expected=expected)
            ctx.bytes_read += outcome.end - pos
            count += 1
            if count <= 5 and (legacy or count <= 3):
                outcomes.append(outcome)
            pos = outcome.end
            if not outcome.complete:
                break
            if not legacy and count == 3:
                if _is_torch_legacy(outcomes):
                    legacy = True
                    ctx.saw_format("pytorch-legacy")
                else:
                    outcomes = []
    finally:
        ctx.copied -= copied
        session.embedded = None
        if buf is not data and isinstance(buf, memoryview):
            buf.release()  # nothing of the caller's memory map may outlive the analysis
    return pos


def _is_torch_legacy(outcomes: list[Outcome]) -> bool:
    magic, protocol, info = (o.result for o in outcomes[:3])
    if type(protocol) is not int or protocol != TORCH_PROTOCOL:
        return False
    return (type(magic) is int and magic == TORCH_MAGIC) or (
        type(info) is dict and "protocol_version" in info
    )


def _skip_storages(session: Session, outcomes: list[Outcome], pos: int) -> int:
    """Step over the raw storages after a legacy checkpoint's pickles; -1 to stop."""
    keys = outcomes[4].result
    if type(keys) is not list or any(type(k) is not str for k in keys):
        return pos  # not a key list: whatever follows is judged as pickles or trailing data
    sizes: dict[str, int | None] = {}
    for pid in outcomes[3].persistent_ids:
        if type(pid) is tuple and len(pid) >= 5 and pid[0] == "storage" and type(pid[2]) is str:
            sizes[pid[2]] = _element_size(pid[1])
    data = session.data
    size = len(data)
    for key in keys:
        if key not in sizes:
            session.emit(
                rules.MALFORMED,
                pos,
                f"Storage key {key!r} is listed but no tensor of the object pickle uses it; "
                "torch.load fails here.",
                {"key": key[:80]},
            )
            return -1
        if pos + 8 > size:
            session.emit(
                rules.MALFORMED,
                pos,
                f"The data of storage {key!r} is missing (the file ends at offset {size}).",
                {"key": key[:80]},
            )
            return -1
        (count,) = _U64(data, pos)
        element = sizes[key]
        if element is None:
            _trailing(session, pos, f"storage {key!r} has a type whose element size is unknown")
            return -1
        nbytes = count * element
        if nbytes > size - pos - 8:
            session.emit(
                rules.MALFORMED,
                pos,
                f"Storage {key!r} declares {count} elements ({nbytes} bytes) but only "
                f"{size - pos - 8} bytes remain.",
                {"key": key[:80], "count": str(count)},
            )
            return -1
        pos += 8 + nbytes
    return pos


def _element_size(storage_type: Any) -> int | None:
    ref = unwrap(storage_type)
    if type(ref) is not Global:
        return None
    return _STORAGE_ELEMENT_SIZES.get(ref.name.rpartition(".")[2])


def _trailing(session: Session, pos: int, why: str = "") -> None:
    data = session.data
    remaining = len(data) - pos
    head = bytes(data[pos : pos + 16]).hex()
    reason = f" ({why})" if why else ""
    session.emit(
        rules.TRAILING_DATA,
        pos,
        f"{remaining} bytes after the last pickle (offset {pos}) are not another pickle{reason}. "
        "Loaders ignore them; check where they come from.",
        {"offset": str(pos), "size": str(remaining), "head": head},
    )
