"""Torch datasets over a prepared feature cache (see :mod:`vocoder.data._prepare` for the layout)."""

from __future__ import annotations

import json
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vocoder.data._augment import AugmentSettings, augment_waveform, draw_augmentation
from vocoder.data._errors import DataError
from vocoder.dsp import bark_cepstrum, lpc_from_cepstrum, preemphasis


class CacheError(DataError):
    """A prepared cache that is missing or unusable; one line naming it and the fix."""


@dataclass
class Utterance:
    """One prepared utterance held in memory (``features``/``lpc`` are ``None`` in a cache whose frames
    are not 10 ms long: LPCNet's features do not exist there)."""

    id: str
    audio: np.ndarray  # (N,) float32, N = frames · hop
    mel: np.ndarray  # (T, n_mels) float32
    features: np.ndarray | None  # (T, 20) float32
    lpc: np.ndarray | None  # (T, order) float32


def read_split(cache_dir: str | Path, split: str) -> list[str]:
    """Utterance ids of ``split`` (train/dev/eval) from ``cache_dir/splits/<split>.txt``."""
    path = Path(cache_dir) / "splits" / f"{split}.txt"
    if not path.is_file():
        raise CacheError(f"{path}: split list missing; run vocoder-prepare with the same data settings first")
    ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not ids:
        raise CacheError(f"{path}: the {split} split is empty; lower data.splits sizes or use a larger corpus")
    return ids


#: What reading a damaged ``.npz`` raises: truncated (not a zip archive), a changed byte (bad CRC-32 of
#: a member), a missing array, a short read.
DAMAGED_NPZ_ERRORS = (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)
REPAIR_HINT = "rerun vocoder-prepare with the same data settings to recompute it"


def _damage(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, KeyError):
        text = f"no array {text}"
    return text[:160]


def load_utterance(cache_dir: str | Path, utterance_id: str) -> Utterance:
    """Load one cache entry.

    Raises:
        CacheError: the entry is missing or damaged (truncated, a changed byte, an array missing):
            one line naming the file and how to repair it.
    """
    path = Path(cache_dir) / "features" / f"{utterance_id}.npz"
    if not path.is_file():
        raise CacheError(f"{path}: cache entry missing; {REPAIR_HINT}")
    try:
        with np.load(path) as entry:
            lpcnet = "features" in entry.files
            return Utterance(
                id=utterance_id,
                audio=entry["audio"].astype(np.float32),
                mel=entry["mel"].astype(np.float32),
                features=entry["features"].astype(np.float32) if lpcnet else None,
                lpc=entry["lpc"].astype(np.float32) if lpcnet else None,
            )
    except DAMAGED_NPZ_ERRORS as exc:
        raise CacheError(f"{path}: damaged cache entry ({_damage(exc)}); {REPAIR_HINT}") from None


def load_stats(cache_dir: str | Path) -> dict[str, np.ndarray]:
    """Normalization statistics of the train split (``mel_mean``, ``mel_std``, ``features_mean``, ...)."""
    path = Path(cache_dir) / "stats.npz"
    if not path.is_file():
        raise CacheError(f"{path}: statistics missing; run vocoder-prepare first")
    try:
        with np.load(path) as stats:
            return {key: stats[key].astype(np.float32) for key in stats.files}
    except DAMAGED_NPZ_ERRORS as exc:
        raise CacheError(f"{path}: damaged statistics file ({_damage(exc)}); {REPAIR_HINT}") from None


def load_manifest(cache_dir: str | Path) -> dict:
    path = Path(cache_dir) / "manifest.json"
    if not path.is_file():
        raise CacheError(f"{path}: manifest missing; run vocoder-prepare first")
    return json.loads(path.read_text())


class LPCNetSegments(torch.utils.data.Dataset):
    """Random fixed-length segments for LPCNet teacher forcing.

    An item is addressed by ``(index, crop_seed)`` (see :class:`vocoder.training.ResumableSampler`):
    the seed picks the segment start, so data order and crops are reproducible and resumable.

    Each item holds ``frames`` frames of output plus 2 context frames on each side for the
    frame-rate network (edge frames replicated at utterance boundaries), the per-frame LPC, and the
    pre-emphasized waveform of the segment preceded by ``history`` samples of past.

    Args:
        utterances: prepared utterances (each at least ``frames`` frames long).
        frames: output frames per segment (LPCNet: 15).
        hop_length: samples per frame.
        history: samples of past before the segment (≥ LPC order + 1).
        preemphasis_alpha: pre-emphasis applied to the waveform (LPC predicts that signal).
        context: feature frames of context on each side (2 for LPCNet's two kernel-3 convolutions).
        augment: xiph's gain/filter augmentation (:mod:`vocoder.data._augment`), drawn from each
            item's crop seed; the cepstra and LPC are recomputed from the augmented audio.
        lpc_order: LPC order of the recomputed predictor (augmentation only).
    """

    def __init__(self, utterances: list[Utterance], frames: int, hop_length: int, history: int = 160,
                 preemphasis_alpha: float = 0.85, context: int = 2,
                 augment: AugmentSettings | None = None, lpc_order: int = 16) -> None:
        if any(u.features is None for u in utterances):
            raise CacheError("the cache has no LPCNet features (its frames are not 10 ms long); prepare it "
                             "with data.features.sample_rate=16000 for LPCNet")
        self.utterances = [u for u in utterances if u.features.shape[0] >= frames]
        if not self.utterances:
            raise CacheError(f"no utterance has {frames} frames; lower the segment length")
        self.frames, self.hop, self.history, self.context = frames, hop_length, history, context
        self.alpha = preemphasis_alpha
        self.augment = augment if augment is not None and augment.enabled else None
        self.lpc_order = lpc_order
        self.emphasized = [preemphasis(u.audio, preemphasis_alpha).astype(np.float32) for u in self.utterances]

    def __len__(self) -> int:
        return len(self.utterances)

    def segment(self, index: int, start: int) -> dict[str, torch.Tensor]:
        """The segment of utterance ``index`` starting at frame ``start``."""
        utt = self.utterances[index]
        total = utt.features.shape[0]
        rows = np.clip(np.arange(start - self.context, start + self.frames + self.context), 0, total - 1)
        first, last = start * self.hop, (start + self.frames) * self.hop
        wave = self.emphasized[index]
        past = wave[max(first - self.history, 0) : first]
        past = np.concatenate([np.zeros(self.history - len(past), np.float32), past])
        return {
            "features": torch.from_numpy(utt.features[rows]),
            "lpc": torch.from_numpy(utt.lpc[start : start + self.frames]),
            "signal": torch.from_numpy(np.concatenate([past, wave[first:last]])),
        }

    def augmented_segment(self, index: int, start: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """:meth:`segment` of the augmented audio: new cepstra, LPC and waveform, cached pitch."""
        utt = self.utterances[index]
        hop, total = self.hop, utt.features.shape[0]
        rows = np.clip(np.arange(start - self.context, start + self.frames + self.context), 0, total - 1)
        first_frame, last_frame = int(rows[0]) - 1, int(rows[-1]) + 2  # one frame of margin each side
        first, last = start * hop, (start + self.frames) * hop
        warmup = 2 * hop  # the filters settle before the first analysed sample
        chunk_start = min(first_frame * hop, first - self.history) - warmup
        chunk_end = max(last_frame * hop + hop // 2, last)
        audio = utt.audio
        chunk = np.zeros(chunk_end - chunk_start)
        lo, hi = max(chunk_start, 0), min(chunk_end, audio.shape[0])
        if hi > lo:
            chunk[lo - chunk_start : hi - chunk_start] = audio[lo:hi]
        draw = draw_augmentation(self.augment, rng)
        emphasized = preemphasis(augment_waveform(chunk, draw, self.augment.highpass), self.alpha)
        offset = first_frame * hop - chunk_start
        n_frames = last_frame - first_frame
        window = emphasized[offset : offset + n_frames * hop + hop // 2]
        bfcc = bark_cepstrum(window, preemphasis=0.0).astype(np.float32)  # frames first_frame … last_frame − 1
        features = utt.features[rows].copy()
        features[:, : bfcc.shape[1]] = bfcc[rows - first_frame]
        lpc = lpc_from_cepstrum(features[self.context : self.context + self.frames, : bfcc.shape[1]],
                                order=self.lpc_order).astype(np.float32)
        signal = emphasized[first - self.history - chunk_start : last - chunk_start].astype(np.float32)
        return {"features": torch.from_numpy(features), "lpc": torch.from_numpy(lpc),
                "signal": torch.from_numpy(signal)}

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        index, crop_seed = key if isinstance(key, tuple) else (key, 0)
        total = self.utterances[index].features.shape[0]
        rng = np.random.default_rng(crop_seed)
        start = int(rng.integers(0, total - self.frames + 1))
        if self.augment is not None:
            return self.augmented_segment(index, start, rng)
        return self.segment(index, start)
