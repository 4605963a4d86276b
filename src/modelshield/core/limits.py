"""Explicit, configurable resource limits for every analysis.

A tripped limit is never a clean verdict: analyzers report it as a finding
(``SCAN-LIMIT``) that fails the default policy.
"""

from __future__ import annotations

from typing import Any

from msgspec import Struct

from modelshield.core.errors import ConfigError

_KIB = 1024
_MIB = 1024 * _KIB
_GIB = 1024 * _MIB


class Limits(Struct, frozen=True):
    """Bounds on size, depth, time and interpreter state. All must be positive."""

    max_file_bytes: int = 64 * _GIB
    """Files larger than this are not opened (a finding says so)."""
    max_pickle_bytes: int = 64 * _GIB
    """Largest single pickle stream (a whole member or file) that is interpreted. Large byte
    and text constants in a stream cost nothing (they are skipped, not read), so this only
    matters when lowered."""
    max_opcodes: int = 10_000_000
    """Work the pickle interpreter may do per file, in opcodes, all pickle streams of the file
    together (concatenated, nested in archives, embedded, joblib object arrays). Steps that cost
    more than an opcode count more: an import counts 16 more, a callable classified for the
    first time 64 more, a constant examined as an embedded pickle 16 more. At roughly four
    million a second and under 100 bytes of interpreter state each, the default bounds a file
    to a few seconds and well under 1 GiB. Past it, a linear pass reports the imports of the
    rest of the stream."""
    max_pickle_streams: int = 100_000
    """Pickle streams interpreted per file, all together (concatenated pickles, embedded
    pickles, joblib object arrays). Past it, a linear pass reports the imports of the rest."""
    max_stack_depth: int = 10_000_000
    """Largest symbolic stack (and mark stack) a pickle may build. Each entry is one opcode's
    work, so ``max_opcodes`` bounds it as well; past it, a linear pass reports the imports of
    the rest of the stream."""
    max_memo_entries: int = 10_000_000
    """Largest memo a pickle may build (each entry takes an opcode, so ``max_opcodes`` bounds
    it as well). Past it, a linear pass reports the imports of the rest of the stream."""
    max_nested_depth: int = 32
    """How deep archives, compressed streams and embedded pickles are followed. The content
    of a buffer that is not followed is still searched for imports in pickle-looking regions
    (up to ``max_embedded_scan_bytes`` of it)."""
    max_members: int = 100_000
    """Archive members read per archive (and tensors listed per safetensors header or GGUF
    tensor table)."""
    max_decompressed_bytes: int = 4 * _GIB
    """Total bytes that decompression may produce for one file, every compressed stream and
    archive member in it together (a gzip in a zip in a gzip shares this one budget).
    Inflated data beyond a small in-memory window goes to an anonymous temporary file that is
    memory-mapped, so memory stays bounded whatever this is set to."""
    max_compression_ratio: int = 1_000
    """Inflated/compressed ratio above which a stream is treated as a bomb, once its output
    passes ``ratio_check_min_bytes``."""
    ratio_check_min_bytes: int = 16 * _MIB
    """Output size from which the ratio check applies. Below it, highly compressible real data
    (an all-zero array inflates about 1,000 times under deflate) is never called a bomb."""
    max_seconds_per_file: float = 120.0
    """Wall-clock budget per top-level file; past it the analysis stops with a finding."""
    max_attributes: int = 10_000
    """HDF5 attributes read per file (Keras writes a few per layer); past it the file is
    reported as not fully analysed. Objects (groups, datasets, links) count against
    ``max_members``."""
    reader_memory_bytes: int = 1 * _GIB
    """Address space (``RLIMIT_AS``) of the child process in which the HDF5 library reads a
    file's structure; a file that needs more is reported as not analysed."""
    max_embedded_scan_bytes: int = 64 * _MIB
    """Largest byte or text constant inside a pickle that is examined as an embedded payload;
    also how much of a buffer beyond ``max_nested_depth`` is searched for imports."""
    max_document_bytes: int = 64 * _MIB
    """Largest text document read whole: requirement and lock files, advisories, manifests,
    API responses."""
    max_template_bytes: int = 1 * _MIB
    """Largest Jinja template parsed into a syntax tree (published chat templates are under 64
    KiB); a larger one is searched as text for sandbox-escape names and reported as not fully
    analysed."""
    max_source_bytes: int = 4 * _MIB
    """Largest Python source parsed into a syntax tree (a ``modeling_*.py``, a ``.pth`` file,
    MLflow ``code/``): parsing takes tens of times the source's size in memory, and published
    model code is well under 1 MiB. A larger file is reported as not analysed."""
    max_document_values: int = 4_000_000
    """Values (strings, numbers, objects, lists) parsed from one JSON document or safetensors
    header, estimated from its commas before parsing: Python objects cost far more memory than
    their text (a 256k-token ``tokenizer.json`` holds about 1 million). Also the nodes read
    from one YAML text, and the nodes a YAML document may expand to through its aliases before
    it is reported as an alias bomb (``YAML-ALIAS-EXPANSION``)."""
    max_structure_depth: int = 100
    """Deepest nesting followed inside one document: JSON objects and lists, YAML collections,
    ONNX subgraphs, GGUF arrays of arrays. ONNX Runtime's protobuf parser itself stops at 100
    levels."""
    verify_load_seconds: float = 300.0
    """``scan --verify-load``: wall-clock budget of the child process that loads one file
    through the restricted loader; past it the child is killed and the file gets an error."""
    verify_load_memory_bytes: int = 16 * _GIB
    """``scan --verify-load``: address space (``RLIMIT_AS``) of that child process; a load that
    needs more fails with an error record, never a pass."""
    max_manifest_bytes: int = 16 * _MIB
    """Largest dependency manifest parsed as a structured document (a lock file,
    ``pyproject.toml``, a conda or MLflow YAML file, a JSON config): parsing one takes ten to
    twenty times its size in memory. Requirements files are read line by line instead, bounded
    by ``max_document_bytes``."""
    max_input_entries: int = 100_000
    """Entries read from one audit input (requirement lines, lock-file packages, installed
    distributions); past it the rest of the input is not read, and the input is not fully
    analysed."""
    max_download_bytes: int = 64 * _GIB
    """``scan hf://...``: bytes a remote model's files may total; past it nothing is downloaded
    and the scan stops with an error (name a folder or file of the repository, or raise it)."""
    max_download_files: int = 10_000
    """``scan hf://...``: files fetched from one remote model; past it nothing is downloaded
    and the scan stops with an error."""

    def __post_init__(self) -> None:
        """Reject non-positive values (never with ``assert``, which vanishes under ``-O``)."""
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"limit '{name}' must be a positive number, got {value!r}")

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> Limits:
        """Build limits from a policy file's ``[limits]`` table; unknown keys are errors."""
        known = cls.__struct_fields__
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"unknown limit(s): {', '.join(unknown)}; known: {', '.join(known)}")
        return cls(**data)
