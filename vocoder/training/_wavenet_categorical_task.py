"""The WaveNet teacher's training module for its 16-bit categorical output (``output_head=dual_softmax``)."""

from __future__ import annotations

import torch
from torch import nn

from vocoder.data import FeatureSettings
from vocoder.errors import ConfigError
from vocoder.layers import shift_right
from vocoder.losses import quantize_to_levels
from vocoder.training._wavenet_task import WaveNetTask


class WaveNetDualSoftmaxTask(WaveNetTask):
    """Trains a :class:`vocoder.models.WaveNetTeacher` with ``output_head=dual_softmax`` by teacher forcing.

    Loss term ``nll``: ``-log p(coarse) - log p(fine | coarse)`` of the waveform quantized to the
    model's ``2**bits`` levels (nats per sample, the same units as the logistic head's ``nll``, so the
    two heads' validation losses compare directly). Arguments as :class:`WaveNetTask`.
    """

    def __init__(self, model: nn.Module, cache_dir: str, features: FeatureSettings, **options) -> None:
        if getattr(model, "output_head", None) != "dual_softmax":
            raise ConfigError(
                "model.output_head: loss=wavenet_dual_softmax trains output_head=dual_softmax "
                f"(got {getattr(model, 'output_head', type(model).__name__)!r}); use loss=wavenet otherwise"
            )
        super().__init__(model, cache_dir, features, **options)

    def _nll(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        target = quantize_to_levels(batch["audio"], model.bits)
        outputs = model(shift_right(target), self.normalize(batch["mel"]))
        start = self.history_samples
        return -model.log_prob(outputs[:, :, start:], target[:, start:]).mean()
