"""Buffers too large to copy are read through a view of the memory-mapped file.

The same analysis must come out, and no view may outlive it (a leaked view would keep the
engine from closing the file's memory map).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import pytest

from modelshield.core.policy import Policy
from modelshield.scanner.engine import scan_file
from modelshield.scanner.pickle import analyzer
from tests.scanner.pickle import hostile
from tests.scanner.pickle.helpers import analyze

SAMPLES = {
    "memo_decoy": hostile.memo_decoy_stack_global(),
    "truncated": hostile.nullifai_truncated(),
    "junk": hostile.junk_after_stop(),
    "embedded": hostile.embedded_base64(hostile.reduce_call("os", "system", "id", proto=4)),
    "large_constants": pickle.dumps(["t" * 10_000, b"b" * 10_000, 10**5000], protocol=4),
    "state_write": hostile.module_state_override(),
}


def _summary(data: bytes) -> list[tuple[str, str, tuple[str, ...], int | None]]:
    return [
        (f.rule_id, f.evidence.get("callable", ""), f.location.members, f.location.offset)
        for f in analyze(data).findings
    ]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_view_path_finds_the_same(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    copied = _summary(SAMPLES[name])
    monkeypatch.setattr(analyzer, "COPY_BELOW", 0)
    assert _summary(SAMPLES[name]) == copied


def test_memory_mapped_files_close_after_analysis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.save({"w": torch.ones(64)}, buf, _use_new_zipfile_serialization=False)
    files = {"legacy.pt": buf.getvalue(), **{f"{k}.pkl": v for k, v in SAMPLES.items()}}
    monkeypatch.setattr(analyzer, "COPY_BELOW", 0)
    for name, data in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        result = scan_file(str(path), Policy())
        assert result.errors == (), (name, result.errors)
        assert result.format in ("pickle", "pytorch-legacy"), name
