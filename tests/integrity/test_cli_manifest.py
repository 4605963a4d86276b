"""``modelshield manifest create|verify|sign`` through the real command-line entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelshield.cli import main
from modelshield.cli.manifest import parse_size
from modelshield.integrity.manifest import DEFAULT_NAME
from modelshield.integrity.model_signing import signing_available
from tests.integrity.conftest import make_key_pair


def test_create_then_verify_clean_exits_0(
    model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["manifest", "create", str(model_dir), "--chunk-size", "64KiB"]) == 0
    assert (model_dir / DEFAULT_NAME).is_file()
    assert "4 files" in capsys.readouterr().out
    assert main(["manifest", "verify", str(model_dir), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["command"] == "manifest"
    assert doc["summary"]["findings"] == 0


def test_verify_reports_a_modification_and_exits_1(
    model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["manifest", "create", str(model_dir)]) == 0
    (model_dir / "config.json").write_text("{}")
    capsys.readouterr()
    assert main(["manifest", "verify", str(model_dir), "-f", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    rules = [f["rule_id"] for r in doc["results"] for f in r["findings"]]
    assert rules == ["MANIFEST-FILE-MODIFIED"]
    # The shared policy options apply: ignoring the rule makes the run pass.
    assert main(["manifest", "verify", str(model_dir), "--ignore", "MANIFEST-FILE-MODIFIED"]) == 0


def test_verify_report_to_a_file_is_announced_like_scan_and_audit(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["manifest", "create", str(model_dir)]) == 0
    capsys.readouterr()
    out = tmp_path / "verify.sarif"
    assert main(["manifest", "verify", str(model_dir), "-f", "sarif", "-o", str(out)]) == 0
    stdout, stderr = capsys.readouterr()
    assert stdout == ""
    assert f"report written to {out} (exit code 0)" in stderr
    assert json.loads(out.read_text())["version"] == "2.1.0"


def test_a_malformed_manifest_fails_without_a_traceback(
    model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (model_dir / DEFAULT_NAME).write_text('{"format": "modelshield.manifest", "files": [')
    assert main(["manifest", "verify", str(model_dir)]) == 1
    out, err = capsys.readouterr()
    assert "MANIFEST-INVALID" in out
    assert "Traceback" not in out + err


def test_create_with_an_unreadable_file_writes_nothing_and_exits_2(
    model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["manifest", "create", str(model_dir), "--policy", str(_policy(model_dir))]) == 2
    assert not (model_dir / DEFAULT_NAME).exists()
    assert "max_file_bytes" in capsys.readouterr().err


def _policy(model_dir: Path) -> Path:
    policy = model_dir.parent / "modelshield.toml"
    policy.write_text("[limits]\nmax_file_bytes = 1000\n")
    return policy


def test_signature_and_public_key_go_together(
    model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["manifest", "verify", str(model_dir), "--signature", "x.sig"]) == 2
    assert "--public-key" in capsys.readouterr().err


@pytest.mark.skipif(not signing_available(), reason="model-signing is not installed")
def test_sign_then_verify_the_signature(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = make_key_pair(tmp_path)
    assert main(["manifest", "sign", str(model_dir), "--key", str(keys.private)]) == 0
    sig = model_dir / "model.sig"
    assert sig.is_file()
    args = ["manifest", "verify", str(model_dir), "--signature", str(sig)]
    assert main([*args, "--public-key", str(keys.public)]) == 0
    (model_dir / "new.bin").write_bytes(b"x")
    capsys.readouterr()
    assert main([*args, "--public-key", str(keys.public), "-f", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [f["rule_id"] for r in doc["results"] for f in r["findings"]] == ["MANIFEST-FILE-ADDED"]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4096", 4096),
        ("64KiB", 65536),
        ("64MiB", 64 * 1024**2),
        ("1G", 10**9),
        ("2gib", 2 * 1024**3),
    ],
)
def test_sizes_parse(text: str, value: int) -> None:
    assert parse_size(text) == value


def test_a_bad_size_is_a_usage_error(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["manifest", "create", str(model_dir), "--chunk-size", "lots"])
    assert info.value.code == 2
    assert "not a size" in capsys.readouterr().err
