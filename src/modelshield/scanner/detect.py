"""Format detection by content (magic bytes and structure), never by file name.

:func:`detect` looks at a prefix of the buffer, and at its end for a zip's end-of-central-directory
record, so that a zip with a prefix (a polyglot) is still found. The only place where a file
name is used is :func:`extension_mismatch`, which warns when a file named like a model holds
something else.
"""

from __future__ import annotations

import functools
import io
import lzma
import re
import struct
import warnings
import zlib
from pathlib import PurePath
from typing import TYPE_CHECKING

from modelshield.core.findings import Finding, Location
from modelshield.scanner.registry import FORMATS, Format, formats_for_extension
from modelshield.scanner.rules import FORMAT_EXTENSION_MISMATCH
from modelshield.scanner.wire import WireError, fields
from modelshield.scanner.zipreader import find_end_record

if TYPE_CHECKING:
    import pickletools


#: How much of a buffer's start the sniffers look at.
_HEAD = 4096
#: Where a protocol-0/1 pickle grammar check stops (opcodes are short; a real pickle has many).
_MAX_SNIFF_OPCODES = 64

#: Magic numbers at offset 0, from the format table, in its order.
_MAGIC: tuple[tuple[bytes, Format], ...] = tuple(
    (magic, spec.format) for spec in FORMATS for magic in spec.magic
)
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_BZIP2_BLOCK = (b"1AY&SY", b"\x17rE8P\x90")  # first block, or end of stream (empty input)
_IDENT = re.compile(rb"^[A-Za-z_][A-Za-z0-9_.]*$")
_LEGACY_PICKLE_STARTS = frozenset(b"(ci]})ldNILFSVXUTBKMGJ")


@functools.cache
def _pickle_opcode_bytes() -> frozenset[bytes]:
    """Every opcode byte of protocols 0-5 (from the pickle interpreter's own table, which a
    test compares with :mod:`pickletools`; imported late: that package imports this one)."""
    from modelshield.scanner.pickle.opcodes import OPCODES

    return frozenset(bytes([code]) for code in OPCODES)


_GLOBAL_OPS = frozenset({"GLOBAL", "INST"})
# Protocol-0 text opcodes other than GLOBAL/INST: they swallow arbitrary bytes up to a newline,
# so in random data they "decode" far too easily to count as evidence in a strict check.
_TEXT_OPS = frozenset({"INT", "LONG", "FLOAT", "STRING", "UNICODE", "PERSID", "GET", "PUT"})


def detect(data: memoryview) -> Format:
    """Guess a buffer's format from its bytes alone."""
    size = len(data)
    if size == 0:
        return Format.EMPTY
    head = bytes(data[:_HEAD])
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return Format.ZIP
    fmt = _by_magic(head, size)
    if fmt is not None:
        # A polyglot that starts like something else and ends like a zip is opened as a zip
        # (the zip handler also scans the prefix), but only when the zip ends exactly at the
        # end of the buffer: a pickle that merely holds zip bytes must stay a pickle.
        if _zip_at_end(data, exact=True):
            return Format.ZIP
        return fmt
    if _zip_at_end(data, exact=False):
        return Format.ZIP
    if _hdf5_superblock(data):
        return Format.HDF5
    if _is_tar(head):
        return Format.TAR
    if _is_lzma_alone(head):
        return Format.LZMA
    if _is_zlib(head):
        return Format.ZLIB
    if _is_joblib_zfile(head):
        return Format.JOBLIB_ZFILE
    if looks_like_pickle(head, complete=size <= _HEAD):
        return Format.PICKLE
    if _is_onnx(data):
        return Format.ONNX
    return _text_document(data, head) or Format.UNKNOWN


def _by_magic(head: bytes, size: int) -> Format | None:
    """Formats identified by a magic number at offset 0."""
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    if head[:3] == b"BZh" and head[3:4] in b"123456789" and head[4:10] in _BZIP2_BLOCK:
        return Format.BZIP2
    if head.startswith(b"GGUF") and len(head) >= 8:
        # Little-endian, or big-endian (GGUF files converted for s390x).
        versions = struct.unpack_from("<I", head, 4) + struct.unpack_from(">I", head, 4)
        if any(1 <= version <= 64 for version in versions):
            return Format.GGUF
    if _is_safetensors(head, size):
        return Format.SAFETENSORS
    proto_header = len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5
    if proto_header and (len(head) == 2 or head[2:3] in _pickle_opcode_bytes()):
        return Format.PICKLE
    return None


def _zip_at_end(data: memoryview, *, exact: bool) -> bool:
    end = find_end_record(data)
    return end is not None and (end.exact or not exact)


_JSON_SPACE = b" \t\r\n"
_TEXT_BYTES = frozenset(range(0x20, 0x7F)) | frozenset(b"\t\r\n")


def _is_safetensors(head: bytes, size: int) -> bool:
    """An 8-byte header length, then a JSON object (the reference loader allows whitespace
    before it). A length past the end of the file is still safetensors (a broken or hostile
    header, which the handler reports), unless the length bytes are text: then it is a text
    file that happens to hold ``{`` after eight characters."""
    body = head[8:].lstrip(_JSON_SPACE)
    if len(head) < 10 or body[:1] != b"{" or body[1:2] not in b'"}' + _JSON_SPACE:
        return False
    (n,) = struct.unpack_from("<Q", head, 0)
    return 2 <= n <= size - 8 or (n >= 2 and not set(head[:8]) <= _TEXT_BYTES)


def _hdf5_superblock(data: memoryview) -> bool:
    """HDF5 puts its superblock at 0, 512, 1024, 2048... (after an optional user block)."""
    offset = 512
    while offset + 8 <= len(data):
        if bytes(data[offset : offset + 8]) == _HDF5_MAGIC:
            return True
        offset *= 2
    return False


def _is_tar(head: bytes) -> bool:
    if len(head) < 512:
        return False
    block = head[:512]
    if block[257:262] == b"ustar":
        return True
    # Old (v7) tar: no magic, but a header checksum computed with the field read as spaces.
    field = block[148:156].replace(b"\x00", b" ").strip()
    if not field or not all(48 <= c <= 55 for c in field) or block[0] == 0:
        return False
    expected = int(field, 8)
    return expected == sum(block[:148]) + 8 * 32 + sum(block[156:])


def _is_lzma_alone(head: bytes) -> bool:
    """LZMA-alone (``.lzma``, joblib's ``lzma`` compressor): properties, dictionary size, size."""
    if len(head) < 13 or head[0] != 0x5D:
        return False
    (dict_size,) = struct.unpack_from("<I", head, 1)
    plausible = any(dict_size in (1 << n, 3 << (n - 1)) for n in range(12, 31))
    if not plausible:
        return False
    try:
        lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(head, max_length=_HEAD)
    except lzma.LZMAError:
        return False
    return True


def _is_zlib(head: bytes) -> bool:
    """A zlib header whose checksum holds and whose first bytes really inflate."""
    if len(head) < 3 or head[0] != 0x78 or head[1] not in (0x01, 0x5E, 0x9C, 0xDA):
        return False
    if (head[0] * 256 + head[1]) % 31:
        return False
    try:
        zlib.decompressobj().decompress(head, _HEAD)
    except zlib.error:
        return False
    return True


def _is_joblib_zfile(head: bytes) -> bool:
    """joblib's pre-0.10 format: ``ZF``, the inflated length in hex padded to 19, zlib data."""
    if not head.startswith(b"ZF0x") or len(head) < 24:
        return False
    if not re.fullmatch(rb"0x[0-9a-f]+ *", head[2:21]):
        return False
    start = 22 if head[21:22] == b" " else 21
    return _is_zlib(head[start:])


#: ModelProto fields and their wire types (0 varint, 2 length-delimited): ir_version,
#: producer_name, producer_version, domain, model_version, doc_string, graph, opset_import,
#: metadata_props, training_info, functions, configuration.
_ONNX_SNIFF_FIELDS = 16
_ONNX_MODEL_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}


def _is_onnx(data: memoryview) -> bool:
    """An ONNX ModelProto: the buffer starts with at least two ModelProto fields with their
    wire types, in any order, ``ir_version`` (3 to 15) among them (its first 16 fields are
    looked at; a large graph before ``ir_version`` is skipped, not read). What follows may be
    broken: the handler reports it.

    TensorFlow's SavedModel also starts with field 1, but with version 1 and then a message.
    """
    if not data or data[0] & 7 not in (0, 2):
        return False
    seen = 0
    ir_version = 0
    try:
        for field in fields(data, 0, len(data)):
            if seen >= _ONNX_SNIFF_FIELDS:
                break
            if _ONNX_MODEL_FIELDS.get(field.number) != field.wire_type:
                break
            if field.number == 1:
                ir_version = field.value
            seen += 1
    except WireError:
        pass
    return seen >= 2 and 3 <= ir_version <= 15


#: Text documents are searched this far for Jinja delimiters.
_TEMPLATE_SEARCH = 64 << 20
_CHUNK = 1 << 20
_TEMPLATE_OPEN = re.compile(rb"\{[{%]")
_TEMPLATE_CLOSE = re.compile(rb"[}%]\}")


def _text_document(data: memoryview, head: bytes) -> Format | None:
    """A JSON document, or text holding Jinja template syntax (``{{ }}`` or ``{% %}``).

    Only UTF-8 text without NUL bytes counts. JSON starts with ``{`` or ``[`` (a ``{{``,
    ``{%`` or ``{#`` start is a template); other text must hold an opening and a closing
    Jinja delimiter in its first 64 MiB.
    """
    if b"\x00" in head:
        return None
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        # Only a character cut by the end of the window is allowed.
        if e.start < len(head) - 3 or len(head) == len(data):
            return None
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if start[:1] == b"{" and start[1:2] not in (b"{", b"%", b"#"):
        return Format.JSON
    if start[:1] == b"[" and start[1:2] in b' \t\r\n{["-0123456789tfn]':
        return Format.JSON
    pattern = _TEMPLATE_OPEN
    for offset in range(0, min(len(data), _TEMPLATE_SEARCH), _CHUNK):
        window = bytes(data[offset : offset + _CHUNK + 1])  # one byte of overlap
        found = pattern.search(window)
        if found is not None:
            if pattern is _TEMPLATE_CLOSE:
                return Format.JINJA
            if _TEMPLATE_CLOSE.search(window, found.end()):
                return Format.JINJA
            pattern = _TEMPLATE_CLOSE
    return None


def looks_like_pickle(head: bytes, *, complete: bool, strict: bool = False) -> bool:
    """Whether ``head`` (a buffer's first bytes) starts a pickle.

    Protocol 2+ pickles start with ``PROTO``; protocol 0/1 pickles have no header, so their
    first opcodes are decoded and checked against the stack and mark discipline. ``complete``
    says that ``head`` is the whole buffer (its end is the end of the data). With ``strict``,
    even a ``PROTO`` header must be followed by opcodes that decode cleanly up to the end of
    ``head``: used to sniff raw tensor data, where a loose check would fire by chance.
    """
    if not head:
        return False
    if head[0] == 0x80:
        if len(head) < 2 or not 2 <= head[1] <= 5:
            return False
        if not strict:
            return len(head) == 2 or head[2:3] in _pickle_opcode_bytes()
        # Whole opcodes must cover most of the window: an argument that swallows the rest of
        # it proves nothing.
        verdict = _grammar(head, complete=False, strict=True)
        covered = verdict.stopped or verdict.end * 2 >= len(head)
        return verdict.valid and verdict.ops >= 6 and covered
    if head[0] not in _LEGACY_PICKLE_STARTS:
        return False
    verdict = _grammar(head, complete=complete)
    if verdict.valid:
        return (verdict.stopped and verdict.ops >= 2) or verdict.ops >= 3 or verdict.globals > 0
    # A pickle whose payload comes first and whose tail is broken (nullifAI) is still a
    # pickle: the analyzer reports the payload and the malformation.
    return verdict.globals > 0 and not strict


class _Verdict:
    __slots__ = ("end", "globals", "ops", "stopped", "valid")

    def __init__(self) -> None:
        self.end = 0
        self.ops = 0
        self.globals = 0
        self.stopped = False
        self.valid = True


def _grammar(head: bytes, *, complete: bool, strict: bool = False) -> _Verdict:
    """Decode opcodes with pickletools (no execution) and check stack and mark use."""
    verdict = _Verdict()
    stream = io.BytesIO(head)
    try:
        with warnings.catch_warnings():
            # pickletools decodes STRING arguments with codecs.escape_decode, which warns
            # about bad escapes in hostile data; the warning says nothing the verdict does not.
            warnings.simplefilter("ignore")
            _walk(stream, verdict, strict)
    except ValueError:
        # Running out of bytes at the end of the window (or of a truncated file) is not a
        # grammar error; anything else is.
        at_end = stream.tell() >= len(head)
        verdict.valid = at_end and (not complete or verdict.ops > 0)
    return verdict


def _walk(stream: io.BytesIO, verdict: _Verdict, strict: bool) -> None:
    import pickletools  # only for files that may be headerless pickles

    stack: list[bool] = []  # True marks a MARK
    memo: set[object] = set()
    for op, arg, pos in pickletools.genops(stream):
        if (
            (op.name in _GLOBAL_OPS and not _global_arg_ok(arg))
            or (op.name == "PROTO" and (not isinstance(arg, int) or arg > 5 or (strict and pos)))
            or (strict and not _strict_ok(op.name, arg, memo))
            or not _apply_stack(op, stack)
        ):
            verdict.valid = False
            return
        verdict.ops += 1
        verdict.end = stream.tell()
        verdict.globals += op.name in _GLOBAL_OPS
        if op.name == "STOP":
            verdict.stopped = True
            return
        if verdict.ops >= _MAX_SNIFF_OPCODES:
            return


def _strict_ok(name: str, arg: object, memo: set[object]) -> bool:
    """Extra checks for opaque data: no text opcodes, no extension codes, no unknown memo."""
    if name in _TEXT_OPS or name.startswith("EXT"):
        return False
    if name == "MEMOIZE":
        memo.add(len(memo))
    elif name.endswith("PUT"):
        memo.add(arg)
    elif name.endswith("GET"):
        return arg in memo
    return True


def _global_arg_ok(arg: object) -> bool:
    if not isinstance(arg, str) or " " not in arg:
        return False
    module, _, name = arg.partition(" ")
    return all(_IDENT.match(part.encode("latin-1", "replace")) for part in (module, name))


def _apply_stack(op: pickletools.OpcodeInfo, stack: list[bool]) -> bool:
    """Mirror ``pickletools.dis``'s stack checks on a stack of mark flags; False if broken."""
    import pickletools

    before, after = op.stack_before, op.stack_after
    if pickletools.markobject in before:
        if True not in stack:
            return False
        top_mark = len(stack) - 1 - stack[::-1].index(True)
        below = before.index(pickletools.markobject)
        if top_mark < below:
            return False
        del stack[top_mark - below :]
    elif op.name == "POP" and stack and stack[-1]:
        stack.pop()
    else:
        count = len(before)
        if len(stack) < count or any(stack[len(stack) - count :]):
            return False
        del stack[len(stack) - count :]
    if pickletools.markobject in after:
        stack.append(True)
    else:
        stack.extend(False for _ in after)
    return True


# ---- embedded content ----------------------------------------------------------------------


def executable_kind(head: bytes) -> str | None:
    """Name the native executable or script format ``head`` starts with, if any."""
    if head.startswith(b"\x7fELF"):
        return "ELF executable"
    if head[:4] in (
        b"\xfe\xed\xfa\xce",
        b"\xfe\xed\xfa\xcf",
        b"\xce\xfa\xed\xfe",
        b"\xcf\xfa\xed\xfe",
    ):
        return "Mach-O executable"
    if head.startswith(b"MZ") and len(head) >= 64:
        (pe_offset,) = struct.unpack_from("<I", head, 0x3C)
        if head[pe_offset : pe_offset + 4] == b"PE\x00\x00":
            return "Windows PE executable"
    if re.match(rb"#! ?/[\x21-\x7e]+", head[:128]):
        return "script with an interpreter line (#!)"
    return None


def sniff_strong(head: bytes) -> Format | None:
    """A format announced by a long magic number or a clean pickle start, else None.

    Used on data that is normally opaque (tensor storages): only signatures that chance does not
    produce count, so a float that happens to begin with ``0x80`` is not taken for a pickle.
    """
    if head.startswith(b"PK\x03\x04"):
        return Format.ZIP
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    if looks_like_pickle(head, complete=False, strict=True):
        return Format.PICKLE
    return None


# ---- extension check -------------------------------------------------------------------------


def extension_mismatch(path: str, fmt: Format) -> Finding | None:
    """A low finding when ``path``'s model extension disagrees with its detected content."""
    ext = PurePath(path).suffix.lower()
    expected = formats_for_extension(ext)
    if not expected or fmt in expected:
        return None
    content = "no bytes at all" if fmt is Format.EMPTY else f"content of kind '{fmt.value}'"
    if fmt is Format.UNKNOWN:
        content = "content of no known model or container format"
    wanted = ", ".join(sorted(f.value for f in expected))
    return FORMAT_EXTENSION_MISMATCH.finding(
        Location(path),
        f"The name ends in '{ext}', which model tools read as {wanted}, but the file holds "
        f"{content}. It was analysed by content; check that it is the artefact you expect.",
        evidence={"extension": ext, "detected": fmt.value},
    )
