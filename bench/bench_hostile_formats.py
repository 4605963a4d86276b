#!/usr/bin/env python3
"""Hostile safetensors, GGUF, ONNX, JSON and template files: time and peak memory of a scan.

Each case is a small file built byte by byte that claims absurd sizes, counts or nesting. Each
is scanned by ``modelshield scan --format json`` in its own process (interpreter start-up
included), and the table shows the wall time, the peak resident memory (max RSS) of that
process, the exit code and the rules reported. The goal: every case ends in well under 10 s
and 500 MB with a finding, never a crash or a clean pass (exit 0).

    python bench/bench_hostile_formats.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def safetensors_2_63() -> bytes:
    return struct.pack("<Q", 2**63) + b'{"a": {"dtype": "F32"}}'


def gguf_counts_2_63() -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, 2**63, 2**63) + b"\0" * 64


def gguf_array_2_63() -> bytes:
    kv = struct.pack("<Q", 21) + b"tokenizer.ggml.tokens" + struct.pack("<IIQ", 9, 8, 2**63)
    return b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + kv + b"\0" * 64


def _gguf_template(template: str) -> bytes:
    raw = template.encode()
    kv = struct.pack("<Q", 23) + b"tokenizer.chat_template" + struct.pack("<IQ", 8, len(raw)) + raw
    return b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + kv


_PAYLOAD = "{{ cycler.__init__.__globals__.os.popen('id').read() }}"


def template_4mb_gguf() -> bytes:
    return _gguf_template("{% for m in messages %}{{ m.content }}{% endfor %}" * 80_000 + _PAYLOAD)


def template_4mb_json() -> bytes:
    text = "{{ messages }}" + "A" * 4_000_000 + _PAYLOAD
    return json.dumps({"chat_template": text}).encode()


def json_million_deep() -> bytes:
    return b"[" * 1_000_000 + b"]" * 1_000_000


def onnx_absurd_varint() -> bytes:
    return b"\x08\x08\x12\x07hostile" + b"\x3a" + b"\xff" * 1000


def onnx_length_2_62() -> bytes:
    return b"\x08\x08\x12\x07hostile" + b"\x3a" + _varint(2**62) + b"\x0a"


def onnx_50k_subgraphs() -> bytes:
    core = b"\x0a\x0a\x22\x04Exec\x3a\x02ev"  # node { op_type: "Exec" domain: "ev" }
    sizes = [len(core)]
    for _ in range(50_000):
        attribute = 1 + len(_varint(sizes[-1])) + sizes[-1]
        node = 1 + len(_varint(attribute)) + attribute
        sizes.append(1 + len(_varint(node)) + node)
    out = bytearray(b"\x08\x08\x12\x07hostile\x3a" + _varint(sizes[-1]))
    for size in reversed(sizes[:-1]):
        attribute = 1 + len(_varint(size)) + size
        node = 1 + len(_varint(attribute)) + attribute
        out += b"\x0a" + _varint(node) + b"\x2a" + _varint(attribute) + b"\x32" + _varint(size)
    return bytes(out + core)


CASES: dict[str, tuple[str, Callable[[], bytes]]] = {
    "safetensors header length 2**63": ("st.safetensors", safetensors_2_63),
    "GGUF tensor and key/value counts 2**63": ("counts.gguf", gguf_counts_2_63),
    "GGUF string array of 2**63 elements": ("array.gguf", gguf_array_2_63),
    "GGUF 4 MB chat template": ("template.gguf", template_4mb_gguf),
    "tokenizer_config.json with a 4 MB chat template": ("tokenizer_config.json", template_4mb_json),
    "JSON nested a million deep": ("deep.json", json_million_deep),
    "ONNX varint of 1000 bytes": ("varint.onnx", onnx_absurd_varint),
    "ONNX field length 2**62": ("length.onnx", onnx_length_2_62),
    "ONNX 50,000 nested subgraphs": ("nested.onnx", onnx_50k_subgraphs),
}


def run(path: Path) -> tuple[float, int, int, list[str]]:
    """Scan ``path`` in a child process: wall seconds, max RSS bytes, exit code, rule ids."""
    command = [sys.executable, "-m", "modelshield", "scan", "--format", "json", str(path)]
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    code = os.waitstatus_to_exitcode(status)
    rules: list[str] = []
    try:
        report = json.loads(out)
        rules = sorted({f["rule_id"] for r in report["results"] for f in r["findings"]})
    except (ValueError, KeyError):
        rules = ["<no JSON report>"]
    return wall, usage.ru_maxrss * 1024, code, rules


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="keep the generated files here")
    args = parser.parse_args()
    folder = args.out or Path(tempfile.mkdtemp(prefix="hostile-formats-"))
    folder.mkdir(parents=True, exist_ok=True)
    print("| case | size | wall s | max RSS MB | exit | rules |\n|---|---|---|---|---|---|")
    worst = 0
    for label, (name, build) in CASES.items():
        path = folder / name
        path.write_bytes(build())
        wall, rss, code, rules = run(path)
        size = path.stat().st_size
        print(
            f"| {label} | {size:,} | {wall:.2f} | {rss / 2**20:.0f} | {code} | {', '.join(rules)} |"
        )
        worst = max(worst, int(code == 0 or not rules))
    return worst


if __name__ == "__main__":
    raise SystemExit(main())
