"""Training module of the feature autoencoders (:class:`vocoder.models.FeatureAutoencoder` and its
variational sibling) on a prepared cache's LPCNet features or log-mel.

Data: random crops of ``frames`` frames of each utterance's ``features`` (T, 20) or ``mel``
(T, n_mels) (``stream``); the dev split (validation) gives whole utterances. Batches are padded and
carry ``lengths``; every term ignores the padding.

Terms, each computed only when named in ``terms`` (the keys of ``loss.weights``):

* ``rec`` — MSE between reconstruction and input, both standardized per dimension with the cache's
  statistics (the model's buffers), over valid frames and all dimensions;
* ``kl`` — ``KL(q(z | x) ‖ N(0, I))`` in nats per latent frame (variational model only);
* ``feature_consistency`` — a :class:`vocoder.training.FeatureConsistencyLoss` (``consistency``)
  between decoded and natural features, e.g. through a pretrained LPCNet's frozen frame-rate network.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from vocoder.data import FeatureSettings, load_stats, load_utterance, read_split
from vocoder.errors import ConfigError
from vocoder.models import FeatureAutoencoder, VariationalFeatureAutoencoder, masked_mean
from vocoder.training._feature_task import (
    FeatureMelSegments,
    _FeatureTrack,
    collate_padded,
    require_lpcnet_frames,
)
from vocoder.training._frozen import FeatureConsistencyLoss
from vocoder.training._module import TrainingModule

AUTOENCODER_TERMS = ("rec", "kl", "feature_consistency")
STREAMS = ("features", "mel")


class FeatureAutoencoderTask(TrainingModule):
    """Trains a feature autoencoder: reconstruction (+ KL, + feature consistency) as named terms.

    Args:
        model: a :class:`vocoder.models.FeatureAutoencoder` or ``VariationalFeatureAutoencoder``.
        cache_dir: prepared feature cache.
        features: the cache's feature settings.
        terms: loss terms to compute (the keys of ``loss.weights``).
        stream: ``features`` (LPCNet's 20) or ``mel`` (the cache's log-mel).
        frames: frames per training crop (``None``: whole utterances).
        consistency: the ``feature_consistency`` term's loss (needed when that term is named; the
            LPCNet frame-rate network expects ``stream=features``).
    """

    def __init__(
        self,
        model: nn.Module,
        cache_dir: str,
        features: FeatureSettings,
        terms: list[str] | tuple[str, ...] = ("rec",),
        stream: str = "features",
        frames: int | None = 200,
        consistency: FeatureConsistencyLoss | None = None,
    ) -> None:
        super().__init__()
        terms = list(terms)
        unknown = [t for t in terms if t not in AUTOENCODER_TERMS]
        if unknown:
            raise ConfigError(
                f"loss.weights.{unknown[0]}: FeatureAutoencoderTask has no loss term {unknown[0]!r} "
                f"(known: {', '.join(AUTOENCODER_TERMS)})"
            )
        if not isinstance(model, FeatureAutoencoder):
            raise ConfigError(f"model: this task trains a FeatureAutoencoder, not {type(model).__name__}")
        if "kl" in terms and not isinstance(model, VariationalFeatureAutoencoder):
            raise ConfigError("loss.weights.kl: needs model=feature_vae (a VariationalFeatureAutoencoder)")
        if "feature_consistency" in terms and consistency is None:
            raise ConfigError(
                "loss.weights.feature_consistency: needs loss.consistency (loss/terms/feature_consistency)"
            )
        if stream not in STREAMS:
            raise ConfigError(f"loss.stream: expected one of {', '.join(STREAMS)}, got {stream!r}")
        if stream == "features":
            require_lpcnet_frames(features, "loss.stream=features")
        if frames is not None and frames < 1:
            raise ConfigError(f"loss.frames: must be >= 1 or null, got {frames}")
        self.model = model
        self.cache_dir = Path(cache_dir)
        self.features = features
        self.terms = tuple(terms)
        self.stream = stream
        self.frames = frames
        self.consistency = consistency if "feature_consistency" in terms else None
        stats = load_stats(self.cache_dir)
        mean, std = stats[f"{stream}_mean"], stats[f"{stream}_std"]
        if model.input_size != mean.shape[0]:
            raise ConfigError(
                f"model.input_size={model.input_size} differs from the cache's {mean.shape[0]} {stream}"
            )
        model.set_normalization(mean, std)
        self._datasets: dict[str, FeatureMelSegments] = {}

    def train_dataset(self, split: str) -> FeatureMelSegments:
        """Crops of ``frames`` frames for ``train``; whole utterances for the other splits."""
        if split not in self._datasets:
            tracks = []
            for uid in read_split(self.cache_dir, split):
                utt = load_utterance(self.cache_dir, uid)
                tracks.append(_FeatureTrack(uid, utt.features, utt.mel))
            self._datasets[split] = FeatureMelSegments(tracks, self.frames if split == "train" else None)
        return self._datasets[split]

    def collate(self, items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        return collate_padded(items)

    def batch_num_samples(self, batch: dict[str, torch.Tensor]) -> int:
        return int(batch["lengths"].sum()) * self.features.hop_length

    def _terms(self, model: FeatureAutoencoder, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x, lengths = batch[self.stream].float(), batch["lengths"]
        output = model.train_sample(x, lengths)
        terms: dict[str, torch.Tensor] = {}
        if "rec" in self.terms:
            error = (model.normalize(output.rec.float()) - model.normalize(x)).square()
            terms["rec"] = masked_mean(error, lengths)
        if "kl" in self.terms:
            terms["kl"] = model.kl(output)
        if "feature_consistency" in self.terms:
            terms["feature_consistency"] = self.consistency(output.rec.float(), x, lengths)
        return terms

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        return self._terms(self.model, batch)

    @torch.no_grad()
    def validation_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self._terms(model, batch)
