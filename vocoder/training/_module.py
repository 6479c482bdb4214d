"""The contract between the model-agnostic :class:`~vocoder.training.Trainer` and a model family."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn


@dataclass
class Example:
    """One synthesized example for TensorBoard: generated audio and its natural reference."""

    name: str
    audio: np.ndarray
    reference: np.ndarray
    sample_rate: int
    scalars: dict[str, float] = field(default_factory=dict)


class TrainingModule(nn.Module, abc.ABC):
    """Turns batches into named loss terms for one model family.

    ``self.model`` is the network that is trained, averaged (EMA), checkpointed and synthesized from.
    Anything else held here (a frozen teacher, loss modules) is not part of the trained state.
    ``forward`` is the training step so that DistributedDataParallel can wrap the whole module.
    """

    model: nn.Module

    def forward(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        """Compute the named loss terms of a training batch (the trainer weights and sums them)."""
        return self.training_step(batch, step)

    @abc.abstractmethod
    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        """Named loss terms of one training batch; each a scalar tensor."""

    @abc.abstractmethod
    def validation_step(self, model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
        """Named loss terms of a validation batch computed with ``model`` (the EMA weights)."""

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters handed to the optimizer (by default those of ``self.model`` that require grad)."""
        return (p for p in self.model.parameters() if p.requires_grad)

    def after_optimizer_step(self, step: int) -> dict[str, float]:
        """Per-step model work after the optimizer update (e.g. sparsification); returns scalars to log."""
        return {}

    def after_ema_update(self, ema_model: nn.Module) -> None:
        """Keep the averaged copy consistent with structural constraints of the model (e.g. masks)."""

    @abc.abstractmethod
    def train_dataset(self, split: str) -> torch.utils.data.Dataset:
        """Dataset of training items for ``split`` (indexed by ``(index, crop_seed)`` pairs)."""

    def collate(self, items: list[Any]) -> Any:
        """Collate dataset items into a batch."""
        return torch.utils.data.default_collate(items)

    def synthesize_examples(self, model: nn.Module, count: int) -> list[Example]:
        """Synthesize ``count`` dev utterances with ``model`` for TensorBoard."""
        return []

    def extra_state(self) -> dict[str, Any]:
        """Training state beyond model/optimizer that must survive a resume (plain types and tensors)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned."""

    def batch_num_samples(self, batch: Any) -> int:
        """Audio samples in a batch (for the samples/s throughput scalar)."""
        return 0
