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
class ParameterGroup:
    """Parameters trained by an optimizer of their own (e.g. a GAN's generator, or its discriminator).

    A module that declares groups (:meth:`TrainingModule.parameter_groups`) is trained group by group
    in the declared order every step: the trainer calls :meth:`TrainingModule.group_step` for each
    group whose update is due and steps that group's optimizer (and LR schedule) on the weighted sum
    of the terms it returned. While one group is updated, the parameters of every other group do
    not require gradients, so its backward pass reaches no other group's weights.

    Attributes:
        name: names the group everywhere: ``optim.groups.<name>`` (its optimizer settings),
            ``loss.weights.<name>.<term>`` (the weights of its terms; the first group's terms are
            weighted by the top-level ``loss.weights.<term>``), the TensorBoard tags
            ``loss/<name>/<term>``, ``grad_norm/<name>``, ``lr/<name>`` and the checkpoint entries.
        network: the network whose parameters (those that require grad) the group trains. The
            first group's must be the module's ``model`` (the network that is averaged by the EMA,
            checkpointed as ``model`` and synthesized from); every other group's weights are
            checkpointed (``networks.<name>``), exported beside the model's and restored by
            ``trainer.init_from``.
        start_step: first step (1-based) at which the group is updated.
        every: update interval from ``start_step`` on (1: every step, 2: every other step, …).
    """

    name: str
    network: nn.Module
    start_step: int = 1
    every: int = 1

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum():
            raise ValueError(f"parameter group name must be a non-empty identifier, got {self.name!r}")
        if self.start_step < 1:
            raise ValueError(f"parameter group {self.name}: start_step must be >= 1, got {self.start_step}")
        if self.every < 1:
            raise ValueError(f"parameter group {self.name}: every must be >= 1, got {self.every}")

    def due(self, step: int) -> bool:
        """Whether the group is updated at ``step`` (1-based)."""
        return step >= self.start_step and (step - self.start_step) % self.every == 0


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

    By default one optimizer trains :meth:`trainable_parameters` on the terms of
    :meth:`training_step`. A module that returns :class:`ParameterGroup` s from
    :meth:`parameter_groups` (a generator and its discriminator) is trained group by group instead,
    on the terms of :meth:`group_step`.
    """

    model: nn.Module

    def forward(self, batch: Any, step: int, group: str | None = None) -> dict[str, torch.Tensor]:
        """Compute the named loss terms of a training batch (the trainer weights and sums them).

        ``group`` names the parameter group being updated (:meth:`group_step`); ``None`` is the
        one-optimizer training step (:meth:`training_step`).
        """
        if group is None:
            return self.training_step(batch, step)
        return self.group_step(group, batch, step)

    @abc.abstractmethod
    def training_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        """Named loss terms of one training batch; each a scalar tensor."""

    @abc.abstractmethod
    def validation_step(self, model: nn.Module, batch: Any) -> dict[str, torch.Tensor]:
        """Named loss terms of a validation batch computed with ``model`` (the EMA weights)."""

    def parameter_groups(self) -> list[ParameterGroup]:
        """Separately optimized parameter groups in update order (see :class:`ParameterGroup`).

        The default, an empty list, is one optimizer over :meth:`trainable_parameters` trained on
        :meth:`training_step`. A module that declares groups is trained on :meth:`group_step`.
        """
        return []

    def group_step(self, group: str, batch: Any, step: int) -> dict[str, torch.Tensor]:
        """Named loss terms with which ``group`` is updated on ``batch`` at ``step``.

        Called once per due group and step, in the order of :meth:`parameter_groups`, with the same
        batch: a group's step may reuse what an earlier one computed this step (e.g. the generator's
        output, detached, for the discriminator). An empty dict means no update of the group.

        A module that declares groups defines it; the trainer refuses one that does not before any
        work. Without groups it is not called.
        """
        raise TypeError(f"{type(self).__name__}.group_step: not defined for group {group!r}")

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters handed to the optimizer (by default those of ``self.model`` that require grad)."""
        return (p for p in self.model.parameters() if p.requires_grad)

    def after_optimizer_step(self, step: int) -> dict[str, float]:
        """Per-step model work after the optimizer update (e.g. sparsification); returns scalars to log.

        With parameter groups it runs once per step after every due group was updated, when the
        first group (the model's) was.
        """
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
