"""Restricted loading cost: the libraries' own loaders beside ``modelshield.load``.

Usage::

    python bench/bench_load.py                  # best of 3 rounds
    python bench/bench_load.py --repeat 5 --torch-mb 400

Files are generated once under ``bench-out/`` (a ~200 MB PyTorch state dict and the same model
saved whole, a large scikit-learn pipeline saved by joblib, uncompressed and zlib-compressed)
and read once before timing, so figures are from the page cache; each round times every
loader once (interleaved) and the best round of each is kept. For each file: the plain
loader (``torch.load`` as its default ``weights_only=True`` runs it, and with
``weights_only=False`` for a whole module; ``joblib.load``), modelshield's scan alone, and
``modelshield.load`` (scan, then restricted load). The goal: ``modelshield.load`` within 1.2x
of the plain loader plus the scan (the last column). Figures only: nothing passes or fails.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench-out"
GOAL = 1.2


def _torch_model(total_mb: int) -> Any:
    """A stack of linear layers of about ``total_mb`` MB of float32 weights."""
    import torch

    width = 1024
    layers = max(1, total_mb * 2**20 // (4 * width * width))
    torch.manual_seed(0)
    blocks = []
    for _ in range(layers):
        blocks += [torch.nn.Linear(width, width), torch.nn.LayerNorm(width), torch.nn.GELU()]
    return torch.nn.Sequential(*blocks)


def make_files(torch_mb: int) -> dict[str, Path]:
    """Write the benchmark's files once (reused while their size argument is the same)."""
    import joblib
    import numpy as np
    import torch
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    OUT.mkdir(exist_ok=True)
    files = {
        "torch state dict": OUT / f"load-state-{torch_mb}mb.pt",
        "torch whole module": OUT / f"load-module-{torch_mb}mb.pt",
        "sklearn pipeline (joblib)": OUT / "load-pipeline.joblib",
        "sklearn pipeline (joblib, zlib)": OUT / "load-pipeline-zlib.joblib",
    }
    if not files["torch state dict"].exists() or not files["torch whole module"].exists():
        model = _torch_model(torch_mb)
        torch.save(model.state_dict(), files["torch state dict"])
        torch.save(model, files["torch whole module"])
    if not files["sklearn pipeline (joblib)"].exists():
        rng = np.random.default_rng(0)
        features = rng.standard_normal((20_000, 20))
        target = (features[:, 0] + rng.standard_normal(20_000) > 0).astype(int)
        pipe = Pipeline(
            [("scale", StandardScaler()), ("forest", RandomForestClassifier(200, random_state=0))]
        ).fit(features, target)
        joblib.dump(pipe, files["sklearn pipeline (joblib)"])
        joblib.dump(pipe, files["sklearn pipeline (joblib, zlib)"], compress=("zlib", 3))
    return files


def interleaved(calls: list[Callable[[], object]], repeat: int) -> list[float]:
    """The fastest of ``repeat`` rounds for each call; one round runs every call once, so that
    a busy machine slows all of them alike."""
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(repeat):
        for i, call in enumerate(calls):
            gc.collect()
            start = time.perf_counter()
            call()
            times[i].append(time.perf_counter() - start)
    return [min(t) for t in times]


def main(argv: list[str] | None = None) -> int:
    """Time every loader on every file and print one table."""
    sys.path.insert(0, str(REPO / "src"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best is kept")
    parser.add_argument("--torch-mb", type=int, default=200, help="checkpoint size (MB)")
    args = parser.parse_args(argv)

    import joblib
    import torch

    import modelshield
    from modelshield.loaders import load_model

    files = make_files(args.torch_mb)
    plain: dict[str, Callable[[Path], object]] = {
        "torch state dict": lambda p: torch.load(p),
        "torch whole module": lambda p: torch.load(p, weights_only=False),
        "sklearn pipeline (joblib)": joblib.load,
        "sklearn pipeline (joblib, zlib)": joblib.load,
    }
    print(f"torch {torch.__version__}, joblib {joblib.__version__}, best of {args.repeat}")
    header = (
        f"{'file':34} {'size':>8} {'plain load':>11} {'scan':>8} "
        f"{'modelshield.load':>17} {'ratio':>6}  loader"
    )
    print(header)
    print("-" * len(header))
    for name, path in files.items():
        path.read_bytes()  # into the page cache
        result = load_model(path)  # also warms the imports both sides need
        load_plain, scan, restricted = interleaved(
            [
                lambda p=path, f=plain[name]: f(p),  # type: ignore[misc]
                lambda p=path: modelshield.scan(p),  # type: ignore[misc]
                lambda p=path: load_model(p),  # type: ignore[misc]
            ],
            args.repeat,
        )
        ratio = restricted / (load_plain + scan)
        size = path.stat().st_size / 1e6
        print(
            f"{name:34} {size:7.0f}M {load_plain:10.3f}s {scan:7.3f}s {restricted:16.3f}s "
            f"{ratio:5.2f}x  {result.loader}: {result.method}"
        )
    print(f"ratio: modelshield.load / (plain load + scan); goal <= {GOAL}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
