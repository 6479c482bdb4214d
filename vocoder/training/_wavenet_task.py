"""The WaveNet teacher's training module, and the mel-segment plumbing shared with the IAF student.

Mel normalization (a documented choice): the networks take the cache's log-mel normalized per band,
``(mel - mel_mean) / mel_std`` with the train split's statistics (``stats.npz``). The networks have
no normalization buffers of their own, so the training module normalizes (its statistics are
non-persistent buffers that follow ``.to(device)``) and hands the statistics to the trainer as extra
state: every checkpoint carries them in ``checkpoint["module"]["mel_mean" / "mel_std"]``, a resume
restores them, and :func:`vocoder.inference.load` gives them to the vocoder, so a network is usable
from its checkpoint alone. A frozen teacher in distillation is fed with the statistics of its own
checkpoint, the student with those of its cache.
"""

from __future__ import annotations

import abc
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vocoder.data import FeatureSettings, MelSegments, load_stats, load_utterance, read_split
from vocoder.errors import ConfigError
from vocoder.layers import shift_right
from vocoder.losses import discretized_mix_logistic_nll, quantize_to_levels
from vocoder.training._module import Example, TrainingModule


def normalize_mel(mel: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Per-band standardization of a channels-first log-mel.

    Args:
        mel: (B, n_mels, F) natural-log mel magnitude.
        mean: (n_mels,) per-band mean.
        std: (n_mels,) per-band standard deviation (> 0).

    Returns:
        (B, n_mels, F) normalized log-mel.
    """
    return (mel - mean[:, None]) / std[:, None]


def history_frames_for(receptive_field: int, hop_length: int) -> int:
    """Whole frames of past that cover a causal network's receptive field.

    Args:
        receptive_field: samples an output depends on, the current one included.
        hop_length: samples per frame.

    Returns:
        ``ceil((receptive_field - 1) / hop_length)``.
    """
    return math.ceil(max(receptive_field - 1, 0) / hop_length)


class MelConditionedTask(TrainingModule):
    """Shared data, normalization and example plumbing of mel-conditioned waveform models.

    Args:
        model: the network trained (``n_mels``, ``hop_length`` and ``receptive_field`` attributes).
        cache_dir: prepared feature cache.
        features: the cache's feature settings.
        frames: output frames per training segment (loss is taken on these).
        history_frames: frames of real past before each segment fed to the network but not scored;
            ``None`` covers the network's receptive field.
        example_seconds: length of the dev excerpts synthesized for TensorBoard.
    """

    def __init__(
        self,
        model: nn.Module,
        cache_dir: str,
        features: FeatureSettings,
        frames: int,
        history_frames: int | None,
        example_seconds: float,
    ) -> None:
        super().__init__()
        if model.n_mels != features.n_mels or model.hop_length != features.hop_length:
            raise ConfigError(
                f"model (n_mels={model.n_mels}, hop_length={model.hop_length}) does not match the data "
                f"(n_mels={features.n_mels}, hop_length={features.hop_length})"
            )
        if frames < 1:
            raise ConfigError(f"loss.frames: must be >= 1, got {frames}")
        self.model = model
        self.cache_dir = Path(cache_dir)
        self.features = features
        self.frames = frames
        if history_frames is None:
            history_frames = history_frames_for(model.receptive_field, features.hop_length)
        if history_frames < 0:
            raise ConfigError(f"loss.history_frames: must be >= 0 or null, got {history_frames}")
        self.history_frames = history_frames
        self.example_seconds = example_seconds
        stats = load_stats(self.cache_dir)
        self.register_buffer("mel_mean", torch.from_numpy(stats["mel_mean"]), persistent=False)
        self.register_buffer("mel_std", torch.from_numpy(stats["mel_std"]), persistent=False)
        self._datasets: dict[str, MelSegments] = {}

    # ----------------------------------------------------------------------------- data
    def train_dataset(self, split: str) -> MelSegments:
        if split not in self._datasets:
            utterances = [load_utterance(self.cache_dir, uid) for uid in read_split(self.cache_dir, split)]
            self._datasets[split] = MelSegments(
                utterances,
                frames=self.frames,
                hop_length=self.features.hop_length,
                history=self.history_frames,
                silence_mel=math.log(self.features.mel_floor),
                lookahead=self.lookahead_frames,
            )
        return self._datasets[split]

    @property
    def lookahead_frames(self) -> int:
        """Unscored frames after every training segment: what the model's conditioning reads ahead."""
        return int(getattr(self.model, "cond_lookahead_frames", 0))

    @property
    def history_samples(self) -> int:
        """Samples of unscored past at the start of every training segment."""
        return self.history_frames * self.features.hop_length

    def batch_num_samples(self, batch: dict[str, torch.Tensor]) -> int:
        return batch["audio"].shape[0] * self.frames * self.features.hop_length

    def normalize(self, mel: torch.Tensor) -> torch.Tensor:
        """The cache's log-mel (B, n_mels, F) normalized with this task's statistics."""
        return normalize_mel(mel, self.mel_mean, self.mel_std)

    # ----------------------------------------------------------------------------- state
    def extra_state(self) -> dict[str, Any]:
        return {name: getattr(self, name).detach().cpu().clone() for name in ("mel_mean", "mel_std")}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        # a resumed model keeps the statistics it was trained with, even if the cache was re-prepared
        for name in ("mel_mean", "mel_std"):
            if name in state:
                getattr(self, name).copy_(torch.as_tensor(state[name]))

    # ----------------------------------------------------------------------------- examples
    def example_excerpts(self, count: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """The first ``example_seconds`` of ``count`` dev utterances.

        Args:
            count: utterances (the first ones of the dev split).

        Returns:
            ``(id, mel (T, n_mels), audio (T · hop,))`` triples.
        """
        hop = self.features.hop_length
        frames = max(1, round(self.example_seconds * self.features.sample_rate / hop))
        excerpts = []
        for uid in read_split(self.cache_dir, "dev")[:count]:
            utt = load_utterance(self.cache_dir, uid)
            mel = utt.mel[:frames]
            excerpts.append((uid, mel, utt.audio[: mel.shape[0] * hop]))
        return excerpts

    def example_mel(self, mel: np.ndarray) -> torch.Tensor:
        """A cached (T, n_mels) log-mel as the normalized (1, n_mels, T) network input."""
        tensor = torch.from_numpy(np.ascontiguousarray(mel.T)).unsqueeze(0).to(self.mel_mean.device)
        return self.normalize(tensor)

    @abc.abstractmethod
    def generate_example(self, model: nn.Module, mel: torch.Tensor) -> torch.Tensor:
        """One waveform (N,) from a normalized (1, n_mels, F) log-mel (the model family's synthesis)."""

    @torch.no_grad()
    def synthesize_examples(self, model: nn.Module, count: int) -> list[Example]:
        if self.example_seconds <= 0:
            return []
        return [
            Example(
                name=uid,
                audio=self.generate_example(model, self.example_mel(mel)).float().cpu().numpy(),
                reference=reference,
                sample_rate=self.features.sample_rate,
            )
            for uid, mel, reference in self.example_excerpts(count)
        ]


class WaveNetTask(MelConditionedTask):
    """Trains :class:`vocoder.models.WaveNetTeacher` by teacher forcing.

    Loss terms: ``nll`` — discretized mixture-of-logistics negative log-likelihood (nats per sample)
    of the waveform quantized to the model's ``2**bits`` levels (:func:`vocoder.losses.quantize_to_levels`),
    with the quantized waveform delayed by one sample as the network input (the values generation
    feeds back).

    Args:
        model: the WaveNet teacher.
        cache_dir: prepared feature cache.
        features: the cache's feature settings.
        frames: scored frames per training segment.
        history_frames: unscored frames of past per segment (``None``: the receptive field).
        example_seconds: length of the dev excerpts generated for TensorBoard. Autoregressive
            generation runs one sample at a time (tens of seconds per second of audio for a small
            teacher on a CPU core), so keep this short; 0 turns teacher examples off.
    """

    def __init__(
        self,
        model: nn.Module,
        cache_dir: str,
        features: FeatureSettings,
        frames: int = 20,
        history_frames: int | None = None,
        example_seconds: float = 0.25,
    ) -> None:
        super().__init__(model, cache_dir, features, frames, history_frames, example_seconds)

    def _nll(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        target = quantize_to_levels(batch["audio"], model.bits)
        params = model(shift_right(target), self.normalize(batch["mel"]))
        start = self.history_samples
        return discretized_mix_logistic_nll(params[:, :, start:].float(), target[:, start:], model.bits)

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        return {"nll": self._nll(self.model, batch)}

    @torch.no_grad()
    def validation_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"nll": self._nll(model, batch)}

    def generate_example(self, model: nn.Module, mel: torch.Tensor) -> torch.Tensor:
        return model.generate(mel)[0]
