"""File-system helpers: atomic writes and an inter-process lock on a directory."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

TEMP_SUFFIX = ".tmp"


def write_atomic(target: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write ``target`` through a temporary file in the same directory, then rename it into place.

    Readers see either the old file or the complete new one, never a half-written file, even when
    the writer is interrupted (Ctrl-C, SIGTERM): the temporary file is removed on any exception,
    and a process killed outright leaves only a hidden ``.<name>.*.tmp`` file behind, which
    :func:`remove_stale_temporaries` cleans up.

    Args:
        target: the final path.
        write: called with the open binary temporary file.

    Returns:
        ``target`` as a :class:`~pathlib.Path`.
    """
    target = Path(target)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def remove_stale_temporaries(directory: str | Path) -> int:
    """Delete the hidden temporary files :func:`write_atomic` left in ``directory``; returns how many."""
    removed = 0
    for path in Path(directory).glob(f".*{TEMP_SUFFIX}"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


@contextlib.contextmanager
def directory_lock(directory: str | Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``directory/.lock`` (blocking) for the duration of the block.

    Several processes preparing the same cache (e.g. every rank of a ``torchrun`` job) then run one
    after the other: the first does the work, the others find it done.

    Args:
        directory: the directory to lock (created if missing).
        on_wait: called once if the lock is held by another process, before waiting for it.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a+b") as lock_file:
        try:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)
