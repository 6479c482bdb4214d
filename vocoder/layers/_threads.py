"""Contiguous work ranges run on plain threads (the numba kernels and torch ops release the GIL)."""

from __future__ import annotations

import threading
from collections.abc import Callable


def split_range(size: int, workers: int) -> list[tuple[int, int]]:
    """``range(size)`` as up to ``workers`` contiguous, non-empty ``(first, last)`` chunks of near-equal size."""
    workers = max(1, min(int(workers), size))
    bounds = [round(i * size / workers) for i in range(workers + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(workers) if bounds[i + 1] > bounds[i]]


def run_in_threads(work: Callable[[int, int], None], chunks: list[tuple[int, int]]) -> None:
    """``work(first, last)`` for every chunk: one thread each (the calling thread for a single chunk);
    the first error of any thread is re-raised in the caller after all have finished."""
    if len(chunks) == 1:
        work(*chunks[0])
        return
    errors: list[BaseException] = []

    def run(first: int, last: int) -> None:
        try:
            work(first, last)
        except BaseException as error:  # re-raised in the calling thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=chunk) for chunk in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
