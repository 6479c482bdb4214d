"""Adversarial objectives and the feature-matching loss for generator/discriminator training.

Scores are the raw outputs of the sub-discriminators (:class:`vocoder.layers.DiscriminatorOutput`),
one tensor per sub-discriminator. Every term is the mean over sub-discriminators of the mean over
each score map (or feature map), so its size does not grow with the number of discriminators.

* ``lsgan`` (least squares; Mao et al., used by Parallel WaveGAN, MelGAN and HiFi-GAN): the
  discriminator minimizes ``(D(x) - 1)²`` on real and ``D(G(z))²`` on generated audio, the
  generator ``(D(G(z)) - 1)²``.
* ``hinge`` (MelGAN's original, UnivNet's variant of it): the discriminator minimizes
  ``max(0, 1 - D(x))`` and ``max(0, 1 + D(G(z)))``, the generator ``-D(G(z))``.
* feature matching (MelGAN, HiFi-GAN): mean absolute difference between the discriminators'
  hidden activations on generated and on real audio, the real ones held constant.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

#: ``objective`` choices.
ADVERSARIAL_OBJECTIVES = ("lsgan", "hinge")


def _check_objective(objective: str) -> None:
    if objective not in ADVERSARIAL_OBJECTIVES:
        raise ValueError(f"objective: expected one of {', '.join(ADVERSARIAL_OBJECTIVES)}, got {objective!r}")


def _mean_over(values: list[torch.Tensor]) -> torch.Tensor:
    if not values:
        raise ValueError("no scores: need the outputs of at least one sub-discriminator")
    return torch.stack([value.float().mean() for value in values]).mean()


def discriminator_adversarial_loss(
    real_scores: Sequence[torch.Tensor], fake_scores: Sequence[torch.Tensor], objective: str = "lsgan"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The discriminator's terms on real and on generated audio.

    Args:
        real_scores: one score map per sub-discriminator for real audio, any shape each.
        fake_scores: the same sub-discriminators' score maps for generated audio.
        objective: ``lsgan`` or ``hinge``.

    Returns:
        ``(real_term, fake_term)``, scalars: ``mean (D(x) - 1)²`` and ``mean D(G(z))²`` (lsgan), or
        ``mean max(0, 1 - D(x))`` and ``mean max(0, 1 + D(G(z)))`` (hinge).
    """
    _check_objective(objective)
    if len(real_scores) != len(fake_scores):
        raise ValueError(f"{len(real_scores)} real but {len(fake_scores)} generated score maps")
    if objective == "lsgan":
        real = _mean_over([(score - 1.0).square() for score in real_scores])
        fake = _mean_over([score.square() for score in fake_scores])
    else:
        real = _mean_over([F.relu(1.0 - score) for score in real_scores])
        fake = _mean_over([F.relu(1.0 + score) for score in fake_scores])
    return real, fake


def generator_adversarial_loss(fake_scores: Sequence[torch.Tensor], objective: str = "lsgan") -> torch.Tensor:
    """The generator's adversarial term.

    Args:
        fake_scores: one score map per sub-discriminator for generated audio.
        objective: ``lsgan`` (``mean (D(G(z)) - 1)²``) or ``hinge`` (``mean -D(G(z))``).

    Returns:
        Scalar.
    """
    _check_objective(objective)
    if objective == "lsgan":
        return _mean_over([(score - 1.0).square() for score in fake_scores])
    return _mean_over([-score for score in fake_scores])


def feature_matching_loss(
    real_features: Sequence[Sequence[torch.Tensor]], fake_features: Sequence[Sequence[torch.Tensor]]
) -> torch.Tensor:
    """Mean absolute difference of the discriminators' hidden activations, generated vs real.

    Args:
        real_features: per sub-discriminator, its activations for real audio (held constant: no
            gradient flows into them).
        fake_features: the same activations for generated audio, same shapes.

    Returns:
        Scalar: the mean over every layer of every sub-discriminator of ``mean |f(G(z)) - f(x)|``.
    """
    if len(real_features) != len(fake_features):
        raise ValueError(f"{len(real_features)} real but {len(fake_features)} generated feature lists")
    distances = []
    for real_layers, fake_layers in zip(real_features, fake_features, strict=True):
        if len(real_layers) != len(fake_layers):
            raise ValueError(f"{len(real_layers)} real but {len(fake_layers)} generated feature maps")
        for real, fake in zip(real_layers, fake_layers, strict=True):
            if real.shape != fake.shape:
                raise ValueError(f"feature maps differ in shape: {tuple(real.shape)} vs {tuple(fake.shape)}")
            distances.append((fake.float() - real.detach().float()).abs())
    return _mean_over(distances)


class AdversarialLoss(nn.Module):
    """An adversarial objective (``lsgan`` or ``hinge``) for both sides of the game.

    Args:
        objective: ``lsgan`` or ``hinge`` (:data:`ADVERSARIAL_OBJECTIVES`).
    """

    def __init__(self, objective: str = "lsgan") -> None:
        super().__init__()
        _check_objective(objective)
        self.objective = objective

    def discriminator(
        self, real_scores: Sequence[torch.Tensor], fake_scores: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`discriminator_adversarial_loss` with this objective."""
        return discriminator_adversarial_loss(real_scores, fake_scores, self.objective)

    def generator(self, fake_scores: Sequence[torch.Tensor]) -> torch.Tensor:
        """:func:`generator_adversarial_loss` with this objective."""
        return generator_adversarial_loss(fake_scores, self.objective)
