"""The HTML report in a real browser: headless Chromium, with every host name unresolvable,
renders the page (the verdict badge and severity tiles painted in their colours) and shows
the findings; the page asks for nothing from elsewhere.

Needs Debian's ``chromium`` (``.ci/run`` installs it when missing); skipped without it.
"""

from __future__ import annotations

import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from msgspec.structs import replace

from modelshield.core.findings import FileResult, Finding, Location, Severity
from modelshield.core.policy import Policy
from modelshield.report import Invocation, html
from tests.browser import CHROMIUM, NOT_INSTALLED
from tests.browser import chromium as run_chromium
from tests.report.conftest import build_report

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=NOT_INSTALLED)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_chromium(tmp_path / "profile", *args)


def pixels(png: bytes) -> set[tuple[int, int, int]]:
    """The colours of an 8-bit RGB or RGBA PNG (no library: the PNG filters by hand)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    channels = 3
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, _, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6) and body[12] == 0  # not interlaced
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    seen: set[tuple[int, int, int]] = set()
    for start in range(0, len(raw), stride + 1):
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + ((left + up) >> 1)) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[i] = (line[i] + pred) & 0xFF
        seen.update((line[i], line[i + 1], line[i + 2]) for i in range(0, stride, channels))
        previous = line
    return seen


def page(tmp_path: Path) -> Path:
    base = build_report()
    vulnerable = Finding(
        "AUDIT-VULNERABLE-DEPENDENCY",
        Severity.HIGH,
        "jinja2 2.4.1 is affected by PYSEC-2014-8",
        "Upgrade to 2.7.2 or later.",
        Location("requirements.txt"),
        evidence={"package": "jinja2", "line": "3"},
    )
    results = (
        *(replace(r, pillar="scan") for r in base.results),
        FileResult("requirements.txt", "requirements", findings=(vulnerable,), pillar="audit"),
    )
    report = replace(base, tool="ci", results=results)
    text = html.render(report, policy=Policy(), invocation=Invocation("modelshield.toml"))
    path = tmp_path / "report.html"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_page_asks_for_nothing_from_elsewhere(tmp_path: Path) -> None:
    text = page(tmp_path).read_text()
    for needle in ("<script", "<link", "<img", "<iframe", "src=", "@import", "url("):
        assert needle not in text, needle


def test_chromium_renders_the_report_offline_and_shows_the_findings(tmp_path: Path) -> None:
    url = page(tmp_path).as_uri()
    dom = chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<title>modelshield ci report: FAIL</title>" in dom.stdout
    for shown in (
        "Not fit to ship:",
        "Model scan: 4 findings",
        "Dependency audit: 1 finding",
        "EXAMPLE-CALL-DANGEROUS",
        "Pickle calls os.system",
        "models/checkpoint.pt › archive/data.pkl @ 17",
        "requirements.txt line 3",
        "unknown opcode 0xff",
    ):
        assert shown in dom.stdout, shown
    shot = tmp_path / "shot.png"
    done = chromium(tmp_path, f"--screenshot={shot}", "--window-size=900,260", url)
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    colours = pixels(shot.read_bytes())
    assert (0xDC, 0x26, 0x26) in colours  # the FAIL badge and the high tile
    assert (0x7F, 0x1D, 0x1D) in colours  # the critical tile
    assert len(colours) > 20  # text was drawn, not an empty page
