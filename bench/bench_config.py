#!/usr/bin/env python3
"""Configuration that runs code: modelshield beside the other scanners, file by file.

Builds the labelled set of ``bench/config_samples.py`` (YAML object tags in every form PyYAML
resolves, Hydra targets loose, in a ``.nemo`` archive, in ``config.json`` and in safetensors
metadata, jsonpickle, skops; and benign files from the real writers) under
``bench-out/config/``, scans each file with each tool in its own process, and prints one row
per file and a summary. "Flagged" is each tool's own criterion, as in ``bench_scan.py``
(modelshield: a finding at high or above; the default medium threshold in brackets).

    python bench/bench_config.py [--tools-bin .venv-bench/bin] [--jobs 2]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_scan  # noqa: E402  (a sibling script)
import config_samples  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Build the set, scan it with every tool found, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tools-bin", type=Path, default=bench_scan.REPO / ".venv-bench" / "bin")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    samples = config_samples.build(bench_scan.OUT / "config")
    tools = bench_scan.all_tools(args.tools_bin)
    verdicts: dict[str, list[bench_scan.Verdict]] = {}
    paths = [str(path) for path, _ in samples]
    for tool in tools:
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            runs = list(pool.map(bench_scan.run_one, [tool] * len(paths), paths))
        verdicts[tool.name] = [verdict for _, verdict in runs]
    names = [t.name for t in tools]
    first = max(len(p.name) for p, _ in samples) + 12
    print("file".ljust(first) + "  ".join(n.rjust(max(len(n), 9)) for n in names))
    for index, (path, label) in enumerate(samples):
        cells = []
        for name in names:
            v = verdicts[name][index]
            text = "flagged" if v.flagged else ("medium" if v.flagged_medium else "-")
            text += " (error)" if v.error else ""
            cells.append(text.rjust(max(len(name), 9)))
        print(f"{label[:3]} {path.name}".ljust(first) + "  ".join(cells))
    print()
    for label in ("malicious", "benign"):
        picked = [i for i, (_, lab) in enumerate(samples) if lab == label]
        summary = []
        for name in names:
            flagged = sum(1 for i in picked if verdicts[name][i].flagged)
            medium = sum(1 for i in picked if verdicts[name][i].flagged_medium)
            extra = f" [{medium} at medium]" if name.startswith("modelshield") else ""
            summary.append(f"{name}: {flagged}/{len(picked)}{extra}")
        print(f"{label} flagged: " + "; ".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
