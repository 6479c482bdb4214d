"""Exceptions of corpus handling, download and feature preparation.

Every message is one line that names the file (or URL) and the reason, so a command-line tool can
print it as is, without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class DataError(RuntimeError):
    """Base class: a corpus, download or preparation problem the user can fix."""


class CorpusError(DataError):
    """A corpus that is missing, matches no layout asked for, has a malformed list or transcript, or is
    too small for the splits."""


class BadAudioError(DataError):
    """An audio file that cannot be used (corrupt, empty, not audio, silent or too short).

    Attributes:
        path: the offending file.
        reason: a short human-readable reason (without the path).
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):
        # keep (path, reason) when the error crosses a process boundary (multiprocessing pickles it)
        return (type(self), (self.path, self.reason))


class DownloadError(DataError):
    """A download or archive problem (network, HTTP status, checksum, unsafe archive member)."""
