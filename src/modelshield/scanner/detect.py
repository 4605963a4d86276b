"""Format detection by content (magic bytes and structure), never by file name.

:func:`detect` looks at a prefix of the buffer, and at its end for a zip's end-of-central-directory
record, so that a zip with a prefix (a polyglot) is still found. The only place where a file
name is used is :func:`extension_mismatch`, which warns when a file named like a model holds
something else.
"""

from __future__ import annotations

import io
import lzma
import re
import struct
import zlib
from pathlib import PurePath

from modelshield.core.findings import Finding, Location
from modelshield.scanner.memio import Buffer, MemoryviewIO
from modelshield.scanner.pickle.sniff import looks_like_pickle
from modelshield.scanner.pysniff import looks_like_pth, looks_like_python
from modelshield.scanner.registry import FORMATS, Format, formats_for_extension
from modelshield.scanner.rules import FORMAT_EXTENSION_MISMATCH, SKOPS_NOT_ZIP
from modelshield.scanner.wire.msgpack import looks_like_msgpack
from modelshield.scanner.wire.protobuf import LEN, VARINT, ProtobufError, fields, leading_fields
from modelshield.scanner.wire.sentencepiece import looks_like_sentencepiece
from modelshield.scanner.zipreader import find_end_record

#: How much of a buffer's start the sniffers look at.
_HEAD = 4096
#: Opcodes a pickle sniff follows before it calls the buffer a pickle (a real one has many).
_MAX_SNIFF_OPCODES = 64

#: Magic numbers at offset 0, from the format table, in its order.
_MAGIC: tuple[tuple[bytes, Format], ...] = tuple(
    (magic, spec.format) for spec in FORMATS for magic in spec.magic
)
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_BZIP2_BLOCK = (b"1AY&SY", b"\x17rE8P\x90")  # first block, or end of stream (empty input)


def detect(data: memoryview) -> Format:
    """Guess a buffer's format from its bytes alone."""
    size = len(data)
    if size == 0:
        return Format.EMPTY
    head = bytes(data[:_HEAD])
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return Format.ZIP
    fmt = _by_magic(head, size)
    if fmt is None and head[0] == 0x80 and _is_pickle(data):
        fmt = Format.PICKLE  # a protocol header: nothing else starts with 0x80 0x00-0x05
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
    if is_tar(data):
        return Format.TAR
    if is_lzma_alone(head, complete=size <= len(head)):
        return Format.LZMA
    if _is_zlib(head):
        return Format.ZLIB
    if _is_joblib_zfile(head):
        return Format.JOBLIB_ZFILE
    if _is_pickle(data):
        return Format.PICKLE
    if (tensorflow := _tensorflow_protobuf(data)) is not None:
        return tensorflow
    if _is_onnx(data):
        return Format.ONNX
    if looks_like_msgpack(data):
        return Format.MSGPACK
    if looks_like_sentencepiece(data):
        return Format.SENTENCEPIECE
    document = _text_document(data, head)
    if document is not None:
        return document
    kind = ordinary_kind(head, complete=size <= len(head))
    if kind is not None:
        return _ORDINARY_FORMATS[kind]
    return Format.UNKNOWN if executable_kind(head) is None else Format.EXECUTABLE


def _is_pickle(data: memoryview) -> bool:
    """Whether an unpickler reading from byte 0 accepts the start of ``data`` as a pickle.

    Every loader that falls back to pickle (``pickle.load``, ``torch.load`` on a non-zip file,
    ``joblib.load``, ``numpy.load(allow_pickle=True)``) starts at byte 0, and CPython accepts
    any opcode there that does not fail on an empty machine (a ``FRAME``, ``SHORT_BINBYTES``,
    ``PROTO 0``...). Content it fails on before importing and calling anything is left to the
    tolerant pass that every unrecognised buffer gets.
    """
    return looks_like_pickle(data, max_ops=_MAX_SNIFF_OPCODES)


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


# ---- tar, as Python's tarfile reads a first header (torch.load tries it on every non-zip) ----

#: Number fields tarfile parses in every header (mode, uid, gid, size, mtime, devmajor,
#: devminor); a field it cannot parse makes the header invalid.
_TAR_NUMBERS = ((100, 108), (108, 116), (116, 124), (124, 136), (136, 148), (329, 337), (337, 345))


def is_tar(data: Buffer) -> bool:
    """Whether Python's ``tarfile`` (which ``torch.load`` tries on every file that is not a
    zip) opens ``data`` and reads a first member.

    The first header is checked here as ``tarfile.TarInfo.frombuf`` checks it: not an all-zero
    block, every number field readable (octal text or base-256), and a checksum equal to the
    unsigned or the signed sum of the header with the checksum field read as spaces. The
    ``ustar`` magic is not needed: old (v7) headers have none, and a header with the magic but
    a bad checksum is refused. Only a header that passes is handed to ``tarfile`` itself, for
    what follows it (GNU long names, pax records).
    """
    if len(data) < 512 or not _tar_header_ok(bytes(data[:512])):
        return False
    import tarfile  # only for buffers whose first block is a valid tar header

    try:
        with tarfile.open(fileobj=io.BufferedReader(MemoryviewIO(memoryview(data))), mode="r:"):
            return True
    except Exception:  # tarfile raises several kinds on hostile headers: not a tar it reads
        return False


def _tar_header_ok(block: bytes) -> bool:
    """``tarfile.TarInfo.frombuf``'s checks of one 512-byte header."""
    if block.count(0) == 512:
        return False
    checksum = _tar_number(block[148:156])
    if checksum is None or any(_tar_number(block[a:b]) is None for a, b in _TAR_NUMBERS):
        return False
    unsigned = 256 + sum(block[:148]) + sum(block[156:])
    signed = unsigned - 256 * sum(1 for c in (*block[:148], *block[156:]) if c >= 0x80)
    return checksum in (unsigned, signed)


def _tar_number(field: bytes) -> int | None:
    """A tar number field the way ``tarfile.nti`` reads it, or None where it raises."""
    if field[0] in (0o200, 0o377):
        value = int.from_bytes(field[1:], "big")
        return value - 256 ** (len(field) - 1) if field[0] == 0o377 else value
    text = field.split(b"\x00", 1)[0]
    try:
        return int(text.decode("ascii").strip() or "0", 8)
    except (UnicodeDecodeError, ValueError):
        return None


# ---- compressed streams ------------------------------------------------------------------


def is_lzma_alone(head: bytes, *, complete: bool) -> bool:
    """An LZMA-alone stream (``.lzma``; joblib's ``lzma`` compressor) that liblzma decodes.

    The header is the one ``lzma.open``, ``pandas.read_pickle`` and joblib accept (liblzma's
    ``.lzma`` detection): properties with lc + lp <= 4 and pb <= 4; a dictionary size of 2**n
    or 2**n + 2**(n-1) bytes (any n), or 0xFFFFFFFF; an uncompressed size that is unknown (all
    ones) or below 256 GiB. The first bytes must then decode without error. Because a run of
    zero bytes after such a header decodes (to zeros) without end, a stream must decode to
    something else, and a ``complete`` buffer (``head`` is all of it) must reach its end: a
    file of zeros, or float data that starts with them, is not taken for a compressed stream.
    """
    if len(head) < 14 or head[13] != 0:  # the range coder's first byte is always 0
        return False
    props = head[0]
    if props > 224 or props % 9 + (props // 9) % 5 > 4:
        return False
    dict_size, usize = struct.unpack_from("<IQ", head, 1)
    if not (_lzma_dict_size_ok(dict_size) and (usize == (1 << 64) - 1 or usize < 1 << 38)):
        return False
    decoder = lzma.LZMADecompressor(lzma.FORMAT_ALONE)
    try:
        out = decoder.decompress(head, max_length=_HEAD)
    except lzma.LZMAError:
        return False
    if not out.strip(b"\x00"):
        return False
    return decoder.eof or not (complete and decoder.needs_input)


def _lzma_dict_size_ok(size: int) -> bool:
    """liblzma's check (alone_decoder.c): 2**n or 2**n + 2**(n-1), in 32-bit arithmetic."""
    if size == 0xFFFFFFFF:
        return True
    d = (size - 1) & 0xFFFFFFFF
    for shift in (2, 3, 4, 8, 16):
        d |= d >> shift
    return (d + 1) & 0xFFFFFFFF == size


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
    """joblib's pre-0.10 format, as ``joblib.numpy_pickle_compat.read_zfile`` reads it: ``ZF``,
    the inflated length as 19 characters that ``int(..., 16)`` reads (``0x28`` padded with
    spaces; any case, sign or spacing it accepts), an optional space, then a zlib stream."""
    if not head.startswith(b"ZF") or len(head) < 24:
        return False
    try:
        if int(head[2:21], 16) < 0:
            return False
    except ValueError:
        return False
    start = 22 if head[21:22] == b" " else 21
    try:
        zlib.decompressobj(15).decompress(head[start:], _HEAD)
    except zlib.error:
        return False
    return True


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
    except ProtobufError:
        pass
    return seen >= 2 and 3 <= ir_version <= 15


#: Text is searched this far for a line only Python writes (a long licence or docstring can
#: come before the imports).
_PYTHON_SEARCH = 1 << 20
#: Text documents are searched this far for Jinja delimiters.
_TEMPLATE_SEARCH = 64 << 20
_CHUNK = 1 << 20
_TEMPLATE_OPEN = re.compile(rb"\{[{%]")
_TEMPLATE_CLOSE = re.compile(rb"[}%]\}")


def _text_document(data: memoryview, head: bytes) -> Format | None:
    """A JSON document, a YAML document, a ``.pth`` file that runs code, Python source, or text
    holding Jinja template syntax (``{{ }}`` or ``{% %}``).

    Only UTF-8 text without NUL bytes counts (and UTF-16 with its byte-order mark, for YAML,
    which PyYAML's reader decodes). JSON starts with ``{`` or ``[`` (a ``{{``, ``{%`` or
    ``{#`` start is a template); YAML is recognised by :func:`yaml_candidate`; ``.pth`` and
    Python are recognised by their lines (:mod:`modelshield.scanner.pysource`); other text must
    hold an opening and a closing Jinja delimiter in its first 64 MiB.
    """
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) and len(head) % 2 == 0:
        codec = "utf-16-le" if head[0] == 0xFF else "utf-16-be"
        wide = head[2:].decode(codec, "replace")
        return Format.YAML if "\x00" not in wide and yaml_candidate(wide) else None
    if b"\x00" in head:
        return None
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError as e:
        # Only a character cut by the end of the window is allowed.
        if e.start < len(head) - 3 or len(head) == len(data):
            return None
        decoded = head[: e.start].decode("utf-8")
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if start[:1] == b"{" and start[1:2] not in (b"{", b"%", b"#"):
        return Format.JSON
    if start[:1] == b"[" and start[1:2] in b' \t\r\n{["-0123456789tfn]':
        return Format.JSON
    if yaml_candidate(decoded):
        return Format.YAML
    if looks_like_pth(head, complete=len(head) == len(data)):
        return Format.PTH
    if looks_like_python(start) or (
        len(data) > len(head) and looks_like_python(bytes(data[:_PYTHON_SEARCH]))
    ):
        return Format.PYTHON  # before templates: Python source often holds "{{" and "}}"
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


#: What text says when it declares itself YAML, anywhere in its first 4 KiB: a directive, a
#: verbatim tag (``!<...>``), a short standard tag (``!!python/...``, ``!!str``), a Python tag
#: URI.
_YAML_DECLARED = re.compile(
    r"^%(?:YAML|TAG)\s|!<[^\s>]+>|(?:^|[\s\[{,:?-])!![A-Za-z]|tag:yaml\.org,2002:python/",
    re.M,
)
#: A block mapping key (``key:``, ``two words:``, ``"quoted key":``, ``? key``; plain keys of
#: more than three words are prose) or a block sequence item.
_YAML_KEY = re.compile(
    r"""^(?:[A-Za-z_$][\w.$/-]*(?:[ ][\w.$/-]+){0,2}|"[^"\n]*"|'[^'\n]*')[ \t]*:(?:[ \t]|$)"""
    r"|^\?[ \t]|^-(?:[ \t]|$)"
)
#: First words of program lines that also end in a colon (``def f():``, ``if x:``).
_PROGRAM_WORD = re.compile(
    r"^(?:def|class|if|elif|else|for|while|try|except|finally|with|async|return|import|from)"
    r"\b"
)
#: Lines of the head looked at for YAML structure.
_YAML_LINES = 24


def declares_yaml(text: str) -> bool:
    """Whether text declares itself YAML: a ``%YAML``/``%TAG`` directive or a Python tag."""
    return _YAML_DECLARED.search(text[:_HEAD]) is not None


def yaml_candidate(head: str) -> bool:
    """Whether the start of a text document is YAML that a loader would read into a mapping
    or a sequence, judged from its lines (no YAML parser is imported here).

    Either the text declares itself YAML (:func:`declares_yaml`), or its first line that is
    not blank, a comment, a directive or a document marker is a block mapping key or a
    sequence item, and at least half of its first lines (24 at most) at the left margin are
    too: prose that happens to start with ``Note: ...`` is not taken for YAML. The handler
    parses candidates, and text that does not parse into a mapping or a sequence stays text.
    """
    if declares_yaml(head):
        return True
    margin = 0
    structured = 0
    first = True
    for line in head.splitlines()[:200]:
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped in ("---", "..."):
            continue
        if line[0] in " \t":
            continue  # indented: the value of a key above, or a continuation
        if stripped.startswith("--- "):
            stripped = stripped[4:].lstrip()
        if first and stripped[:1] in ("!", "&"):
            return True  # a tagged or anchored root node
        program = _PROGRAM_WORD.match(stripped) and (stripped.endswith(":") or "(" in stripped)
        is_key = bool(_YAML_KEY.match(stripped)) and not program
        if first:
            if not is_key:
                return False
            first = False
        margin += 1
        structured += is_key
        if margin >= _YAML_LINES:
            break
    return not first and structured * 2 >= margin


_TF_SNIFF_FIELDS = 4096
_TF_OP = re.compile(rb"^_?[A-Z][A-Za-z0-9_]*$")
_SAVED_OBJECT_FIELDS = {2: VARINT, 3: LEN, 4: LEN, 5: LEN, 6: LEN}


def _tensorflow_protobuf(data: memoryview) -> Format | None:
    """A TensorFlow SavedModel, frozen GraphDef or Keras ``keras_metadata.pb``, recognised by
    the shape of its top-level fields and of its first nested message (protobuf has no magic
    number): ``SavedModel {1: version, 2: MetaGraphDef {1..7: messages}}``,
    ``GraphDef {1: NodeDef {1: name, 2: op, ...}, 2: library, 3: version, 4: versions}``,
    ``SavedMetadata {1: SavedObject {2: node_id, 3: path, 4: identifier, 5: metadata}}``.
    Fields are read up to the first error, so that a truncated file is still recognised (and
    reported as broken by its handler)."""
    if len(data) < 2 or data[0] not in (0x08, 0x0A, 0x12):
        return None
    top = leading_fields(data, limit=_TF_SNIFF_FIELDS)
    first = next((f for f in top if f.wire_type == LEN), None)
    if first is None or first.value == 0:
        return None
    inner = leading_fields(data, first.start, first.end, _TF_SNIFF_FIELDS)
    kinds = {(f.number, f.wire_type) for f in top}
    if not inner:
        return None
    if kinds <= {(1, VARINT), (2, LEN)} and first.number == 2:
        if all(f.wire_type == LEN and 1 <= f.number <= 7 for f in inner):
            return Format.TF_SAVEDMODEL
    elif kinds <= {(1, LEN), (2, LEN), (3, VARINT), (4, LEN), (5, LEN)} and first.number == 1:
        op = next((f for f in inner if f.number == 2), None)
        nodedef = all(f.wire_type == LEN and 1 <= f.number <= 7 for f in inner)
        if nodedef and op is not None and _TF_OP.match(bytes(data[op.start : op.end])):
            return Format.TF_GRAPHDEF
        saved_object = all(_SAVED_OBJECT_FIELDS.get(f.number) == f.wire_type for f in inner)
        if kinds == {(1, LEN)} and saved_object and any(f.number == 4 for f in inner):
            return Format.KERAS_METADATA
    return None


# ---- ordinary files ------------------------------------------------------------------------

#: Magic numbers of files no model loader executes: pictures, documents, and data formats
#: whose usual names collide with model names (IDL and SPSS ``.sav``, GGML ``.bin``).
_ORDINARY_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"SR\x00\x04", "an IDL save file"),
    (b"SR\x00\x06", "an IDL save file"),
    (b"$FL2", "an SPSS data file"),
    (b"$FL3", "an SPSS data file"),
    (b"lmgg", "a GGML model"),
    (b"fmgg", "a GGML model"),
    (b"tjgg", "a GGML model"),
    (b"ID3", "an MP3 audio file"),
    (b"OggS", "an Ogg media file"),
    (b"fLaC", "a FLAC audio file"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
)
#: The format each kind of ordinary content is reported as.
_ORDINARY_FORMATS: dict[str, Format] = {
    "a PNG image": Format.IMAGE,
    "a JPEG image": Format.IMAGE,
    "a GIF image": Format.IMAGE,
    "a PDF document": Format.PDF,
    "an IDL save file": Format.DATA,
    "an SPSS data file": Format.DATA,
    "a GGML model": Format.DATA,
    "an MP3 audio file": Format.DATA,
    "an Ogg media file": Format.DATA,
    "a FLAC audio file": Format.DATA,
    "a RIFF media file": Format.DATA,
    "an MP4 media file": Format.DATA,
    "a TIFF image": Format.IMAGE,
    "text": Format.TEXT,
}
_TEXT_CONTROLS = frozenset(b"\t\n\r\f\v\x1b")


def ordinary_kind(head: bytes, *, complete: bool = False) -> str | None:
    """What an ordinary file that no model loader executes is (an image, a PDF, UTF-8 text, a
    data file of a known format), or None.

    ``complete`` says that ``head`` is the whole buffer: its text must then decode to the last
    byte (otherwise a character cut by the end of the window is allowed). Such content is still
    read as a pickle from byte 0, like any other.
    """
    for magic, kind in _ORDINARY_MAGIC:
        if head.startswith(magic):
            return kind
    if head.startswith(b"RIFF") and head[8:12] in (b"WAVE", b"WEBP", b"AVI "):
        return "a RIFF media file"
    if head[4:8] == b"ftyp":
        return "an MP4 media file"
    codec = "utf-8"
    text = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with its byte-order mark
        codec, text = ("utf-16-le" if head[0] == 0xFF else "utf-16-be"), head[2:]
    if not text:
        return None
    try:
        decoded = text.decode(codec)
    except UnicodeDecodeError as e:
        # Only a character cut by the end of the window is allowed, never in a whole buffer.
        if complete or e.start < len(text) - 4 or e.start == 0:
            return None
        decoded = text[: e.start].decode(codec)
    if any((ord(c) < 0x20 and ord(c) not in _TEXT_CONTROLS) or ord(c) == 0x7F for c in decoded):
        return None
    return "text"


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
    if looks_like_pickle(head, strict=True, partial=True):
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
    if ext == ".skops":
        return SKOPS_NOT_ZIP.finding(
            Location(path),
            f"The name ends in '.skops' but the file holds {content}, not the zip archive "
            "skops writes. skops' Card.get_model (silently in skops 0.12 and below, with "
            "allow_pickle=True since) hands such a file to joblib.load, which unpickles it; "
            "it was analysed by content.",
            evidence={"extension": ext, "detected": fmt.value, "cve": "CVE-2025-54886"},
        )
    if fmt is Format.UNKNOWN:
        content = "content of no known model or container format"
    wanted = ", ".join(sorted(f.value for f in expected))
    return FORMAT_EXTENSION_MISMATCH.finding(
        Location(path),
        f"The name ends in '{ext}', which model tools read as {wanted}, but the file holds "
        f"{content}. It was analysed by content; check that it is the artefact you expect.",
        evidence={"extension": ext, "detected": fmt.value},
    )
