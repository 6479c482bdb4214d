"""One training per run folder: an exclusive ``flock`` on ``out_dir/.train.lock``.

Two trainings writing into the same ``trainer.out_dir`` would overwrite each other's step files and
``last.pt`` and leave two event files, silently mixing two runs. The trainer therefore holds an
exclusive, non-blocking ``flock`` on a lock file in the run folder for as long as it trains; a second
trainer refuses to start, in one line naming the holder (pid, host, start time, command), which the
holder writes into the lock file.

The lock belongs to the open file, not to the file's existence: the kernel drops it when the holder
exits in any way (``kill -9`` included), so a killed run never leaves a lock that blocks; the stale
file is simply locked and rewritten by the next run. Forked children (e.g. DataLoader workers)
share the open file, so the lock is held until they have exited too.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

#: Name of the lock file inside ``trainer.out_dir``.
LOCK_NAME = ".train.lock"


class RunDirectoryBusy(RuntimeError):
    """Another process holds the run folder's lock; the message is one line naming it."""


def _holder_description(info: dict[str, Any]) -> str:
    """``pid 123 on host, started 2025-01-02 03:04:05: vocoder-train recipe=demo`` from the lock file."""
    pid, host = info.get("pid"), info.get("host")
    parts = [f"pid {pid}" if pid is not None else "pid unknown"]
    if host:
        parts[0] += f" on {host}"
    started = info.get("started")
    if isinstance(started, int | float):
        parts.append("started " + time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)))
    text = ", ".join(parts)
    command = str(info.get("command") or "").strip()
    if command:
        text += f": {command if len(command) <= 200 else command[:199] + '…'}"
    if host == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
        text += f" (pid {pid} has exited; a child process it forked still holds the folder)"
    return text


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_holder(fd: int) -> dict[str, Any]:
    """What the holder wrote into the lock file (it may be empty for an instant after it locked)."""
    for attempt in range(10):
        try:
            raw = os.pread(fd, 4096, 0)
        except OSError:
            return {}
        if raw.strip():
            try:
                info = json.loads(raw.decode("utf-8", "replace"))
            except ValueError:
                info = None
            if isinstance(info, dict):
                return info
        if attempt < 9:
            time.sleep(0.02)
    return {}


class RunLock:
    """An exclusive lock on a run folder, held from :meth:`acquire` until :meth:`release`.

    Args:
        directory: the run folder (``trainer.out_dir``; created if missing).
        setting: the setting that named the folder, used in the message (``trainer.out_dir``).

    Example::

        lock = RunLock("exp/demo")
        lock.acquire()          # RunDirectoryBusy if another training holds it
        ...                     # train
        lock.release()
    """

    def __init__(self, directory: str | os.PathLike, setting: str = "trainer.out_dir") -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self.setting = setting
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise :class:`RunDirectoryBusy` (no waiting); records this process in the file.

        Raises:
            RunDirectoryBusy: another process holds the folder (message: one line naming it).
            OSError: the folder or the lock file cannot be created (e.g. a read-only location).
        """
        if self._fd is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
            holder = _holder_description(_read_holder(fd))
            os.close(fd)
            raise RunDirectoryBusy(
                f"{self.setting}={self.directory} is in use by another training ({holder}); wait for it to "
                f"end or stop it, or give another {self.setting}"
            ) from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else ""}
        # who holds it is for the message only: a full disk must not stop the run here
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (the file stays; an unlocked file blocks nobody)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __del__(self) -> None:  # a lock object dropped without release() lets go of the folder too
        with contextlib.suppress(Exception):
            self.release()

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()
