"""Data formats recognised by structure: MessagePack (Flax checkpoints) and SentencePiece
tokenizer models. Real files are recognised and complete; damaged ones are not analysed fully;
random bytes that merely start like them stay unrecognised."""

from __future__ import annotations

import io
import random
import struct
from pathlib import Path

import pytest

from modelshield.core.policy import Policy
from modelshield.scanner.engine import scan_file

msgpack = pytest.importorskip("msgpack")
spm = pytest.importorskip("sentencepiece")


def _scan(tmp_path: Path, name: str, data: bytes) -> tuple[str, str, list[str]]:
    path = tmp_path / name
    path.write_bytes(data)
    result = scan_file(str(path), Policy())
    assert not result.errors
    return result.format, result.status, [f.rule_id for f in result.findings]


def _flax_ext(obj: object) -> object:
    """Flax's msgpack ext packing of ndarrays (type 1) and scalars (type 3)."""
    if isinstance(obj, list) and obj and isinstance(obj[0], float):
        raw = struct.pack(f"<{len(obj)}f", *obj)
        return msgpack.ExtType(1, msgpack.packb(((len(obj),), b"float32", raw)))
    return obj


def _flax_checkpoint() -> bytes:
    params = {
        "params": {
            "dense": {"kernel": [0.5] * 64, "bias": [0.0] * 8},
            "embed": {"embedding": [1.0] * 128},
        },
        "step": msgpack.ExtType(3, msgpack.packb((b"int32", struct.pack("<i", 7)))),
    }
    return msgpack.packb(params, default=_flax_ext)


def test_a_flax_style_checkpoint_is_msgpack_and_complete(tmp_path: Path) -> None:
    assert _scan(tmp_path, "flax_model.msgpack", _flax_checkpoint()) == (
        "msgpack",
        "complete",
        [],
    )


def test_a_truncated_checkpoint_is_not_recognised_as_complete(tmp_path: Path) -> None:
    data = _flax_checkpoint()
    fmt, status, rules = _scan(tmp_path, "flax_model.msgpack", data[: len(data) // 2])
    assert status == "incomplete", (fmt, rules)


def test_other_ext_types_are_recorded(tmp_path: Path) -> None:
    data = msgpack.packb({"a": msgpack.ExtType(42, b"xyz")})
    path = tmp_path / "x.msgpack"
    path.write_bytes(data)
    result = scan_file(str(path), Policy())
    assert result.format == "msgpack"
    assert result.metadata["msgpack_ext_types"] == "42"


def test_a_msgpack_bomb_header_is_bounded(tmp_path: Path) -> None:
    # A map claiming 2**32-1 pairs in a few bytes: refused before anything is allocated.
    fmt, status, _ = _scan(tmp_path, "x.msgpack", b"\xdf\xff\xff\xff\xff\xa1k\x01")
    assert (fmt, status) == ("unknown", "incomplete")
    deep = b"\x81\xa1k" * 100_000 + b"\xc0"
    fmt, status, _ = _scan(tmp_path, "deep.msgpack", deep)
    assert status == "incomplete"


def _sentencepiece_model() -> bytes:
    rng = random.Random(0)
    words = ["model", "scanner", "pickle", "tensor", "weights", "layer", "token", "audit"]
    text = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(300)]
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text), model_writer=buf, vocab_size=30, minloglevel=3
    )
    return buf.getvalue()


def test_a_real_sentencepiece_model_is_recognised_and_complete(tmp_path: Path) -> None:
    data = _sentencepiece_model()
    assert _scan(tmp_path, "tokenizer.model", data) == ("sentencepiece", "complete", [])


def test_a_damaged_sentencepiece_model_is_not_analysed_fully(tmp_path: Path) -> None:
    data = bytearray(_sentencepiece_model())
    data[100:300] = random.Random(1).randbytes(200)  # inside the pieces
    fmt, status, rules = _scan(tmp_path, "tokenizer.model", bytes(data))
    assert status == "incomplete", (fmt, rules)


@pytest.mark.parametrize("first", [b"\x0a", b"\x81", b"\xde"])
def test_random_bytes_that_start_like_them_stay_unrecognised(tmp_path: Path, first: bytes) -> None:
    rng = random.Random(first[0])
    data = first + bytes(rng.getrandbits(8) for _ in range(4000))
    fmt, status, rules = _scan(tmp_path, "blob.dat", data)
    assert (fmt, status) == ("unknown", "incomplete")
    assert rules == ["SCAN-UNRECOGNISED"]
