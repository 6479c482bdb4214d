"""LPCNet's training module: segments → noise injection → teacher forcing → excitation cross-entropy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vocoder.data import (
    AugmentSettings,
    FeatureSettings,
    LPCNetSegments,
    load_stats,
    load_utterance,
    read_split,
)
from vocoder.dsp import excitation16_encode
from vocoder.errors import ConfigError
from vocoder.layers import tree_log_likelihood
from vocoder.training._module import Example, TrainingModule
from vocoder.training._noise import (
    ExcitationNoise,
    MulawNoiseInjection,
    excitation_noise_inputs,
    lpcnet_training_inputs,
)

#: Where LPCNet's training noise goes: ``excitation`` (xiph's codes, :class:`ExcitationNoise`) or
#: ``signal`` (the signal's μ-law value, :class:`MulawNoiseInjection`).
NOISE_DOMAINS = ("excitation", "signal")

#: mean GRU_A block density at or below which training uses the block-sparse recurrence
SPARSE_TRAINING_DENSITY = 0.5


class LPCNetTask(TrainingModule):
    """Trains :class:`vocoder.models.LPCNet` the paper's way.

    Loss terms: ``excitation_ce`` (cross-entropy of the μ-law excitation e_t; with the model's
    ``tree`` head −log Π σ(±logit) over the code's 8 tree nodes; with the ``dual_softmax`` head, of the
    16-bit linear excitation as p(coarse) · p(fine | coarse)).

    Args:
        model: the LPCNet network (its normalization buffers are set from the cache's statistics).
        cache_dir: prepared feature cache.
        features: the cache's feature settings.
        frames: output frames per training segment (15 → 2,400 samples at hop 160).
        history: waveform samples of past before each segment (≥ LPC order + 1).
        noise: ``domain`` (:data:`NOISE_DOMAINS`; ``excitation`` = xiph's recipe) plus the keyword
            arguments of :class:`ExcitationNoise` (``scale``, ``distribution``, ``schedule``) or, for
            ``signal``, of :class:`MulawNoiseInjection` (bits come from the features).
        sparsify: block-sparse pruning of GRU_A's recurrent weights (``enabled``, ``start``, ``end``,
            ``interval``, ``targets`` per gate ``update``/``reset``/``candidate``, ``block``); see
            :class:`vocoder.layers.BlockSparsifier`.
        example_seconds: length of the dev excerpts synthesized for TensorBoard.
        augment: :class:`vocoder.data.AugmentSettings` keyword arguments (``data.augment``): xiph's
            gain/filter augmentation of the *train* segments.
    """

    def __init__(
        self,
        model: nn.Module,
        cache_dir: str,
        features: FeatureSettings,
        frames: int = 15,
        history: int = 160,
        noise: dict[str, Any] | None = None,
        sparsify: dict[str, Any] | None = None,
        example_seconds: float = 2.0,
        augment: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not features.lpcnet_native:
            raise ConfigError(
                f"data.features.sample_rate={features.sample_rate}, hop_length={features.hop_length}: LPCNet "
                f"is xiph's 16 kHz model (10 ms frames of 160 samples); prepare the corpus with "
                f"data.features.sample_rate=16000 (it is resampled to 16 kHz)"
            )
        self.model = model
        self.quantizer = model.mulaw_quantizer  # the μ-law codes of inputs and target, as the model reads them
        self.cache_dir = Path(cache_dir)
        self.features = features
        self.frames = frames
        self.history = history
        self.example_seconds = example_seconds
        self.augment = AugmentSettings(**dict(augment or {}))
        noise = dict(noise or {})
        self.noise_domain = noise.pop("domain", "excitation")
        if self.noise_domain not in NOISE_DOMAINS:
            raise ValueError(f"noise.domain must be one of {NOISE_DOMAINS}, got {self.noise_domain!r}")
        if self.noise_domain == "excitation":
            self.noise = ExcitationNoise(**noise)
        else:  # the earlier recipe; the schedule maps onto its per-utterance random scale
            schedule = noise.pop("schedule", None)
            if schedule is not None:
                if schedule not in ("uniform", "fixed"):
                    raise ValueError(f"noise.schedule={schedule!r}: the signal domain supports uniform | fixed")
                noise.setdefault("random_scale", schedule == "uniform")
            self.noise = MulawNoiseInjection(bits=features.mulaw_bits, **noise)
        stats = load_stats(self.cache_dir)
        model.set_normalization(torch.from_numpy(stats["features_mean"]), torch.from_numpy(stats["features_std"]))
        from vocoder.layers import BlockSparsifier

        sparsify = dict(sparsify or {})
        self.sparsifier = (
            BlockSparsifier.for_gru(model.gru_a, **sparsify) if sparsify.pop("enabled", True) else None
        )
        self._datasets: dict[str, LPCNetSegments] = {}

    # ----------------------------------------------------------------------------- data
    def train_dataset(self, split: str) -> LPCNetSegments:
        if split not in self._datasets:
            utterances = [load_utterance(self.cache_dir, uid) for uid in read_split(self.cache_dir, split)]
            self._datasets[split] = LPCNetSegments(
                utterances, frames=self.frames, hop_length=self.features.hop_length, history=self.history,
                preemphasis_alpha=self.features.preemphasis,
                augment=self.augment if split == "train" else None, lpc_order=self.features.lpc_order,
            )
        return self._datasets[split]

    def batch_num_samples(self, batch: dict[str, torch.Tensor]) -> int:
        return batch["signal"].shape[0] * (batch["signal"].shape[1] - self.history)

    # ----------------------------------------------------------------------------- losses
    def _excitation_ce(self, model: nn.Module, batch: dict[str, torch.Tensor], noisy: bool) -> torch.Tensor:
        clean = batch["signal"]
        if self.noise_domain == "excitation":
            # validation keeps the quantization error in the past (as synthesis has it), no noise
            codes = (self.noise.sample_codes(tuple(clean.shape)) if noisy
                     else torch.zeros(clean.shape, dtype=torch.int64))
            inputs = excitation_noise_inputs(clean, batch["lpc"], codes, self.features.hop_length, self.history,
                                             bits=self.features.mulaw_bits, quantizer=self.quantizer)
        else:
            corrupted = self.noise(clean) if noisy else clean
            inputs = lpcnet_training_inputs(clean, corrupted, batch["lpc"], self.features.hop_length,
                                            self.history, bits=self.features.mulaw_bits, quantizer=self.quantizer)
        out = model(batch["features"], inputs["signal_in"], inputs["prediction"], inputs["excitation_in"])
        if getattr(model, "output_head", "dualfc") == "dual_softmax":
            # 16-bit linear excitation of the clean sample minus the (noisy-past) prediction
            target = excitation16_encode(clean[:, self.history:].double() - inputs["prediction_value"])
            return model.dual_softmax.nll(out, target.to(out.device))
        if getattr(model, "output_head", "dualfc") == "tree":
            return -tree_log_likelihood(out.float(), inputs["target"].to(out.device)).mean()
        return F.cross_entropy(out.reshape(-1, out.shape[-1]).float(), inputs["target"].reshape(-1))

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        return {"excitation_ce": self._excitation_ce(self.model, batch, noisy=True)}

    @torch.no_grad()
    def validation_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"excitation_ce": self._excitation_ce(model, batch, noisy=False)}

    # ----------------------------------------------------------------------------- sparsity
    def after_optimizer_step(self, step: int) -> dict[str, float]:
        if self.sparsifier is None:
            return {}
        self.sparsifier.step(step)
        self._sync_sparse_training()
        return {f"density/{gate}": value for gate, value in self.sparsifier.densities().items()}

    def _sync_sparse_training(self) -> None:
        """Let GRU_A's recurrence skip the pruned blocks whenever the weights are exactly masked.

        That is from the first mask update on without regrowth, and from the schedule's end on with
        it (then the pruned weights still get their gradients, to regrow). Decided from the
        sparsifier's state alone, so an interrupted and resumed run takes the same path.
        """
        sparsifier = self.sparsifier
        last = int(sparsifier.last_update)
        held = last >= 0 and (not sparsifier.regrow or last >= sparsifier.end)
        densities = sparsifier.densities()
        # the block products pay off well below full density; above it the dense GEMMs are faster
        sparse = held and sum(densities.values()) / len(densities) <= SPARSE_TRAINING_DENSITY
        mask = sparsifier.mask(sparsifier.targets[0]) if sparse else None
        self.model.set_gru_a_mask(mask, dense_weight_grad=sparsifier.regrow)

    def after_ema_update(self, ema_model: nn.Module) -> None:
        # the EMA follows the raw weights' trajectory: masked exactly when they were (regrowing runs
        # only at the pruning steps), never held at a mask the raw weights have grown out of
        if self.sparsifier is not None and self.sparsifier.applied:
            self.sparsifier.apply_masks_to(ema_model.gru_a)

    def extra_state(self) -> dict[str, Any]:
        return {"sparsifier": self.sparsifier.state_dict()} if self.sparsifier is not None else {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if self.sparsifier is not None and "sparsifier" in state:
            self.sparsifier.load_state_dict(state["sparsifier"])
            self._sync_sparse_training()

    # ----------------------------------------------------------------------------- examples
    @torch.no_grad()
    def synthesize_examples(self, model: nn.Module, count: int) -> list[Example]:
        from vocoder.inference import lpcnet_synthesize

        examples = []
        frames = int(self.example_seconds * self.features.sample_rate / self.features.hop_length)
        for uid in read_split(self.cache_dir, "dev")[:count]:
            utt = load_utterance(self.cache_dir, uid)
            feats = utt.features[:frames]
            backend = "torch" if getattr(model, "output_head", "dualfc") == "dual_softmax" else "fast"
            audio = lpcnet_synthesize(model, feats, lpc=utt.lpc[:frames], seed=0, backend=backend)
            examples.append(Example(name=uid, audio=np.asarray(audio), reference=utt.audio[: len(audio)],
                                    sample_rate=self.features.sample_rate))
        return examples
