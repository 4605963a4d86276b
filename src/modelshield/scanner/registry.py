"""The format table: every format the scanner knows, with its facts, in one place.

Each :class:`FormatSpec` row says what a format is called in reports, the magic bytes that
announce it at offset 0 (formats recognised by structure have none; their sniffers are in
:mod:`modelshield.scanner.detect`), the file extensions model tools read it under, and the
handler that analyses it, named as ``module:function`` under ``modelshield.scanner.formats``.

Handlers are imported the first time a buffer of their format is met, so a one-file scan of a
pickle never imports the zip, tar or 7z readers. Nothing here imports a format module at import
time: format modules import this one (for :class:`Format`), the engine imports this one (for
:func:`handler_for`), and the arrows never point back.

Adding a format touches two files: a :class:`Format` member and a row of :data:`FORMATS` here,
and the module that holds its handler (see ``ARCHITECTURE.md``).
"""

from __future__ import annotations

import enum
import functools
import importlib
from collections.abc import Mapping
from pathlib import PurePath
from typing import TYPE_CHECKING, Protocol

from msgspec import Struct

if TYPE_CHECKING:
    from modelshield.core.findings import Location
    from modelshield.scanner.context import ScanContext


class Format(enum.StrEnum):
    """Formats the scanner recognises. The value is what reports show."""

    PICKLE = "pickle"
    TORCH_LEGACY = "pytorch-legacy"
    ZIP = "zip"
    TAR = "tar"
    GZIP = "gzip"
    BZIP2 = "bzip2"
    XZ = "xz"
    LZMA = "lzma"
    ZLIB = "zlib"
    LZ4 = "lz4"
    NUMPY = "numpy"
    SEVENZIP = "7z"
    RAR = "rar"
    ZSTD = "zstd"
    HDF5 = "hdf5"
    SAFETENSORS = "safetensors"
    GGUF = "gguf"
    ONNX = "onnx"
    TF_SAVEDMODEL = "tf-savedmodel"
    TF_GRAPHDEF = "tf-graphdef"
    KERAS_METADATA = "keras-metadata"
    JOBLIB_ZFILE = "joblib-zfile"
    MSGPACK = "msgpack"
    SENTENCEPIECE = "sentencepiece"
    TEXT = "text"
    IMAGE = "image"
    PDF = "pdf"
    DATA = "data"
    EXECUTABLE = "executable"
    JSON = "json"
    YAML = "yaml"
    JINJA = "jinja-template"
    PYTHON = "python"
    PTH = "python-pth"
    UNKNOWN = "unknown"
    EMPTY = "empty"


class Handler(Protocol):
    """A format handler: analyse ``data`` found at ``location``."""

    def __call__(self, ctx: ScanContext, data: memoryview, location: Location) -> None:
        """Report findings on ``ctx``; recurse with ``ctx.scan_buffer``."""


class FormatSpec(Struct, frozen=True):
    """What the scanner knows about one format."""

    format: Format
    """The format."""
    handler: str | None = None
    """``module:function`` of its handler under ``modelshield.scanner.formats``; None when the
    format is recognised but not analysed yet (the engine then reports it as not analysed)."""
    magic: tuple[bytes, ...] = ()
    """Byte strings that announce the format at offset 0 (checked in table order)."""
    extensions: tuple[str, ...] = ()
    """File extensions (lower case, with the dot) that model tools read this format under."""
    executes_on_load: bool = False
    """Whether a loader of a file named with these extensions may run code from unrecognised
    content (pickle fallbacks, Lambda layers): such a file of unknown content fails the default
    policy (``SCAN-UNRECOGNISED``)."""


#: Compressed streams joblib and pickle users write models into (``model.joblib.xz``...).
_COMPRESSED_MODEL_EXTENSIONS = (".pkl", ".pickle", ".joblib", ".sav", ".dill")
_PICKLE_EXTENSIONS = (".pkl", ".pickle", ".joblib", ".sav", ".dill")
_TORCH_EXTENSIONS = (".pt", ".pth", ".ckpt", ".bin", ".mar")

FORMATS: tuple[FormatSpec, ...] = (
    # Magic numbers are tried in this order; a longer magic comes before a shorter one it
    # begins with.
    FormatSpec(Format.SEVENZIP, "sevenzip:scan_7z", (b"7z\xbc\xaf\x27\x1c",)),
    FormatSpec(Format.RAR, "rar:scan_rar", (b"Rar!\x1a\x07",)),
    FormatSpec(Format.NUMPY, "numpy_format:scan_numpy", (b"\x93NUMPY",), (".npy",), True),
    FormatSpec(
        Format.HDF5, "hdf5:scan_hdf5", (b"\x89HDF\r\n\x1a\n",), (".h5", ".hdf5", ".keras"), True
    ),
    FormatSpec(Format.XZ, "compressed:scan_xz", (b"\xfd7zXZ\x00",), _COMPRESSED_MODEL_EXTENSIONS),
    FormatSpec(
        Format.ZSTD, "compressed:scan_zstd", (b"\x28\xb5\x2f\xfd",), _COMPRESSED_MODEL_EXTENSIONS
    ),
    FormatSpec(
        Format.LZ4, "compressed:scan_lz4", (b"\x04\x22\x4d\x18",), _COMPRESSED_MODEL_EXTENSIONS
    ),
    FormatSpec(
        Format.TORCH_LEGACY,
        "pickle:scan_torch_legacy",
        (bytes.fromhex("80028a0a6cfc9c46f9206aa85019"),),
        (*_TORCH_EXTENSIONS, *_PICKLE_EXTENSIONS),
        True,
    ),
    FormatSpec(
        Format.GZIP, "compressed:scan_gzip", (b"\x1f\x8b\x08",), _COMPRESSED_MODEL_EXTENSIONS
    ),
    # Recognised by structure (detect.py): no magic here.
    FormatSpec(Format.BZIP2, "compressed:scan_bzip2", (), _COMPRESSED_MODEL_EXTENSIONS),
    FormatSpec(Format.GGUF, "gguf:scan_gguf", (), (".gguf",)),
    FormatSpec(Format.SAFETENSORS, "safetensors:scan_safetensors", (), (".safetensors",)),
    FormatSpec(Format.PICKLE, "pickle:scan_pickle", (), _PICKLE_EXTENSIONS, True),
    FormatSpec(
        Format.ZIP,
        "archive_zip:scan_zip",
        (),
        (*_TORCH_EXTENSIONS, ".npz", ".keras", ".skops"),
        True,
    ),
    FormatSpec(Format.TAR, "archive_tar:scan_tar"),
    FormatSpec(Format.LZMA, "compressed:scan_lzma", (), _COMPRESSED_MODEL_EXTENSIONS),
    FormatSpec(Format.ZLIB, "compressed:scan_zlib", (), _COMPRESSED_MODEL_EXTENSIONS),
    FormatSpec(
        Format.JOBLIB_ZFILE, "compressed:scan_joblib_zfile", (), _COMPRESSED_MODEL_EXTENSIONS
    ),
    FormatSpec(Format.ONNX, "onnx:scan_onnx", (), (".onnx",)),
    # Text documents (configs, tokenizer files, chat templates): no model extension, so that
    # a .json holding something else is not reported as a misnamed model.
    FormatSpec(Format.JSON, "document:scan_json"),
    FormatSpec(Format.YAML, "document:scan_yaml"),
    FormatSpec(Format.JINJA, "document:scan_template"),
    # Python source, and .pth files whose import lines Python's site module runs at start-up:
    # recognised by content (detect.py). A text .pth that only lists paths is text.
    FormatSpec(Format.PYTHON, "python_source:scan_python", (), (".pth",)),
    FormatSpec(Format.PTH, "python_source:scan_pth", (), (".pth",)),
    # Data formats recognised by structure (detect.py asks their modules' sniffers).
    FormatSpec(Format.MSGPACK, "msgpack:scan_msgpack"),
    FormatSpec(Format.SENTENCEPIECE, "sentencepiece:scan_sentencepiece"),
    # Ordinary files that no model loader executes (READMEs, licences, pictures): recognised by
    # detect.ordinary_kind(); their handler reads them as a pickle from byte 0, the one way a
    # model loader would run them.
    # ".pth": site-packages path-configuration files are text (a list of folders).
    # A text file named like a Python module is also read as Python (python_source.scan_text).
    FormatSpec(Format.TEXT, "python_source:scan_text", (), (".pth",)),
    FormatSpec(Format.IMAGE, "unknown:scan_ordinary"),
    FormatSpec(Format.PDF, "unknown:scan_ordinary"),
    FormatSpec(Format.DATA, "unknown:scan_ordinary"),
    # Native programs (ELF, PE, Mach-O): archives report them as members (ARCHIVE-EXECUTABLE-
    # MEMBER); they are recognised so that they are not "unrecognised content" too.
    FormatSpec(Format.EXECUTABLE, "unknown:scan_ordinary"),
    # TensorFlow protobufs, recognised by structure. No extension: ".pb" also names protobufs
    # that hold no graph (a SavedModel's fingerprint.pb).
    FormatSpec(Format.TF_SAVEDMODEL, "tf_savedmodel:scan_savedmodel"),
    FormatSpec(Format.TF_GRAPHDEF, "tf_savedmodel:scan_graphdef"),
    FormatSpec(Format.KERAS_METADATA, "tf_savedmodel:scan_keras_metadata"),
    # Content of no known format: read as a pickle, and reported under a loader's file name.
    FormatSpec(Format.UNKNOWN, "unknown:scan_unknown"),
    FormatSpec(Format.EMPTY),
)
"""Every format, with its facts. A test checks that every :class:`Format` has one row and that
every handler named here exists."""

_BY_FORMAT: Mapping[Format, FormatSpec] = {spec.format: spec for spec in FORMATS}

#: Suffixes of compressed copies of a model file (``model.joblib.gz``).
COMPRESSION_SUFFIXES = frozenset({".gz", ".bz2", ".xz", ".lzma", ".z", ".zst", ".lz4"})

MODEL_EXTENSIONS: frozenset[str] = frozenset(ext for spec in FORMATS for ext in spec.extensions)
"""Every extension a model tool reads a model under (``.pt``, ``.pkl``, ``.npy``...): the
scanner's name check and the dependency audit's model discovery share this list."""

EXECUTABLE_EXTENSIONS: frozenset[str] = frozenset(
    ext for spec in FORMATS if spec.executes_on_load for ext in spec.extensions
)
"""Extensions whose loaders may run code from content the scanner does not recognise."""


def spec(fmt: Format) -> FormatSpec:
    """The row of a format."""
    return _BY_FORMAT[fmt]


def formats_for_extension(ext: str) -> frozenset[Format]:
    """The formats a file with this extension may hold (empty: not a model extension)."""
    return frozenset(s.format for s in FORMATS if ext in s.extensions)


def model_extension(name: str) -> str | None:
    """The model extension of a file name, looking through compression suffixes
    (``model.joblib.xz`` is a ``.joblib``), or None."""
    suffixes = [s.lower() for s in PurePath(name).suffixes]
    while suffixes and suffixes[-1] in COMPRESSION_SUFFIXES:
        suffixes.pop()
    if suffixes and suffixes[-1] in MODEL_EXTENSIONS:
        return suffixes[-1]
    return None


BYTE_ZERO_PASS = "unknown:read_as_pickle"
"""The handler every recognised format that is not a pickle also gets, before its own: a pickle
loader reads any file from byte 0, so a polyglot (a tar header whose member name is a pickle)
is read both ways. It reports only what an unpickler would run (``formats/unknown.py``)."""

#: Formats the byte-zero pass is not run on: pickles (their handler reads byte 0 already),
#: unknown and ordinary content (their handler does the same pass), zips (their handler
#: analyses whatever comes before the first entry by content) and empty buffers.
_READ_AS_PICKLE = frozenset(
    {
        Format.PICKLE,
        Format.TORCH_LEGACY,
        Format.UNKNOWN,
        Format.ZIP,
        Format.EMPTY,
        Format.TEXT,
        Format.IMAGE,
        Format.PDF,
        Format.DATA,
        Format.EXECUTABLE,
    }
)

_HANDLERS: dict[Format, Handler | None] = {}


def handler_for(fmt: Format) -> Handler | None:
    """The handler of a format, imported on first use; None for formats not analysed."""
    try:
        return _HANDLERS[fmt]
    except KeyError:
        pass
    ref = _BY_FORMAT[fmt].handler
    handler = None if ref is None else _resolve(ref)
    _HANDLERS[fmt] = handler
    return handler


def byte_zero_pass(fmt: Format) -> Handler | None:
    """The :data:`BYTE_ZERO_PASS` handler for content of ``fmt``, or None where it is not run."""
    if fmt in _READ_AS_PICKLE:
        return None
    return _resolve(BYTE_ZERO_PASS)


@functools.cache
def _resolve(ref: str) -> Handler:
    """Import ``module:function`` under ``modelshield.scanner.formats``."""
    module, _, function = ref.partition(":")
    handler: Handler = getattr(
        importlib.import_module(f"modelshield.scanner.formats.{module}"), function
    )
    return handler
