"""Format detection by content (magic bytes and structure), never by file name."""

from __future__ import annotations

import enum


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
    UNKNOWN = "unknown"
    EMPTY = "empty"


def detect(data: memoryview) -> Format:
    """Guess a buffer's format from its bytes. Placeholder until the detection module lands."""
    if len(data) == 0:
        return Format.EMPTY
    head = bytes(data[:8])
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return Format.ZIP
    if head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5:
        return Format.PICKLE
    return Format.UNKNOWN
