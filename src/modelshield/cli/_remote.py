"""``scan hf://ORG/REPO``: fetch remote models before the scan (the ``hub`` extra)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelshield.core.findings import FileResult
    from modelshield.core.policy import Policy


def resolve_remote(
    paths: list[str], policy: Policy, *, progress: bool, quiet: bool
) -> tuple[list[str], list[FileResult]]:
    """Local paths for the scan (hub references replaced by their snapshot folders) and the
    results of remote files too large to download. Nothing is imported for local paths."""
    if not any("://" in path for path in paths):
        return paths, []
    from modelshield.scanner.remote import download, oversized_results, parse_remote

    refs = [parse_remote(path) for path in paths]  # every reference checked before any download
    local: list[str] = []
    extra: list[FileResult] = []
    for path, ref in zip(paths, refs, strict=True):
        if ref is None:
            local.append(path)
            continue
        snapshot = download(ref, policy.limits, progress=progress)
        if snapshot.target:
            local.append(snapshot.target)
        extra += oversized_results(snapshot, policy.limits)
        if not quiet:
            left = f"; {len(snapshot.left_out)} left out (no loader reads them)"
            large = f"; {len(snapshot.oversized)} too large" if snapshot.oversized else ""
            print(
                f"modelshield: {ref.display()}: commit {snapshot.commit}, "
                f"{len(snapshot.files)} files ({_size(snapshot.size)}) in {snapshot.root}"
                f"{left if snapshot.left_out else ''}{large}",
                file=sys.stderr,
            )
    return local, extra


def _size(count: int) -> str:
    value = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{count} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} bytes"  # pragma: no cover - the loop always returns
