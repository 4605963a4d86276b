"""The library side of remote models: references, the file selection, ``download``."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelshield.cli import main
from modelshield.core.errors import ConfigError, ServiceError
from modelshield.core.limits import Limits
from modelshield.core.policy import Policy
from modelshield.scanner.engine import scan_paths
from modelshield.scanner.remote import (
    NOT_READ_BY_LOADERS,
    RemoteRef,
    download,
    is_left_out,
    oversized_results,
    parse_remote,
    select,
)
from tests.scanner.remote.conftest import BIG, HOSTILE, HOSTILE_SCANNED
from tests.scanner.remote.hub_server import HubServer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hf://acme/model", RemoteRef("acme/model")),
        ("hf://acme/model@v1.0", RemoteRef("acme/model", "v1.0")),
        ("hf://acme/model@main/unet", RemoteRef("acme/model", "main", "unet")),
        ("hf://acme/model/unet/config.json", RemoteRef("acme/model", None, "unet/config.json")),
        ("hf://acme/model@refs/pr/3", RemoteRef("acme/model", "refs/pr/3")),
        ("hf://acme/model@refs/pr/3/a.bin", RemoteRef("acme/model", "refs/pr/3", "a.bin")),
        ("hf://acme/model@refs%2Fpr%2F3", RemoteRef("acme/model", "refs/pr/3")),
        ("hf://gpt2", RemoteRef("gpt2")),
        ("hf://gpt2@main", RemoteRef("gpt2", "main")),
        ("https://huggingface.co/acme/model", RemoteRef("acme/model")),
        ("https://huggingface.co/acme/model/", RemoteRef("acme/model")),
        ("https://hf.co/acme/model/tree/v2", RemoteRef("acme/model", "v2")),
        (
            "https://huggingface.co/acme/model/tree/main/unet",
            RemoteRef("acme/model", "main", "unet"),
        ),
        (
            "https://huggingface.co/acme/model/tree/refs%2Fpr%2F7/text_encoder",
            RemoteRef("acme/model", "refs/pr/7", "text_encoder"),
        ),
        (
            "https://huggingface.co/acme/model/blob/abc123/pytorch_model.bin",
            RemoteRef("acme/model", "abc123", "pytorch_model.bin"),
        ),
        (
            "https://huggingface.co/acme/model/resolve/main/sub/model.pt?download=true",
            RemoteRef("acme/model", "main", "sub/model.pt"),
        ),
        ("models/acme/model.pt", None),
        ("./hf/acme", None),
    ],
)
def test_references(text: str, expected: RemoteRef | None) -> None:
    assert parse_remote(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hf://", "no repository named"),
        ("hf://datasets/acme/data", "only model repositories"),
        ("https://huggingface.co/spaces/acme/demo", "only model repositories"),
        ("hf://acme/model@", "no revision"),
        ("hf://acme/model@main/../../etc", "not a path inside the repository"),
        ("hf://acme/mo del", "not a repository name"),
        ("https://huggingface.co/acme/model/commits/main", "not a repository, folder or file"),
        ("https://huggingface.co/acme/model/tree", "not a repository, folder or file"),
        ("s3://bucket/model.pt", "only Hugging Face model references"),
        ("https://example.com/acme/model", "only Hugging Face model references"),
    ],
)
def test_bad_references_are_configuration_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_remote(text)


def test_a_url_of_the_configured_endpoint_is_a_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "https://mirror.example/hub")
    assert parse_remote("https://mirror.example/hub/acme/model/tree/v1") == RemoteRef(
        "acme/model", "v1"
    )


def test_display_round_trips() -> None:
    for ref in (RemoteRef("acme/m"), RemoteRef("acme/m", "refs/pr/1", "a/b.bin")):
        assert parse_remote(ref.display()) == ref


# ---- selection ------------------------------------------------------------------------------


def test_what_is_left_out_is_what_no_loader_reads() -> None:
    kept = [n for n in HOSTILE if not is_left_out(n)]
    assert set(kept) == HOSTILE_SCANNED
    # Weights, configs, code and tokenizers of every kind are kept, whatever their name.
    for name in (
        "model.safetensors",
        "pytorch_model-00001-of-00002.bin",
        "tf_model.h5",
        "flax_model.msgpack",
        "model.onnx_data",
        "weights.pdparams",
        "spiece.model",
        "chat_template.jinja",
        "hparams.yaml",
        "MLmodel",
        "unet/diffusion_pytorch_model.fp16.safetensors",
        "LICENSE",
    ):
        assert not is_left_out(name), name
    assert all(pattern.count("*") <= 1 for pattern in NOT_READ_BY_LOADERS)


def test_select_splits_and_checks_limits() -> None:
    listing = [("a.bin", 10), ("README.md", 5), ("big.bin", 100), ("sub/c.json", 2)]
    chosen, left_out, oversized = select(listing, "", Limits(max_file_bytes=50), "hf://x/y")
    assert chosen == [("a.bin", 10), ("sub/c.json", 2)]
    assert left_out == ["README.md"] and oversized == [("big.bin", 100)]
    assert select(listing, "sub", Limits(), "hf://x/y")[0] == [("sub/c.json", 2)]
    assert select(listing, "README.md", Limits(), "hf://x/y")[0] == [("README.md", 5)]
    with pytest.raises(ConfigError, match="max_download_bytes"):
        select(listing, "", Limits(max_download_bytes=100), "hf://x/y")
    with pytest.raises(ConfigError, match="max_download_files"):
        select(listing, "", Limits(max_download_files=2), "hf://x/y")
    with pytest.raises(ConfigError, match="no file or folder 'su'"):
        select(listing, "su", Limits(), "hf://x/y")


# ---- download -------------------------------------------------------------------------------


def test_download_then_scan(hub: HubServer, tmp_path: Path) -> None:
    ref = RemoteRef("acme/hostile")
    snapshot = download(ref, Limits(), cache_dir=tmp_path, endpoint=hub.url)
    assert snapshot.commit == hub.repos["acme/hostile"].refs["main"]
    assert set(snapshot.files) == HOSTILE_SCANNED
    assert snapshot.size == sum(len(HOSTILE[n]) for n in HOSTILE_SCANNED)
    assert set(snapshot.left_out) == set(HOSTILE) - HOSTILE_SCANNED
    assert snapshot.target == snapshot.root and Path(snapshot.root).is_dir()
    report = scan_paths([snapshot.target])
    assert len(report.results) == len(HOSTILE_SCANNED)
    assert report.repositories[0].layouts == ("huggingface",)


def test_download_of_oversized_files_only(hub: HubServer, tmp_path: Path) -> None:
    limits = Limits(max_file_bytes=2048)
    ref = RemoteRef("acme/big", None, "model.pkl")
    snapshot = download(ref, limits, cache_dir=tmp_path, endpoint=hub.url)
    assert snapshot.target == "" and snapshot.files == ()
    [result] = oversized_results(snapshot, limits)
    assert result.skipped and result.size == len(BIG["model.pkl"])
    assert [f.rule_id for f in result.findings] == ["SCAN-FILE-TOO-LARGE"]


def test_a_repository_of_nothing_loaders_read_is_an_error(hub: HubServer, tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="no file to scan"):
        download(
            RemoteRef("acme/hostile", None, "docs"), Limits(), cache_dir=tmp_path, endpoint=hub.url
        )


def test_the_command_line_in_process(
    hub: HubServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The CLI's remote path in this process (the subprocess tests cannot measure coverage);
    the library is pointed at the local hub through ``download``'s arguments, never through its
    import-time settings (which could reach the internet if they were missed)."""
    from modelshield.scanner import remote

    real = remote.download

    def local_hub(ref: RemoteRef, limits: Limits, **kwargs: object) -> remote.Snapshot:
        return real(ref, limits, cache_dir=tmp_path / "cache", endpoint=hub.url)

    monkeypatch.setattr(remote, "download", local_hub)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "modelshield.toml").write_text("[limits]\nmax_file_bytes = 2048\n")
    assert main(["scan", "hf://acme/big"]) == 1
    err = capsys.readouterr().err
    assert "hf://acme/big: commit" in err and "1 too large" in err
    assert main(["scan", "--quiet", "hf://acme/hostile@v1"]) == 0
    assert capsys.readouterr().err == ""
    assert Policy().limits.max_download_bytes == 64 * 2**30
