"""Files built byte by byte to exhaust a scanner, each named after the resource it attacks.

Nothing here is ever loaded. Each builder writes one file and returns its path; most place an
``os.system`` payload behind the exhausting part, so that the tests can check it is still named.
Sizes are parameters: the resource test uses the sizes of the review that found the problems
(or enough to pass every default limit), the unit tests much smaller ones with small limits.
"""

from __future__ import annotations

import bz2
import gzip
import io
import random
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

from tests.scanner.containers.zipbuild import Entry, build_zip, deflate_bomb

#: ``os.system('id')``, as GLOBAL + REDUCE (protocol 0 opcodes, valid anywhere), then POP.
CALL = b"cos\nsystem\n(S'id'\ntR0"
#: The same as a whole protocol-2 pickle.
PAYLOAD = b"\x80\x02" + CALL + b"N."
#: ``os.system('id')`` with protocol-4 STACK_GLOBAL, its names memoized as picklers write them.
STACK_CALL = b"\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c\x02id\x94\x85\x94R0"

Builder = Callable[[Path], Path]


def _write(path: Path, *parts: bytes) -> Path:
    with path.open("wb") as fh:
        for part in parts:
            fh.write(part)
    return path


# ---- padding in front of a payload ----------------------------------------------------


def opcode_padding(path: Path, pairs: int = 6_000_000) -> Path:
    """NONE, POP repeated past the interpreter's work budget, then the payload."""
    return _write(path, b"\x80\x04", b"N0" * pairs, CALL, b"N.")


def string_padding(path: Path, pairs: int = 4_000_000) -> Path:
    """One-character strings pushed and popped past the work budget, then the payload: a
    padding that a linear pass cannot skip with a regular expression."""
    return _write(path, b"\x80\x04", b"\x8c\x01a0" * pairs, b"K\x01\x94" * pairs, CALL, b"N.")


def stack_padding(path: Path, pushes: int = 5_000_000) -> Path:
    """Five million values left on the stack, then the payload."""
    return _write(path, b"\x80\x04", b"N" * pushes, CALL, b"N.")


def mark_padding(path: Path, marks: int = 1_000_000) -> Path:
    """A million nested MARKs, then the payload."""
    return _write(path, b"\x80\x04", b"(" * marks, CALL, b"N.")


def memo_padding(path: Path, entries: int = 2_500_000) -> Path:
    """Millions of memo entries, then the payload by STACK_GLOBAL."""
    return _write(path, b"\x80\x04", b"N\x94" * entries, STACK_CALL, b"N.")


def tiny_pickles(path: Path, count: int = 50_000_000) -> Path:
    """Millions of two-byte pickles (``N.``) read by ``pickle.load`` in a loop, then one that
    calls the payload."""
    return _write(path, b"N." * count, PAYLOAD)


def many_findings(path: Path, count: int = 500_000) -> Path:
    """Half a million pickles, each importing an unlisted callable (one finding each)."""
    one = b"".join(b"cmod%d\nfunc\n." % i for i in range(10))
    return _write(path, one * (count // 10))


def distinct_imports(path: Path, count: int = 300_000) -> Path:
    """One pickle importing hundreds of thousands of different unlisted callables."""
    body = b"".join(b"cm%d\nf%d\n0" % (i, i) for i in range(count))
    return _write(path, b"\x80\x02", body, CALL, b"N.")


def frame_flood(path: Path, frames: int = 1_000_000) -> Path:
    """A million FRAME opcodes, each opened before the previous one ends (one finding each)."""
    return _write(path, b"\x80\x04", (b"\x95" + struct.pack("<Q", 1 << 20)) * frames, CALL, b"N.")


def set_flood(path: Path, sets: int = 12_000_000) -> Path:
    """Millions of empty sets (216 bytes each) kept in one list."""
    return _write(path, b"\x80\x04](", b"\x8f" * sets, b"e.")


def embedded_flood(path: Path, count: int = 1_000_000) -> Path:
    """A million byte constants that are each a pickle, then one that is the payload."""
    inner = b"C\x04\x80\x02N." + b"0"
    last = b"C" + bytes([len(PAYLOAD)]) + PAYLOAD + b"0"
    return _write(path, b"\x80\x04", inner * count, last, b"N.")


def huge_long(path: Path, digits: int = 10_000_000) -> Path:
    """A protocol-0 LONG of ten million digits, and a LONG4 of 20 MB."""
    long4 = b"\x8b" + struct.pack("<i", 20_000_000) + bytes(20_000_000) + b"0"
    return _write(path, b"\x80\x02", long4, CALL, b"L", b"9" * digits, b"L\n.")


def base64_text(path: Path, size: int = 100_000_000) -> Path:
    """A 100 MB text constant that starts like a base64-encoded pickle."""
    head = b"gASV"  # base64 of b"\x80\x04\x95"
    return _write(
        path,
        b"\x80\x04",
        b"\x8d" + struct.pack("<Q", size),
        head,
        b"A" * (size - 4),
        b"0",
        CALL,
        b"N.",
    )


# ---- shapes that crash or blow up naive code --------------------------------------------


def deep_tuple_key(path: Path, depth: int = 2_000_000) -> Path:
    """A 2,000,000-deep tuple used as a dictionary key (CPython hashes it recursively in C)."""
    return _write(path, b"\x80\x04}N", b"\x85" * depth, b"Ns", CALL, b".")


def _get(index: int) -> bytes:
    return b"j" + struct.pack("<I", index)


def tuple_laughs_key(path: Path, levels: int = 60) -> Path:
    """A tuple of 2**60 leaves (each level two references to the one below), used as a key."""
    body = b"NN\x86\x94" + b"".join(b"0" + _get(i) * 2 + b"\x86\x94" for i in range(levels))
    return _write(path, b"\x80\x04}", body, b"Ns", CALL, b".")


def list_laughs(path: Path, levels: int = 60) -> Path:
    """A list of 2**60 leaves handed to an unlisted callable, a command string at the bottom."""
    body = b"\x8c\x0bos.system x\x94" + b"".join(
        b"0(" + _get(i) * 2 + b"l\x94" for i in range(levels)
    )
    return _write(path, b"\x80\x04cacme\nrun\n", body, b"\x85R0", CALL, b"N.")


def memo_fanout(path: Path, gets: int = 3_000_000) -> Path:
    """One list of a thousand items pushed three million times from the memo."""
    a = bytearray(b"\x80\x04]\x94(")
    for i in range(1000):
        a += b"J" + struct.pack("<i", i)
    a += b"e0]"
    for start in range(0, gets, 10_000):
        a += b"(" + b"h\x00" * min(10_000, gets - start) + b"e"
    return _write(path, bytes(a), b"0", CALL, b"N.")


def deep_lists(path: Path, depth: int = 5_000_000) -> Path:
    """Five million lists, each appended into the one before it."""
    return _write(path, b"\x80\x02", b"]" * depth, b"a" * (depth - 1), b"0", CALL, b"N.")


def deep_joblib(path: Path, depth: int = 50) -> Path:
    """joblib object arrays nested ``depth`` deep (each one's data is the next pickle)."""
    dtype = (
        b"cnumpy\ndtype\n(X\x02\x00\x00\x00O8\x89\x88tR(K\x03X\x01\x00\x00\x00|NNN"
        b"J\xff\xff\xff\xffJ\xff\xff\xff\xffK?tb"
    )
    wrapper = (
        b"\x80\x04cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81}(X\x08\x00\x00\x00subclass"
        b"cnumpy\nndarray\nX\x05\x00\x00\x00shapeK\x01\x85X\x05\x00\x00\x00orderX\x01\x00\x00"
        b"\x00CX\x05\x00\x00\x00dtype" + dtype + b"X\n\x00\x00\x00allow_mmap\x89ub"
    )
    return _write(path, wrapper * depth, PAYLOAD, b"." * depth)


# ---- archives and compressed streams --------------------------------------------------------


def _zip(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def nested_zips(path: Path, depth: int = 40) -> Path:
    """Stored zips nested ``depth`` deep around the payload."""
    data, name = PAYLOAD, "payload.pkl"
    for level in range(depth):
        data, name = _zip([(name, data)]), f"level{level}.zip"
    return _write(path, data)


def zip_many_members(path: Path, count: int = 100_000) -> Path:
    """A zip of a hundred thousand one-byte members, then the payload."""
    members = [(f"m{i}", b"x") for i in range(count - 1)] + [("payload.pkl", PAYLOAD)]
    return _write(path, _zip(members))


def low_ratio_block() -> bytes:
    """1 MiB that deflates about 600 times, below the bomb ratio: zeros with one random byte
    every 4 KiB."""
    rnd = random.Random(1)
    block = bytearray(1 << 20)
    for i in range(0, len(block), 4096):
        block[i] = rnd.randrange(1, 256)
    return bytes(block)


def _low_ratio_gzip(mebibytes: int, head: bytes, tail: bytes) -> bytes:
    """A gzip file (concatenated members) inflating to ``mebibytes`` MiB of
    :func:`low_ratio_block` between ``head`` and ``tail``."""
    member = gzip.compress(low_ratio_block(), 6, mtime=0)
    return gzip.compress(head, mtime=0) + member * mebibytes + gzip.compress(tail, mtime=0)


def large_pickle_gzip(mebibytes: int) -> bytes:
    """A gzip of a pickle holding ``mebibytes`` MiB as one byte constant, then the payload."""
    head = b"\x80\x04\x8e" + struct.pack("<Q", mebibytes << 20)
    return _low_ratio_gzip(mebibytes, head, CALL + b"N.")


def big_gzip(path: Path, mebibytes: int = 1152) -> Path:
    """A gzip inflating to 1.1 GiB below the ratio limit: a pickle holding it as one byte
    constant, then the payload."""
    return _write(path, large_pickle_gzip(mebibytes))


def gzip_zip_gzip(path: Path, mebibytes: int = 512) -> Path:
    """A gzip holding a zip whose deflated member is a gzip of a large pickle (as above)."""
    inner = large_pickle_gzip(mebibytes)
    return _write(
        path, gzip.compress(_zip([("model.pkl.gz", inner)], zipfile.ZIP_DEFLATED), mtime=0)
    )


def bzip2_bomb(path: Path, streams: int = 64) -> Path:
    """Concatenated bzip2 streams of 64 MiB of zeros each (4 GiB in all, a few KB on disk)."""
    one = bz2.compress(bytes(64 << 20), 9)
    return _write(path, one * streams)


def deflate_zip_bomb(path: Path, mebibytes: int = 4096) -> Path:
    """A zip member inflating to 4 GiB of zeros (far above the ratio limit)."""
    raw = deflate_bomb(b"", mebibytes)
    entry = Entry(b"bomb.bin", raw, None, method=8, crc=0, size=mebibytes << 20)
    return _write(path, build_zip([entry], zip64=True))


#: Every builder, by name, with whether the file carries a payload that must be named.
HOSTILE: dict[str, tuple[Builder, bool]] = {
    "opcode-padding": (opcode_padding, True),
    "string-padding": (string_padding, True),
    "stack-padding": (stack_padding, True),
    "mark-padding": (mark_padding, True),
    "memo-padding": (memo_padding, True),
    "tiny-pickles": (tiny_pickles, True),
    "many-findings": (many_findings, False),
    "distinct-imports": (distinct_imports, False),
    "frame-flood": (frame_flood, True),
    "set-flood": (set_flood, False),
    "embedded-flood": (embedded_flood, False),
    "huge-long": (huge_long, False),
    "base64-text": (base64_text, True),
    "deep-tuple-key": (deep_tuple_key, True),
    "tuple-laughs-key": (tuple_laughs_key, True),
    "list-laughs": (list_laughs, True),
    "memo-fanout": (memo_fanout, True),
    "deep-lists": (deep_lists, True),
    "deep-joblib": (deep_joblib, True),
    "nested-zips": (nested_zips, True),
    "zip-many-members": (zip_many_members, True),
    "big-gzip": (big_gzip, True),
    "gzip-zip-gzip": (gzip_zip_gzip, True),
    "bzip2-bomb": (bzip2_bomb, False),
    "deflate-zip-bomb": (deflate_zip_bomb, False),
}
