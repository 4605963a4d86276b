"""Interoperability with OpenSSF model signing, checked against the model-signing package."""

from __future__ import annotations

import base64
import importlib
import json
from pathlib import Path
from typing import Any

import pytest

from modelshield.core.errors import ConfigError, MissingExtraError
from modelshield.core.findings import Severity
from modelshield.integrity.manifest import create_manifest
from modelshield.integrity.model_signing import (
    sign_model,
    signing_available,
    verify_signature,
)
from tests.integrity.conftest import CHUNK, KeyPair, by_rule, make_key_pair

needs_model_signing = pytest.mark.skipif(
    not signing_available(),
    reason="model-signing is not installed (pip install 'modelshield[signing]')",
)


@pytest.fixture
def keys(tmp_path: Path) -> KeyPair:
    keydir = tmp_path / "keys"
    keydir.mkdir()
    return make_key_pair(keydir)


def their_hashing(method: str, shard_size: int = CHUNK, ignore: tuple[str, ...] = ()) -> Any:
    import model_signing

    config = model_signing.hashing.Config()
    if method == "shards":
        config.use_shard_serialization(shard_size=shard_size)
    return config.set_ignored_paths(paths=list(ignore))


def statement(signature: Path) -> dict[str, Any]:
    bundle = json.loads(signature.read_text())
    payload: dict[str, Any] = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    return payload


# ---- modelshield signs, model-signing verifies ------------------------------------------------


@needs_model_signing
@pytest.mark.parametrize("algorithm", ["sha256", "blake3"])
def test_model_signing_verifies_our_file_signatures(
    model_dir: Path, keys: KeyPair, algorithm: str
) -> None:
    import model_signing

    outcome = sign_model(model_dir, keys.private, algorithm=algorithm)  # type: ignore[arg-type]
    sig = Path(outcome.signature)
    assert sig == model_dir / "model.sig"
    assert outcome.resources == 4
    # No hashing configuration given: model-signing reads it from the signature.
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=keys.public).verify(
        model_dir, sig
    )
    # ...and it detects a change we did not sign.
    (model_dir / "config.json").write_text('{"hidden_size": 99}')
    with pytest.raises(ValueError, match=r"config\.json"):
        model_signing.verifying.Config().use_elliptic_key_verifier(public_key=keys.public).verify(
            model_dir, sig
        )


@needs_model_signing
def test_model_signing_verifies_our_shard_signatures(model_dir: Path, keys: KeyPair) -> None:
    import model_signing

    outcome = sign_model(model_dir, keys.private, method="shards", shard_size=CHUNK)
    sig = Path(outcome.signature)
    assert outcome.resources > 4  # weights.npy spans several shards
    # model-signing 1.1.1 reads shard_size back from the signature as a float and cannot
    # re-hash with it, so its verifier needs the shard configuration spelled out.
    config = their_hashing("shards", ignore=("model.sig",))
    model_signing.verifying.Config().use_elliptic_key_verifier(
        public_key=keys.public
    ).set_hashing_config(config).verify(model_dir, sig)


@needs_model_signing
def test_our_manifest_digest_is_the_shard_signature_subject(
    model_dir: Path, keys: KeyPair, tmp_path: Path
) -> None:
    import model_signing

    sig = tmp_path / "theirs.sig"
    model_signing.signing.Config().use_elliptic_key_signer(
        private_key=keys.private
    ).set_hashing_config(their_hashing("shards")).sign(model_dir, sig)
    subject = statement(sig)["subject"][0]["digest"]["sha256"]
    ours = create_manifest(model_dir, chunk_size=CHUNK).manifest
    assert ours.digest == subject


# ---- model-signing signs, modelshield verifies ------------------------------------------------


@needs_model_signing
@pytest.mark.parametrize("method", ["files", "shards"])
def test_we_verify_model_signing_signatures(
    model_dir: Path, keys: KeyPair, tmp_path: Path, method: str
) -> None:
    import model_signing

    sig = tmp_path / f"{method}.sig"
    model_signing.signing.Config().use_elliptic_key_signer(
        private_key=keys.private
    ).set_hashing_config(their_hashing(method)).sign(model_dir, sig)

    report = verify_signature(model_dir, sig, keys.public)
    assert not report.findings and not report.errors
    assert report.results[0].path == str(sig)
    assert report.results[0].metadata["serialization"] == method
    assert len(report.results) == 1 + 4

    weights = model_dir / "weights.npy"
    data = bytearray(weights.read_bytes())
    data[CHUNK + 5] ^= 1
    weights.write_bytes(bytes(data))
    (model_dir / "model.pt").unlink()
    (model_dir / "extra.py").write_text("import os\n")
    report = verify_signature(model_dir, sig, keys.public)
    assert by_rule(report) == [
        ("MANIFEST-FILE-ADDED", "extra.py"),
        ("MANIFEST-FILE-MODIFIED", "weights.npy"),
        ("MANIFEST-FILE-REMOVED", "model.pt"),
    ]


@needs_model_signing
def test_single_file_signatures_round_trip(model_dir: Path, keys: KeyPair, tmp_path: Path) -> None:
    import model_signing

    model = model_dir / "model.pt"
    theirs = tmp_path / "theirs.sig"
    model_signing.signing.Config().use_elliptic_key_signer(private_key=keys.private).sign(
        model, theirs
    )
    report = verify_signature(model, theirs, keys.public)
    assert not report.findings and not report.errors
    ours = sign_model(model, keys.private, tmp_path / "ours.sig")
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=keys.public).verify(
        model, ours.signature
    )


@needs_model_signing
def test_a_signature_by_another_key_is_invalid(
    model_dir: Path, keys: KeyPair, tmp_path: Path
) -> None:
    outcome = sign_model(model_dir, keys.private)
    other = make_key_pair(tmp_path, "other")
    report = verify_signature(model_dir, outcome.signature, other.public)
    assert [f.rule_id for f in report.findings] == ["SIGNATURE-INVALID"]
    assert report.findings[0].severity is Severity.CRITICAL
    assert len(report.results) == 1  # the model is not compared with an untrusted signature


@needs_model_signing
def test_an_edited_payload_is_invalid(model_dir: Path, keys: KeyPair) -> None:
    sig = Path(sign_model(model_dir, keys.private).signature)
    bundle = json.loads(sig.read_text())
    payload = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    payload["predicate"]["resources"][0]["digest"] = "0" * 64
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    sig.write_text(json.dumps(bundle))
    report = verify_signature(model_dir, sig, keys.public)
    assert [f.rule_id for f in report.findings] == ["SIGNATURE-INVALID"]


@needs_model_signing
@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"not json at all", b'{"mediaType": 1}', b"\x00\xff" * 50, b"[]"],
    ids=["empty", "brace", "text", "wrong-types", "binary", "array"],
)
def test_garbage_signatures_are_invalid_not_crashes(
    model_dir: Path,
    keys: KeyPair,
    tmp_path: Path,
    content: bytes,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sig = tmp_path / "bad.sig"
    sig.write_bytes(content)
    report = verify_signature(model_dir, sig, keys.public)
    assert [f.rule_id for f in report.findings] == ["SIGNATURE-INVALID"]
    assert capsys.readouterr().out == ""  # library code never prints


@needs_model_signing
def test_a_missing_signature_is_invalid(model_dir: Path, keys: KeyPair, tmp_path: Path) -> None:
    report = verify_signature(model_dir, tmp_path / "nope.sig", keys.public)
    assert [f.rule_id for f in report.findings] == ["SIGNATURE-INVALID"]


@needs_model_signing
def test_bad_keys_are_usage_errors(model_dir: Path, keys: KeyPair, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    with pytest.raises(ConfigError, match="private key"):
        sign_model(model_dir, junk)
    sig = sign_model(model_dir, keys.private).signature
    with pytest.raises(ConfigError, match="public key"):
        verify_signature(model_dir, sig, junk)


@needs_model_signing
def test_symlinks_cannot_be_signed(model_dir: Path, keys: KeyPair) -> None:
    (model_dir / "latest").symlink_to("model.pt")
    with pytest.raises(ConfigError, match="latest"):
        sign_model(model_dir, keys.private)


def test_without_the_package_a_missing_extra_error_names_the_extra(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = importlib.import_module

    def no_model_signing(name: str, package: str | None = None) -> Any:
        if name.startswith("model_signing"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", no_model_signing)
    with pytest.raises(MissingExtraError) as info:
        sign_model(model_dir, tmp_path / "key.pem")
    assert (info.value.extra, info.value.package) == ("signing", "model-signing")
    assert "pip install 'modelshield[signing]'" in info.value.diagnostics()
    assert not signing_available()
