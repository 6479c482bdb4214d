"""Synthesis from a trainer checkpoint: ``vocoder.inference.load(path).synthesize(...)``.

The checkpoint carries the resolved config, so the network is rebuilt from it (``config.model``
with its ``_target_``), the EMA weights are loaded, and the feature settings of the data it was
trained on decide how conditioning is computed from a waveform (copy synthesis).
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from vocoder.data._settings import FeatureSettings


class SynthesisError(RuntimeError):
    """A checkpoint or input that cannot be synthesized from; one line naming it."""


class Vocoder(abc.ABC):
    """A trained network plus its feature settings: conditioning in, waveform out.

    Args:
        model: the network, in eval mode.
        features: feature settings of the data it was trained on.
    """

    #: conditioning kind read from a prepared cache entry (``features`` or ``mel``)
    conditioning_key: ClassVar[str]
    #: whether several utterances can be synthesized in one call
    batched: ClassVar[bool] = True

    def __init__(self, model: nn.Module, features: FeatureSettings) -> None:
        self.model = model.eval()
        self.features = features

    @property
    def sample_rate(self) -> int:
        return self.features.sample_rate

    @abc.abstractmethod
    def analyze(self, wave: np.ndarray) -> np.ndarray:
        """Conditioning ``(T, C)`` of a waveform at :attr:`sample_rate` (copy synthesis)."""

    @abc.abstractmethod
    def synthesize(self, conditioning: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
        """Waveforms (float32, ``T · hop`` samples each) for a list of ``(T, C)`` conditionings."""

    def copy_synthesize(self, waves: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
        """Analyze and resynthesize waveforms."""
        return self.synthesize([self.analyze(w) for w in waves], seed=seed)


def _pad_frames(items: list[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """Stack ``(T_i, C)`` arrays into ``(B, max T, C)`` by repeating each last frame."""
    lengths = [len(x) for x in items]
    longest = max(lengths)
    batch = np.stack([np.concatenate([x, np.repeat(x[-1:], longest - len(x), axis=0)]) for x in items])
    return batch, lengths


class LPCNetVocoder(Vocoder):
    """LPCNet: 20 features per 10 ms frame → waveform via the fast numba sampler."""

    conditioning_key = "features"

    def __init__(self, model: nn.Module, features: FeatureSettings, backend: str = "fast", threads: int = 1):
        super().__init__(model, features)
        self.backend = backend
        self.threads = threads

    def analyze(self, wave: np.ndarray) -> np.ndarray:
        from vocoder.dsp import lpcnet_features

        feats, _ = lpcnet_features(wave, self.sample_rate, self.features.preemphasis, self.features.lpc_order)
        return feats

    @torch.no_grad()
    def synthesize(self, conditioning: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
        from vocoder.inference._lpcnet_fast import lpcnet_synthesize

        batch, lengths = _pad_frames([np.asarray(c, dtype=np.float32) for c in conditioning])
        waves = lpcnet_synthesize(self.model, batch, seed=seed, backend=self.backend, threads=self.threads)
        hop = self.features.hop_length
        return [np.asarray(waves[i, : n * hop], dtype=np.float32) for i, n in enumerate(lengths)]


#: model class name → vocoder class; model families register here
VOCODERS: dict[str, type[Vocoder]] = {"LPCNet": LPCNetVocoder}


def load(checkpoint: str | Path, use_ema: bool = True, device: str = "cpu", **options: Any) -> Vocoder:
    """Rebuild the network of a trainer checkpoint and wrap it for synthesis.

    Args:
        checkpoint: path of a ``.pt`` written by the trainer.
        use_ema: load the EMA weights (default) rather than the raw ones.
        device: where the network lives.
        options: passed to the model family's :class:`Vocoder` (e.g. ``backend="torch"``).

    Raises:
        SynthesisError / CheckpointError: one-line messages.
    """
    from hydra.utils import instantiate

    from vocoder.training._checkpoint import describe_mismatch, load_checkpoint

    state = load_checkpoint(checkpoint, map_location=device)
    config = state["config"]
    try:
        model_cfg, feature_cfg = dict(config["model"]), dict(config["data"]["features"])
        target = model_cfg["_target_"]
    except (KeyError, TypeError):
        raise SynthesisError(f"{checkpoint}: checkpoint has no model/data config; was it written by vocoder-train?") from None
    family = target.rsplit(".", 1)[-1]
    if family not in VOCODERS:
        raise SynthesisError(f"{checkpoint}: unknown model {target!r}; known: {', '.join(sorted(VOCODERS))}")
    model = instantiate(model_cfg, _convert_="all")
    weights = state["ema" if use_ema else "model"]
    mismatch = describe_mismatch(model.state_dict(), weights)
    if mismatch:
        raise SynthesisError(f"{checkpoint}: weights do not fit {target} ({mismatch})")
    model.load_state_dict(weights)
    model.to(device)
    return VOCODERS[family](model, FeatureSettings(**feature_cfg), **options)
