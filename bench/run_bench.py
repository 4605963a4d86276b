#!/usr/bin/env python3
"""Run every benchmark: the scan comparison table first, then each ``bench/bench_*.py``.

    python bench/run_bench.py [--tools-bin .venv-bench/bin] [bench_scan options]

Options are passed to ``bench_scan.py``; the other benchmarks run with no arguments, each in
its own process, with the interpreter running this script. Benchmarks print figures only.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIRST = "bench_scan.py"


def main(argv: list[str]) -> int:
    """Run the benchmarks; the exit code is the number of benchmarks that failed."""
    failed = 0
    scripts = sorted(HERE.glob("bench_*.py"), key=lambda p: (p.name != FIRST, p.name))
    for script in scripts:
        print(f"== {script.name}", flush=True)
        args = argv if script.name == FIRST else []
        proc = subprocess.run([sys.executable, str(script), *args], check=False)
        if proc.returncode != 0:
            print(f"{script.name} exited with {proc.returncode}", flush=True)
            failed += 1
        print(flush=True)
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
