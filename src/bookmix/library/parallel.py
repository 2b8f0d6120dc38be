"""Running the library's units of work (a batch of ingest jobs, of books to sign or to score) on processes or Ray.

The same split as the campaign's executors: the caller owns a unit (what it is, recording its result durably,
skipping the finished ones on a re-run); this file only schedules, in-process, on a local process pool or as Ray
tasks (``bookmix.utils.ray.connect``: a cluster at ``address`` or a local instance). Workers return plain results
and never write the catalog: the driver is the one writer.

``ordered=True`` yields results in the order of the units (a bounded window of units in flight), which is what makes a
Ray ingest lay out the token store exactly as a one-process ingest does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from typing import Any, Literal, TypeVar

from bookmix.errors import BookmixError

U = TypeVar("U")
Kind = Literal["local", "ray"]
EXECUTORS = ("local", "ray")


def run_units(
    fn: Callable[[U], Any],
    units: Iterable[U],
    *,
    executor: Kind = "local",
    workers: int = 1,
    address: str | None = None,
    ordered: bool = False,
    init: Callable[[], None] | None = None,
) -> Iterator[tuple[U, Any]]:
    """Yield ``(unit, fn(unit))`` for every unit; at most ``2 * workers`` units are in flight (bounded memory).

    ``fn`` (and ``init``, run once per worker process before its first unit) must be picklable top-level functions.
    """
    if executor not in EXECUTORS:
        raise BookmixError(f"--executor: must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if workers < 1:
        raise BookmixError(f"--workers: must be ≥ 1, got {workers}")
    if executor == "ray":
        yield from _ray(fn, units, workers, address, ordered, init)
    elif workers == 1:
        if init is not None:
            init()
        for unit in units:
            yield unit, fn(unit)
    else:
        yield from _pool(fn, units, workers, ordered, init)


def _pool(fn, units, workers: int, ordered: bool, init) -> Iterator[tuple[Any, Any]]:
    # spawn, not fork: the parent may hold a tokenizer or torch threads that must not be forked mid-use
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=init) as pool:
        yield from _bounded(lambda u: pool.submit(fn, u), units, 2 * workers, ordered, _wait_futures, Future.result)


def _wait_futures(pending):
    done, _ = wait(pending, return_when=FIRST_COMPLETED)
    return done


def _ray(fn, units, workers: int, address: str | None, ordered: bool, init) -> Iterator[tuple[Any, Any]]:
    from bookmix.utils.ray import connect

    ray, started_here = connect(address, workers, what="--address")
    try:
        task = ray.remote(num_cpus=1, max_retries=2)(_ray_call)  # a lost worker or node: Ray re-runs the unit
        width = max(2, 2 * int(ray.cluster_resources().get("CPU", workers)))

        def wait_refs(pending):
            done, _ = ray.wait(list(pending), num_returns=1)
            return done

        yield from _bounded(lambda u: task.remote(fn, init, u), units, width, ordered, wait_refs, ray.get)
    finally:
        if started_here:
            ray.shutdown()


_INITIALIZED: set[str] = set()


def _ray_call(fn, init, unit):
    """Runs on a Ray worker: the per-process ``init`` once (Ray reuses worker processes), then the unit."""
    key = repr(init)  # the callable arrives unpickled afresh with each task: its repr names it and its arguments
    if init is not None and key not in _INITIALIZED:
        init()
        _INITIALIZED.add(key)
    return fn(unit)


def _bounded(submit, units, width: int, ordered: bool, wait_some, result) -> Iterator[tuple[Any, Any]]:
    """Keep ``width`` units in flight; yield in unit order (``ordered``) or as they finish."""
    queue: deque = deque()  # (handle, unit) in submission order
    units = iter(units)
    exhausted = False
    while True:
        while not exhausted and len(queue) < width:
            unit = next(units, _END)
            if unit is _END:
                exhausted = True
            else:
                queue.append((submit(unit), unit))
        if not queue:
            return
        if ordered:
            handle, unit = queue.popleft()
            yield unit, result(handle)
            continue
        done = wait_some([h for h, _ in queue])
        keep = deque()
        for handle, unit in queue:
            if handle in done:
                yield unit, result(handle)
            else:
                keep.append((handle, unit))
        queue = keep


_END = object()
