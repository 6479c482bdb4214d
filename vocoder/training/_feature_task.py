"""Training module of the feature converter (LPCNet features → log-mel) with the MGE loss.

Data: every prepared cache entry holds LPCNet's ``features`` (T, 20) and the ``mel`` (T, n_mels) of
the same frames. Training items are random crops of ``frames`` frames addressed by
``(index, crop_seed)`` (utterances shorter than that are used whole); each crop is treated as a
sequence of its own (the converter zero-pads its convolutions and MLPG truncates its windows at the
crop's edges). The dev split (validation) yields whole utterances, the condition
:meth:`vocoder.models.FeatureConverter.infer` runs in. Batches are padded to their longest item and
carry ``lengths``; every term ignores the padding.

Terms, each computed only when named in ``terms`` (the keys of ``loss.weights``; weight 0 logs a term
without training on it), all on the log-mel standardized per band with the cache's statistics:

* ``mge`` — minimum generation error (:class:`vocoder.losses.MGELoss`): MSE between the unit-variance
  MLPG of the predicted static + Δ + ΔΔ means and the natural static log-mel.
* ``mse_static`` — MSE between the predicted static means alone (no MLPG) and the natural log-mel.
* ``mse_windows`` — MSE between the predicted means of every window (static, Δ, ΔΔ) and the natural
  ones (the windows applied to the natural log-mel; dynamic features within the windows' reach of a
  sequence's ends are left out, as MLPG leaves them out). This is the conventional frame-wise
  training (followed by MLPG at generation) that MGE refines: ``loss.weights.mge=0
  +loss.weights.mse_windows=1`` trains that baseline, and its ``mge`` then measures it.
* ``lsd_db`` — log-spectral distance on the mel bands in dB of the MLPG trajectory, in the cache's
  units: per frame ``sqrt(mean_bands (20 / ln 10 · Δ ln mel)²)``, averaged over frames (the cache's
  log-mel is the natural log of the mel magnitude, so ``20 / ln 10`` converts it to dB).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vocoder.checkpoints import rebuild_model
from vocoder.data import CacheError, FeatureSettings, load_stats, load_utterance, read_split
from vocoder.errors import ConfigError
from vocoder.losses import MGELoss, mask_padding
from vocoder.models import FeatureConverter, frame_mask
from vocoder.training._module import TrainingModule

FEATURE_TERMS = ("mge", "mse_static", "mse_windows", "lsd_db")
#: natural-log magnitude → dB: 20 · log10(m) = 20 / ln(10) · ln(m)
DB_PER_NEPER = 20.0 / math.log(10.0)


@dataclass
class _FeatureTrack:
    """The two aligned feature streams of one prepared utterance."""

    id: str
    features: np.ndarray  # (T, n_features) float32
    mel: np.ndarray  # (T, n_mels) float32


class FeatureMelSegments(torch.utils.data.Dataset):
    """Aligned (LPCNet features, log-mel) crops addressed by ``(index, crop_seed)``.

    Args:
        tracks: ``(id, features (T, F), mel (T, M))`` of each utterance.
        frames: crop length in frames; ``None`` yields whole utterances. Utterances shorter than
            ``frames`` are yielded whole.

    Items are dicts of ``"features"`` (L, F) and ``"mel"`` (L, M) float32 with ``L = min(frames, T)``.
    """

    def __init__(self, tracks: Sequence[_FeatureTrack], frames: int | None) -> None:
        if frames is not None and frames < 1:
            raise ValueError(f"frames must be >= 1 or None, got {frames}")
        if not tracks:
            raise CacheError("no utterances to train on")
        for track in tracks:
            if track.features.shape[0] != track.mel.shape[0]:
                raise CacheError(
                    f"{track.id}: {track.features.shape[0]} feature frames but {track.mel.shape[0]} mel "
                    "frames; re-run vocoder-prepare"
                )
        self.tracks = list(tracks)
        self.frames = frames

    def __len__(self) -> int:
        return len(self.tracks)

    def segment(self, index: int, start: int) -> dict[str, torch.Tensor]:
        """The crop of utterance ``index`` that starts at frame ``start``.

        Args:
            index: utterance index.
            start: first frame (``0 ≤ start ≤ T - L``).

        Returns:
            ``{"features": (L, F), "mel": (L, M)}``.
        """
        track = self.tracks[index]
        total = track.mel.shape[0]
        length = total if self.frames is None else min(self.frames, total)
        if not 0 <= start <= total - length:
            raise IndexError(f"crop start {start} outside [0, {total - length}] for {track.id}")
        return {
            "features": torch.from_numpy(np.ascontiguousarray(track.features[start : start + length])),
            "mel": torch.from_numpy(np.ascontiguousarray(track.mel[start : start + length])),
        }

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        index, crop_seed = key if isinstance(key, tuple) else (key, 0)
        total = self.tracks[index].mel.shape[0]
        spare = 0 if self.frames is None else max(total - self.frames, 0)
        start = int(np.random.default_rng(crop_seed).integers(0, spare + 1))
        return self.segment(index, start)


def collate_padded(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Pad items of :class:`FeatureMelSegments` to the longest one.

    Args:
        items: dicts of ``"features"`` (L_i, F) and ``"mel"`` (L_i, M).

    Returns:
        ``{"features": (B, L, F), "mel": (B, L, M), "lengths": (B,) int64}`` with zeros past each
        item's length.
    """
    lengths = torch.tensor([item["mel"].shape[0] for item in items], dtype=torch.long)
    return {
        "features": nn.utils.rnn.pad_sequence([item["features"] for item in items], batch_first=True),
        "mel": nn.utils.rnn.pad_sequence([item["mel"] for item in items], batch_first=True),
        "lengths": lengths,
    }


class MGEFeatureTask(TrainingModule):
    """Trains :class:`vocoder.models.FeatureConverter` with the minimum-generation-error loss.

    Terms ``mge``, ``mse_static``, ``mse_windows`` and ``lsd_db`` (module docstring), each computed
    only when named in ``terms``. The converter's normalization buffers are set from the cache's
    statistics (they are persistent, so checkpoints carry them and a resume keeps the statistics it
    was trained with).

    Args:
        model: the feature converter.
        cache_dir: prepared feature cache.
        features: the cache's feature settings (``n_mels`` must be the converter's ``out_dim``).
        terms: loss terms to compute (the keys of ``loss.weights``).
        frames: frames per training crop (``None``: whole utterances).
        mge: a :class:`vocoder.losses.MGELoss` (e.g. built by Hydra from ``configs/loss/terms/mge.yaml``)
            or its keyword arguments; ``None`` uses the converter's windows. Its windows must be the
            converter's.
    """

    def __init__(
        self,
        model: nn.Module,
        cache_dir: str,
        features: FeatureSettings,
        terms: list[str] | tuple[str, ...] = ("mge",),
        frames: int | None = 200,
        mge: MGELoss | dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        terms = list(terms)
        unknown = [t for t in terms if t not in FEATURE_TERMS]
        if unknown:
            raise ConfigError(
                f"loss.weights.{unknown[0]}: MGEFeatureTask has no loss term {unknown[0]!r} "
                f"(known: {', '.join(FEATURE_TERMS)})"
            )
        if not terms:
            raise ConfigError(f"loss.weights: empty; give a weight to one of {', '.join(FEATURE_TERMS)}")
        if frames is not None and frames < 1:
            raise ConfigError(f"loss.frames: must be >= 1 or null, got {frames}")
        if not isinstance(model, FeatureConverter):
            raise ConfigError(f"model: MGEFeatureTask trains a FeatureConverter, got {type(model).__name__}")
        require_lpcnet_frames(features, "the feature converter")
        if model.out_dim != features.n_mels:
            raise ConfigError(
                f"model.out_dim={model.out_dim} differs from data.features.n_mels={features.n_mels}"
            )
        if mge is None:
            mge = MGELoss(windows=model.windows)
        elif not isinstance(mge, MGELoss):
            try:
                mge = MGELoss(**mge)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"loss.mge: {exc}") from None
        if not _same_windows(mge.windows, model.windows):
            raise ConfigError(
                f"loss.mge.windows {_show(mge.windows)} differ from the converter's windows "
                f"{_show(model.windows)}; set model.windows to the same list"
            )
        self.model = model
        self.cache_dir = Path(cache_dir)
        self.features = features
        self.terms = tuple(terms)
        self.frames = frames
        self.mge_loss = mge
        stats = load_stats(self.cache_dir)
        n_features = stats["features_mean"].shape[0]
        if model.in_dim != n_features:
            raise ConfigError(f"model.in_dim={model.in_dim} differs from the cache's {n_features} features")
        model.set_normalization(
            stats["features_mean"], stats["features_std"], stats["mel_mean"], stats["mel_std"]
        )
        self._datasets: dict[str, FeatureMelSegments] = {}

    # ----------------------------------------------------------------------------- data
    def train_dataset(self, split: str) -> FeatureMelSegments:
        """Crops of ``frames`` frames for ``train``; whole utterances for the other splits."""
        if split not in self._datasets:
            tracks = []
            for uid in read_split(self.cache_dir, split):
                utt = load_utterance(self.cache_dir, uid)  # the waveform and LPC are not kept
                tracks.append(_FeatureTrack(uid, utt.features, utt.mel))
            self._datasets[split] = FeatureMelSegments(tracks, self.frames if split == "train" else None)
        return self._datasets[split]

    def collate(self, items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        return collate_padded(items)

    def batch_num_samples(self, batch: dict[str, torch.Tensor]) -> int:
        """Audio samples the batch's valid frames stand for (frames · hop)."""
        return int(batch["lengths"].sum()) * self.features.hop_length

    # ----------------------------------------------------------------------------- losses
    def _terms(self, model: FeatureConverter, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        lengths = batch["lengths"]
        means = model(batch["features"], lengths)
        # MLPG is a sequential banded solve: keep it (and the losses) in float32 under bf16 autocast
        with torch.autocast(device_type=means.device.type, enabled=False):
            means = means.float()
            target = model.normalize_mel(batch["mel"].float())
            terms: dict[str, torch.Tensor] = {}
            if "mge" in self.terms:
                terms["mge"] = self.mge_loss(means, target, lengths)
            if "mse_static" in self.terms:
                static = means[..., : model.out_dim]
                error = mask_padding(static - target, lengths).square()
                terms["mse_static"] = error.sum() / (lengths.sum().clamp_min(1) * model.out_dim)
            if "mse_windows" in self.terms:
                natural, weight = natural_window_features(target, model.windows, lengths)
                error = (means - natural).square() * weight
                terms["mse_windows"] = error.sum() / weight.sum().clamp_min(1)
            if "lsd_db" in self.terms:
                # a second MLPG when mge is named too (MGELoss keeps its own): ~5% of a CPU step
                generated = model.generate(means, lengths)
                decibels = DB_PER_NEPER * (generated - target) * model.mel_std
                mean_square = decibels.square().mean(dim=-1)  # (B, T)
                # floored inside the root so that a frame generated exactly has a finite gradient
                per_frame = mean_square.clamp_min(torch.finfo(mean_square.dtype).tiny).sqrt()
                valid = frame_mask(lengths, *per_frame.shape, per_frame.device)
                terms["lsd_db"] = per_frame[valid].mean()
        return terms

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        return self._terms(self.model, batch)

    @torch.no_grad()
    def validation_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self._terms(model, batch)


def natural_window_features(
    static: torch.Tensor,
    windows: Sequence[tuple[int, int, tuple[float, ...]]],
    lengths: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Static + dynamic features of natural trajectories, and which of them MLPG takes into account.

    Window ``k`` maps ``y`` to ``sum_m c[m] y[t + m - left]`` with frames outside the sequence
    dropped (:mod:`vocoder.losses._mlpg`'s truncated windows); MLPG gives the dynamic features within
    ``max(left, right)`` frames of either end zero precision, so their weight here is 0.

    Args:
        static: (B, T, D) natural static features (padding past ``lengths`` is ignored).
        windows: K normalized windows, the static one first.
        lengths: (B,) valid frames per sequence (``None``: all T).

    Returns:
        ``(features, weight)``: (B, T, K · D) window-major features and (B, T, K · D) 0/1 weights
        (0 on padding and on the dynamic features of edge frames).
    """
    B, T, D = static.shape
    valid = frame_mask(lengths, B, T, static.device)
    static = torch.where(valid[..., None], static, 0.0)  # reads past the end see nothing
    lengths_t = valid.sum(dim=1)
    edge = max(max(left, right) for left, right, _ in windows)
    frames = torch.arange(T, device=static.device)[None, :]
    interior = valid & (frames >= edge) & (frames < lengths_t[:, None] - edge)
    features, weights = [], []
    for k, (left, right, coefficients) in enumerate(windows):
        padded = nn.functional.pad(static, (0, 0, left, right))  # zeros: the truncated window
        applied = sum(c * padded[:, m : m + T] for m, c in enumerate(coefficients) if c != 0.0)
        features.append(applied if torch.is_tensor(applied) else torch.zeros_like(static))
        weights.append((valid if k == 0 else interior)[..., None].expand(B, T, D))
    return torch.cat(features, dim=-1), torch.cat(weights, dim=-1).to(static.dtype)


def require_lpcnet_frames(features: FeatureSettings, what: str) -> None:
    """Refuse (one line) data whose frames are not 10 ms long: LPCNet's features do not exist there.

    Args:
        features: the data's feature settings.
        what: the model or stream that needs them (for the message).

    Raises:
        ConfigError: naming ``data.features.hop_length`` and the value that gives 10 ms frames.
    """
    if not features.lpcnet_frames:
        ten_ms = features.sample_rate / 100
        fix = (
            f"set data.features.hop_length={int(ten_ms)} (10 ms at {features.sample_rate} Hz)"
            if ten_ms == int(ten_ms)
            else "use a sample rate with whole 10 ms frames (16000, 24000, 44100, 48000 Hz)"
        )
        raise ConfigError(
            f"data.features.hop_length={features.hop_length}: {what} needs LPCNet's features, which exist "
            f"for 10 ms frames only; {fix}"
        )


def _same_windows(
    first: Sequence[tuple[int, int, tuple[float, ...]]], second: Sequence[tuple[int, int, tuple[float, ...]]]
) -> bool:
    """Equal extents and coefficients equal up to float rounding (YAML decimals vs computed windows)."""
    return len(first) == len(second) and all(
        a[:2] == b[:2] and np.allclose(a[2], b[2], rtol=1e-9, atol=1e-12)
        for a, b in zip(first, second, strict=True)
    )


def _show(windows: Sequence[tuple[int, int, tuple[float, ...]]]) -> str:
    """Windows as the YAML lists they are written as."""
    return str([[left, right, list(coefficients)] for left, right, coefficients in windows])


def load_feature_converter(
    checkpoint: str | Path, use_ema: bool = True, device: str | torch.device = "cpu"
) -> FeatureConverter:
    """Rebuild a trained :class:`vocoder.models.FeatureConverter` from a ``vocoder-train`` checkpoint.

    Args:
        checkpoint: a checkpoint written while training ``recipe=slt_mge_mel`` (or any config whose
            model is a FeatureConverter), its weights file, or ``pretrained:NAME``.
        use_ema: load the EMA weights (default) rather than the raw ones.
        device: where the converter lives.

    Returns:
        The converter in eval mode, with the normalization statistics it was trained with; its
        :meth:`~vocoder.models.FeatureConverter.infer` gives log-mel in the cache's units.

    Raises:
        CheckpointError: one line, for a missing, unreadable or foreign checkpoint.
    """
    model, _ = rebuild_model(checkpoint, use_ema=use_ema, device=device, expect=FeatureConverter.__name__)
    return model
