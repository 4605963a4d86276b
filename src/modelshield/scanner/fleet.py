"""Work spread over processes or a Ray cluster, with results in input order.

The engine cuts its list of files into batches and hands them here with the function that scans
one batch. This module knows nothing of scanning: :func:`ordered_map` runs a picklable function
over items in a pool of worker processes (:attr:`Executor.LOCAL`) or as Ray tasks
(:attr:`Executor.RAY`), keeps a bounded window of items in flight (memory stays bounded for a
fleet of any size), and yields each result in the items' order as soon as it and every one
before it are done.

A worker that dies (killed by a signal, out of memory, a crash in native code) never loses a
result silently and never stops the run: the items that were in flight are run again, one at a
time, and an item that kills its worker again gets ``lost(item, reason)`` as its result, which
the engine turns into error records (the run then exits 2).

Ray is imported only when it is asked for (``pip install 'modelshield[ray]'``). With no cluster
running, ``ray.init()`` starts a local one and it is stopped at the end; an existing cluster is
joined (``RAY_ADDRESS``, or the cluster ``ray start`` started on this machine), and a Ray
session the caller opened is used as it is. Workers read the files by path: on a cluster of
several machines, the files must be at the same path on every node (a shared file system).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Generator, Iterable
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from modelshield.core.errors import MissingExtraError, ServiceError

Item = TypeVar("Item")
Shared = TypeVar("Shared")
Result = TypeVar("Result")

#: Items in flight per worker: enough to keep every worker busy while the head of the line is
#: being waited for, few enough that results held for ordering stay small.
IN_FLIGHT_PER_WORKER = 2


class Executor(StrEnum):
    """Where ``scan --jobs`` runs its workers."""

    LOCAL = "local"
    """A pool of processes on this machine."""
    RAY = "ray"
    """Tasks on a Ray cluster (joined, or started locally for the run)."""


def default_workers() -> int:
    """The CPUs this process may run on (``--jobs auto``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not every platform has affinity
        return max(1, os.cpu_count() or 1)


def ordered_map(
    func: Callable[[Shared, Item], Result],
    shared: Shared,
    items: Iterable[Item],
    *,
    workers: int | None,
    executor: Executor,
    lost: Callable[[Item, str], Result],
) -> Generator[Result, None, None]:
    """``func(shared, item)`` for every item, run in parallel, yielded in the items' order.

    ``func`` must be a module-level function (it is pickled by name); ``shared`` is sent to
    each worker once (process pool) or stored once in the cluster's object store (Ray).
    ``workers`` is the number of processes (local) or of tasks run at once (Ray; None: the
    cluster's CPUs). ``lost(item, reason)`` stands for the result of an item whose worker died
    twice or whose task failed. Close the iterator (or run it to the end) to stop the workers.
    """
    if executor is Executor.RAY:
        return _ray_map(func, shared, items, workers, lost)
    return _pool_map(func, shared, items, workers or default_workers(), lost)


# ---- a pool of local processes ------------------------------------------------------------

_SHARED: Any = None
"""In a pool worker: the ``shared`` value of the map it serves."""


def _init_worker(shared: Any) -> None:
    global _SHARED
    _SHARED = shared


def _call_shared(func: Callable[[Any, Any], Any], item: Any) -> Any:
    return func(_SHARED, item)


_WORKER_DIED = (
    "the worker process scanning it stopped abruptly (killed by a signal, out of memory, or a "
    "crash in native code), twice"
)


class _Slot:
    """One item in the window: its future, or its result once known."""

    __slots__ = ("future", "item", "result", "settled")

    def __init__(self, item: Any, future: Any) -> None:
        self.item = item
        self.future = future
        self.result: Any = None
        self.settled = False


def _pool_map(
    func: Callable[[Shared, Item], Result],
    shared: Shared,
    items: Iterable[Item],
    workers: int,
    lost: Callable[[Item, str], Result],
) -> Generator[Result, None, None]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # spawn: fresh interpreters, the same on every platform, and no copy of the parent's locks
    # and threads (the progress bar runs one).
    context = multiprocessing.get_context("spawn")

    def new_pool(size: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            size, mp_context=context, initializer=_init_worker, initargs=(shared,)
        )

    pool = new_pool(workers)
    source = iter(items)
    window: deque[_Slot] = deque()
    limit = workers * IN_FLIGHT_PER_WORKER
    carry: Any = _END  # an item the broken pool refused, submitted again after recovery
    try:
        while True:
            while len(window) < limit:
                item = next(source, _END) if carry is _END else carry
                carry = _END
                if item is _END:
                    break
                try:
                    future = pool.submit(_call_shared, func, item)
                except BrokenProcessPool:  # a worker died: the head of the line will see it
                    carry = item
                    break
                window.append(_Slot(item, future))
            if not window:
                if carry is _END:
                    return
                pool.shutdown(wait=True, cancel_futures=True)
                pool = new_pool(workers)
                continue
            head = window[0]
            if not head.settled:
                try:
                    head.result = head.future.result()
                    head.settled = True
                except BrokenProcessPool:
                    pool.shutdown(wait=True, cancel_futures=True)
                    _isolate(window, new_pool, func, lost)
                    pool = new_pool(workers)
                    continue
                except Exception as e:  # the task itself failed (a result that cannot pickle)
                    head.result = lost(head.item, f"the worker failed: {type(e).__name__}: {e}")
                    head.settled = True
            window.popleft()
            yield head.result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


_END: Any = object()


def _isolate(
    window: deque[_Slot],
    new_pool: Callable[[int], Any],
    func: Callable[..., Any],
    lost: Callable[[Any, str], Any],
) -> None:
    """After a worker died, run each item that was in flight alone in a fresh process: the one
    that kills its worker again is the culprit (its result is ``lost``), the others finish."""
    from concurrent.futures.process import BrokenProcessPool

    for slot in window:
        if slot.settled:
            continue
        done = slot.future.done() and not slot.future.cancelled()
        if done and slot.future.exception() is None:
            slot.result = slot.future.result()
            slot.settled = True
            continue
        pool = new_pool(1)
        try:
            slot.result = pool.submit(_call_shared, func, slot.item).result()
        except BrokenProcessPool:
            slot.result = lost(slot.item, _WORKER_DIED)
        except Exception as e:
            slot.result = lost(slot.item, f"the worker failed: {type(e).__name__}: {e}")
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        slot.settled = True


# ---- Ray ----------------------------------------------------------------------------------


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise MissingExtraError("scan --executor ray", "ray", "ray") from e
    return ray


def _ray_task(func: Callable[[Any, Any], Any], cwd: str, shared: Any, item: Any) -> Any:
    """A Ray task: run ``func`` where the driver runs, so that relative paths mean the same."""
    if os.fspath(Path.cwd()) != cwd and Path(cwd).is_dir():
        os.chdir(cwd)
    return func(shared, item)


def _ray_map(
    func: Callable[[Shared, Item], Result],
    shared: Shared,
    items: Iterable[Item],
    workers: int | None,
    lost: Callable[[Item, str], Result],
) -> Generator[Result, None, None]:
    ray = _import_ray()
    started = not ray.is_initialized()
    if started:
        import logging

        try:
            ray.init(
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
                configure_logging=True,
            )
        except Exception as e:  # an unreachable or broken cluster: a clear error, no traceback
            raise ServiceError(f"--executor ray: cannot start or join a Ray cluster: {e}") from e
    try:
        if workers is None:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        task = ray.remote(num_cpus=1, max_retries=1)(_ray_task)
        shared_ref = ray.put(shared)
        cwd = os.fspath(Path.cwd())
        source = iter(items)
        window: deque[tuple[Any, Any]] = deque()
        limit = workers * IN_FLIGHT_PER_WORKER
        while True:
            while len(window) < limit:
                item = next(source, _END)
                if item is _END:
                    break
                window.append((item, task.remote(func, cwd, shared_ref, item)))
            if not window:
                return
            item, ref = window.popleft()
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as e:
                result = lost(item, f"the Ray task failed: {type(e).__name__}: {_first_line(e)}")
            yield result
    finally:
        if started:
            ray.shutdown()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
