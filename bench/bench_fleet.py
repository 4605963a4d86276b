#!/usr/bin/env python3
"""Fleet benchmark: files/s and GB/s of a scan of many files, serially, with worker processes,
and on a local Ray cluster (``scan --jobs N [--executor ray]``).

The fleet (``bench-out/fleet``, made once and reused) is 40 large pickles, 20 of NumPy arrays
(about 32 MiB each: the pickle machine skips their bytes) and 20 of Python objects (about
10 MiB each: lists of floats, integers and strings, so the machine works for every opcode),
and 2,000 small files (pickled parameter dictionaries, ``config.json`` and YAML files), about
1 GB in all. Each configuration scans it in this process with the engine's ``scan_paths``, the
whole call timed (worker start-up included), best of ``--rounds``; Ray's cluster is started
once before its rounds (its start-up is printed apart, as a cluster outlives one scan), with as
many CPUs as the workers. Every report is checked equal to the serial one first. Figures only:
nothing here passes or fails.

    python bench/bench_fleet.py [--rounds 3] [--workers 1 2] [--no-ray]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec
import numpy as np

from modelshield.core.findings import Report
from modelshield.core.policy import Policy
from modelshield.scanner.engine import scan_paths

REPO = Path(__file__).resolve().parents[1]
FLEET = REPO / "bench-out" / "fleet"
#: Bump when the fleet's content changes, so that an old one is built again.
FLEET_VERSION = "1"
ARRAY_PICKLES = 20
OBJECT_PICKLES = 20
SMALL_FILES = 2_000


def build_fleet(root: Path) -> list[Path]:
    """Write the fleet once (a marker file says it is complete); return its files."""
    marker = root.with_name(f"{root.name}.complete-v{FLEET_VERSION}")
    if not marker.is_file():
        rng = np.random.default_rng(19)
        large = root / "large"
        small = root / "small"
        large.mkdir(parents=True, exist_ok=True)
        small.mkdir(parents=True, exist_ok=True)
        for i in range(ARRAY_PICKLES):
            state = {f"layer{j}.weight": rng.random((1024, 1024)) for j in range(4)}
            (large / f"arrays-{i:02d}.pkl").write_bytes(pickle.dumps(state, protocol=4))
        for i in range(OBJECT_PICKLES):
            values = rng.random(300_000)
            state = {
                "floats": values.tolist(),
                "ints": (values * 1e6).astype(int).tolist(),
                "names": [f"feature_{j}" for j in range(60_000)],
            }
            (large / f"objects-{i:02d}.pkl").write_bytes(pickle.dumps(state, protocol=4))
        for i in range(SMALL_FILES):
            kind = i % 4
            if kind in (0, 1):
                params = {"C": float(i), "penalty": "l2", "classes": list(range(i % 10))}
                (small / f"params-{i:04d}.pkl").write_bytes(pickle.dumps(params, protocol=4))
            elif kind == 2:
                config = {"model_type": "bert", "hidden_size": 64 + i, "architectures": ["Bert"]}
                (small / f"config-{i:04d}.json").write_text(json.dumps(config))
            else:
                (small / f"train-{i:04d}.yaml").write_text(f"lr: 0.{i}\nepochs: {i % 7}\n")
        marker.write_text("")
    return sorted(p for p in root.rglob("*") if p.is_file())


def comparable(report: Report) -> tuple[object, ...]:
    """Everything a report says but how long it took."""
    return (
        [msgspec.structs.replace(r, duration_s=0.0) for r in report.results],
        report.repositories,
    )


def best_of(rounds: int, run: Callable[[], Report]) -> tuple[float, Report]:
    """The shortest wall time of ``rounds`` runs, and the last report."""
    best = float("inf")
    report = None
    for _ in range(rounds):
        started = time.perf_counter()
        report = run()
        best = min(best, time.perf_counter() - started)
    assert report is not None
    return best, report


def row(label: str, workers: int, wall: float, files: int, size: int, serial: float) -> str:
    return (
        f"| {label} | {workers} | {wall:.2f} | {files / wall:,.0f} | {size / wall / 1e9:.3f} "
        f"| {serial / wall:.2f}x |"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Build the fleet, time each configuration, print one table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray rows")
    args = parser.parse_args(argv)

    files = build_fleet(FLEET)
    size = sum(p.stat().st_size for p in files)
    inputs = [FLEET]  # one directory, as a registry would be scanned
    policy = Policy()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"fleet: {len(files)} files, {size / 1e9:.2f} GB ({ARRAY_PICKLES + OBJECT_PICKLES} large "
        f"pickles, {SMALL_FILES} small files) in {FLEET.relative_to(REPO)}; "
        f"{cpus} CPUs ({platform.processor() or platform.machine()}), Python "
        f"{platform.python_version()}; best of {args.rounds}"
    )
    print()
    print("| executor | workers | wall s | files/s | GB/s | speed-up |")
    print("|---|---|---|---|---|---|")
    serial_wall, serial = best_of(args.rounds, lambda: scan_paths(inputs, policy))
    reference = comparable(serial)
    print(row("engine, serial (this process)", 1, serial_wall, len(files), size, serial_wall))
    for workers in args.workers:
        if workers == 1:
            continue
        wall, report = best_of(args.rounds, lambda w=workers: scan_paths(inputs, policy, jobs=w))
        assert comparable(report) == reference, "a parallel scan differs from the serial one"
        print(row("local worker processes", workers, wall, len(files), size, serial_wall))
    notes = []
    if not args.no_ray:
        notes += _ray_rows(inputs, policy, args, files, size, serial_wall, reference)
    print()
    for note in notes:
        print(note)
    return 0


def _ray_rows(
    inputs: list[Path],
    policy: Policy,
    args: argparse.Namespace,
    files: list[Path],
    size: int,
    serial_wall: float,
    reference: tuple[object, ...],
) -> list[str]:
    try:
        import logging

        import ray
    except ImportError:
        return ["ray: not installed (pip install 'modelshield[ray]'); no Ray rows"]
    notes = []
    for workers in args.workers:
        started = time.perf_counter()
        ray.init(
            num_cpus=workers,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
        start_up = time.perf_counter() - started
        try:
            scan_paths(inputs, policy, jobs=workers, executor="ray")  # warm-up: worker start
            wall, report = best_of(
                args.rounds, lambda w=workers: scan_paths(inputs, policy, jobs=w, executor="ray")
            )
        finally:
            ray.shutdown()
        assert comparable(report) == reference, "a Ray scan differs from the serial one"
        label = f"Ray, local cluster of {workers} CPU{'s' if workers > 1 else ''}"
        print(row(label, workers, wall, len(files), size, serial_wall))
        notes.append(f"ray.init() with {workers} CPUs took {start_up:.1f} s (not in the rows)")
    return notes


if __name__ == "__main__":
    sys.exit(main())
