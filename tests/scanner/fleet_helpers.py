"""Module-level functions for the parallel-map tests: worker processes and Ray tasks import
them by name, so they cannot live in a test function."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Generator, Iterable

from modelshield.scanner.fleet import Executor, ordered_map


def scaled(factor: int, item: int) -> int:
    """``factor * item``: a result that depends on the shared value and the item."""
    return factor * item


def killed_on(victim: int, item: int) -> int:
    """Kill the worker process (SIGKILL, as the out-of-memory killer does) on ``victim``."""
    if item == victim:
        os.kill(os.getpid(), signal.SIGKILL)
    return item


def raises_on(victim: int, item: int) -> int:
    """Raise (a bug of the task) on ``victim``."""
    if item == victim:
        raise ValueError(f"task failed on {item}")
    return item


def lost(item: int, reason: str) -> str:
    """What a lost item becomes: its number and why."""
    return f"lost {item}: {reason}"


def mapped(
    func: Callable[[int, int], int], shared: int, items: Iterable[int], executor: Executor
) -> Generator[int | str, None, None]:
    """``ordered_map`` on two workers, with :func:`lost` for lost items."""
    return ordered_map(func, shared, items, workers=2, executor=executor, lost=lost)
