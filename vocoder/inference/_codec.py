"""A trained feature autoencoder used as a codec in front of a vocoder.

``vocoder-synth checkpoint=pretrained:kathleen_lpcnet codec=exp/ae/checkpoints/last.pt input=…``
passes every utterance's conditioning through the autoencoder (encode → latent → decode) before
synthesis: what the vocoder sounds like when driven by ``latent_size`` values per latent frame — a
low-bitrate feature codec, or the features a latent front end would hand it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vocoder.checkpoints import load_weights, model_family, rebuild_model
from vocoder.inference._vocoders import SynthesisError, Vocoder

#: model classes a codec can be rebuilt as
FEATURE_AUTOENCODERS = ("FeatureAutoencoder", "VariationalFeatureAutoencoder")

#: the autoencoder's training stream (``loss.stream``) → the vocoders' conditioning key it can feed
_STREAM_KEYS = {"features": "features", "mel": "mel"}


class FeatureCodec:
    """A :class:`vocoder.models.FeatureAutoencoder` (or the variational one) on ``(T, D)`` arrays.

    Args:
        model: the autoencoder with its trained weights (normalization buffers included).
        stream: the conditioning it was trained on: ``features`` (LPCNet's 20) or ``mel``.
    """

    def __init__(self, model: torch.nn.Module, stream: str = "features") -> None:
        if stream not in _STREAM_KEYS:
            raise SynthesisError(f"codec stream {stream!r}: must be one of {', '.join(_STREAM_KEYS)}")
        self.model = model.eval()
        self.stream = stream

    @property
    def input_size(self) -> int:
        return int(self.model.input_size)

    @property
    def latent_size(self) -> int:
        return int(self.model.latent_size)

    @property
    def downsample(self) -> int:
        return int(self.model.downsample)

    @classmethod
    def load(cls, checkpoint: str | Path, use_ema: bool = True) -> FeatureCodec:
        """Rebuild the autoencoder of a ``slt_feature_ae`` checkpoint (or weights file).

        Raises:
            SynthesisError / CheckpointError: one line naming the checkpoint.
        """
        from vocoder.models import FeatureAutoencoder

        label = f"codec={checkpoint}"
        state = load_weights(checkpoint)
        _, target = model_family(state["config"], label)
        family = target.rsplit(".", 1)[-1]
        if family not in FEATURE_AUTOENCODERS:
            raise SynthesisError(f"{label}: holds a {family}, not a feature autoencoder "
                                 "(train one with recipe=slt_feature_ae)")
        model, state = rebuild_model(checkpoint, use_ema=use_ema, label=label, state=state)
        if not isinstance(model, FeatureAutoencoder):
            raise SynthesisError(f"{label}: holds a {family}, not a feature autoencoder "
                                 "(train one with recipe=slt_feature_ae)")
        config = state["config"]
        loss_cfg = config.get("loss") or {}
        return cls(model, str(loss_cfg.get("stream", "features")))

    def _check(self, x: np.ndarray, what: str) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        size = self.input_size if what == "features" else self.latent_size
        if x.ndim != 2 or x.shape[1] != size:
            raise SynthesisError(f"codec: {what} must be (T, {size}), got shape {x.shape}")
        return x

    @torch.no_grad()
    def encode(self, features: np.ndarray) -> np.ndarray:
        """``(T, D)`` conditioning → ``(⌈T / downsample⌉, latent_size)`` latent (the posterior mean for a VAE)."""
        x = torch.from_numpy(self._check(features, "features"))[None]
        return self.model.encode(x)[0].numpy()

    @torch.no_grad()
    def decode(self, latent: np.ndarray, frames: int | None = None) -> np.ndarray:
        """``(T', latent_size)`` latent → ``(frames, D)`` conditioning (``frames`` defaults to ``T' · downsample``)."""
        z = torch.from_numpy(self._check(latent, "latent"))[None]
        return self.model.decode(z, frames=frames)[0].numpy()

    def roundtrip(self, features: np.ndarray) -> np.ndarray:
        """Encode and decode: the conditioning a vocoder gets through this codec (same length)."""
        return self.decode(self.encode(features), frames=len(features))


class CodedVocoder(Vocoder):
    """A vocoder whose conditioning passes through a :class:`FeatureCodec` first.

    Analysis (copy synthesis) is the wrapped vocoder's; :meth:`synthesize` decodes what the codec
    makes of each conditioning and hands it on.
    """

    def __init__(self, vocoder: Vocoder, codec: FeatureCodec) -> None:
        key = _STREAM_KEYS[codec.stream]
        if key != vocoder.conditioning_key:
            raise SynthesisError(f"codec: trained on {codec.stream} but the vocoder is conditioned on "
                                 f"{vocoder.conditioning_key} (train the autoencoder with loss.stream="
                                 f"{vocoder.conditioning_key})")
        self.inner = vocoder
        self.codec = codec
        self.conditioning_key = vocoder.conditioning_key  # type: ignore[misc]
        self.batched = vocoder.batched  # type: ignore[misc]
        super().__init__(vocoder.model, vocoder.features)

    def analyze(self, wave: np.ndarray) -> np.ndarray:
        return self.inner.analyze(wave)

    def synthesize(self, conditioning: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
        width = conditioning[0].shape[-1] if conditioning else self.codec.input_size
        if width != self.codec.input_size:
            raise SynthesisError(f"codec: takes {self.codec.input_size} values per frame, the inputs have {width}")
        return self.inner.synthesize([self.codec.roundtrip(c) for c in conditioning], seed=seed)
