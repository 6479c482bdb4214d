"""A disk cache of what a natural recording alone decides: its analysis and its anchors' scores.

Scoring a vocoder needs the reference's mel-cepstra and harvest F0 (about half the work per utterance)
and, with ``anchors=true``, three anchor resyntheses scored the same way (most of the rest). None of it
depends on the vocoder, so every later ``vocoder-eval`` of the same recordings reuses it: one ``.npz``
per recording, keyed by a hash of its samples, the sample rate and :data:`CACHE_VERSION`. An utterance
shown on the listening page also keeps its anchors' audio there (16-bit PCM: 2 bytes per sample and
anchor), so the page does not cost the resyntheses again.
Entries are written atomically, so concurrent workers and interrupted runs never leave a torn file; an
unreadable entry is recomputed.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from vocoder.evaluation._metrics import PESQ_RATE, ReferenceAnalysis, mcep_alpha

#: Bump when a metric, the analysis or an anchor changes: older entries are then ignored.
CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/vocoder/eval`` (``~/.cache/vocoder/eval``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vocoder" / "eval"


def reference_key(reference: np.ndarray, sample_rate: int) -> str:
    """Hash of the samples (as float64), the rate, the cache version and (off 16 kHz) the
    mel-cepstral α of the rate."""
    digest = hashlib.sha256()
    # the α of a rate other than 16 kHz changed from 0.42 to the rate's own: those entries are new
    alpha = "" if sample_rate == PESQ_RATE else f"a{mcep_alpha(sample_rate)}:"
    digest.update(f"v{CACHE_VERSION}:{sample_rate}:{alpha}{len(reference)}:".encode())
    digest.update(np.ascontiguousarray(reference, dtype=np.float64).tobytes())
    return digest.hexdigest()[:32]


class ReferenceCache:
    """The cached analysis and anchor scores of one recording.

    Args:
        directory: the cache folder (created when something is written).
        reference: the natural waveform as scored.
        sample_rate: its rate in Hz.
    """

    def __init__(self, directory: str | os.PathLike, reference: np.ndarray, sample_rate: int) -> None:
        self.directory = Path(directory)
        self.reference = reference
        self.sample_rate = sample_rate
        self.path = self.directory / f"{reference_key(reference, sample_rate)}.npz"
        self._entry: dict[str, np.ndarray] = self._read()
        self._dirty = False

    def _read(self) -> dict[str, np.ndarray]:
        try:
            with np.load(self.path, allow_pickle=False) as data:
                return {name: data[name] for name in data.files}
        except (OSError, ValueError, KeyError, EOFError):  # absent or torn: recompute
            return {}

    def analysis(self) -> ReferenceAnalysis:
        """A :class:`ReferenceAnalysis` holding the cached full-length analysis (computed now if absent)."""
        n = len(self.reference)
        analysis = ReferenceAnalysis(self.reference, self.sample_rate)
        if {"mcep", "energy_db", "f0"} <= self._entry.keys():
            analysis.preload(n, (self._entry["mcep"], self._entry["energy_db"]), self._entry["f0"])
        else:
            mcep, energy = analysis.cepstra(n)
            self._entry.update(mcep=mcep, energy_db=energy, f0=analysis.f0(n))
            self._dirty = True
        return analysis

    def anchor_scores(self, system: str, metrics: tuple[str, ...]) -> dict[str, float] | None:
        """The cached scores of an anchor, or ``None``."""
        key = f"anchor_{system}"
        if key not in self._entry or self._entry[key].shape != (len(metrics),):
            return None
        return {m: float(v) for m, v in zip(metrics, self._entry[key], strict=True)}

    def store_anchor_scores(self, system: str, scores: dict[str, float], metrics: tuple[str, ...]) -> None:
        self._entry[f"anchor_{system}"] = np.array([scores[m] for m in metrics], dtype=np.float64)
        self._dirty = True

    def anchor_audio(self, system: str) -> np.ndarray | None:
        """The cached audio of an anchor as 16-bit PCM, shape ``(len(reference),)`` int16, or ``None``."""
        audio = self._entry.get(f"audio_{system}")
        if audio is None or audio.dtype != np.int16 or audio.shape != (len(self.reference),):
            return None
        return audio

    def store_anchor_audio(self, system: str, pcm: np.ndarray) -> None:
        """Keep an anchor's audio (int16 samples, one per sample of the reference) for the listening page."""
        self._entry[f"audio_{system}"] = np.asarray(pcm, dtype=np.int16)
        self._dirty = True

    def save(self) -> None:
        """Write the entry if anything was added (atomically; a failure to write is not an error)."""
        if not self._dirty:
            return
        tmp = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".npz.tmp")
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, **self._entry)
            os.replace(tmp, self.path)
            self._dirty = False
        except OSError:  # a read-only or full disk only costs the reuse
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
