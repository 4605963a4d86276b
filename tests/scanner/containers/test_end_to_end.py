"""With the real pickle analyzer: a payload in any container is reported at its member."""

from __future__ import annotations

import bz2
import gzip
import io
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from modelshield.core.findings import Severity
from tests.scanner.containers.conftest import scan
from tests.scanner.containers.zipbuild import Entry, build_zip

PAYLOAD = (
    b"\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94"
    b"\x8c\x02id\x94\x85\x94R\x94."
)


def _zip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("model/weights.txt", data)
    return buf.getvalue()


def _tar(data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("model/weights.txt")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _npy(data: bytes) -> bytes:
    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + data


WRAPPERS: dict[str, tuple[Callable[[bytes], bytes], tuple[str, ...]]] = {
    "zip": (_zip, ("model/weights.txt",)),
    "tar": (_tar, ("model/weights.txt",)),
    "gzip": (gzip.compress, ("<gzip>",)),
    "tar.bz2": (lambda d: bz2.compress(_tar(d)), ("<bzip2>", "model/weights.txt")),
    "zip-in-zip": (lambda d: _zip(_zip(d)), ("model/weights.txt", "model/weights.txt")),
    "npy": (_npy, ("<object array>",)),
    "flag-0x1": (
        lambda d: build_zip([Entry.stored("archive/data.pkl", d, flags=1)]),
        ("archive/data.pkl",),
    ),
}


@pytest.mark.parametrize("wrapper", list(WRAPPERS))
def test_payload_is_reported_at_its_member(tmp_path: Path, wrapper: str) -> None:
    wrap, members = WRAPPERS[wrapper]
    path = tmp_path / "model.bin"
    path.write_bytes(wrap(PAYLOAD))
    result = scan(path)
    high = [f for f in result.findings if f.severity >= Severity.HIGH]
    assert high, [(f.rule_id, f.severity) for f in result.findings]
    assert any(f.location.members == members for f in high)
    assert "os:system" in result.imports or "posix:system" in result.imports


def test_torch_checkpoint_payload_in_data_pkl(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    clean = tmp_path / "clean.pt"
    torch.save({"w": torch.ones(2)}, clean)
    tampered = tmp_path / "tampered.pt"
    with zipfile.ZipFile(clean) as zin, zipfile.ZipFile(tampered, "w") as zout:
        for info in zin.infolist():
            data = PAYLOAD if info.filename.endswith("/data.pkl") else zin.read(info)
            zout.writestr(info, data)
    clean_result = scan(clean)
    assert clean_result.max_severity is None or clean_result.max_severity < Severity.MEDIUM
    result = scan(tampered)
    assert any(
        f.severity >= Severity.HIGH and f.location.members[-1].endswith("/data.pkl")
        for f in result.findings
    )
