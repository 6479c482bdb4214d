"""Probability density distillation (Parallel WaveNet): KL(student ‖ teacher), Monte-Carlo estimated.

Given the noise history ``z_<t`` the student's sample is ``x_t ~ Logistic(μ_t, s_t)`` (the composed
parameters ``mu_tot``, ``log_s_tot`` of :class:`~vocoder.models.IAFStudent`), and the teacher, run in
one teacher-forced pass over the student's own sample, gives ``p_T(x_t | x_<t)``. Then

    KL = Σ_t E[ H(p_S,t, p_T,t) - H(p_S,t) ],

where the entropy ``H(p_S,t) = log s_t + 2`` is analytic and the cross-entropy
``H(p_S,t, p_T,t) = E_{x_t ~ p_S,t}[-log p_T(x_t | x_<t)]`` is estimated with the student's sample
(reparameterised: ``x_t = μ_t + s_t z_t``, so gradients reach the student through the sample and,
through the teacher's input, through the conditioning history too). Optional extra draws
``x'_t = μ_t + s_t z'_t`` at every step reuse the same teacher parameters, since ``p_T(· | x_<t)``
does not depend on ``x_t`` — Parallel WaveNet's variance reduction.

Teacher density (``teacher_density``):

* ``"continuous"`` (default): the teacher's logistic mixture as a density on the real line. The
  student is continuous, so this makes the estimate an honest KL between two densities.
* ``"discretized"``: the teacher's discretized-mixture probability of the bin centred on ``x_t``
  divided by the bin width, ``(F(x + h) - F(x - h)) / 2h`` (also a density; see
  :func:`~vocoder.losses.mix_logistic_binned_log_density`). It differs from the continuous one only
  where the teacher's scales approach the bin width, where it is flatter and bounded.

All values are in nats per sample.
"""

from __future__ import annotations

import torch
from torch import nn

from vocoder.losses._logistic import (
    _reduce,
    logistic_entropy,
    mix_logistic_binned_log_density,
    mix_logistic_log_density,
    sample_logistic,
)

_DENSITIES = ("continuous", "discretized")


def _teacher_log_density(params: torch.Tensor, x: torch.Tensor, density: str, bits: int) -> torch.Tensor:
    if density == "continuous":
        return mix_logistic_log_density(params, x)
    if density == "discretized":
        return mix_logistic_binned_log_density(params, x, bits)
    raise ValueError(f"teacher_density must be one of {_DENSITIES}, got {density!r}")


def student_teacher_cross_entropy(
    student_mu: torch.Tensor,
    student_log_s: torch.Tensor,
    x: torch.Tensor,
    teacher_params: torch.Tensor,
    *,
    teacher_density: str = "continuous",
    bits: int = 16,
    num_samples: int = 1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Monte-Carlo cross-entropy ``E_{p_S}[-log p_T(x_t | x_<t)]`` per time step.

    Args:
        student_mu: (B, N) student location ``μ_t`` (depends on the noise before t only).
        student_log_s: (B, N) student log-scale ``log s_t``.
        x: (B, N) the student's sample ``μ_t + s_t z_t`` (the sequence the teacher was run on).
        teacher_params: (B, 3K, N) teacher mixture parameters computed from ``x`` (e.g.
            :meth:`~vocoder.models.WaveNetTeacher.mixture_params`).
        teacher_density: ``"continuous"`` or ``"discretized"`` (module docstring).
        bits: bin width of the discretized density.
        num_samples: draws per step; the first is ``x`` itself, the others are fresh
            reparameterised draws scored under the same teacher parameters.
        generator: random generator for the extra draws.

    Returns:
        (B, N) cross-entropy estimates in nats.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be ≥ 1, got {num_samples}")
    total = -_teacher_log_density(teacher_params, x, teacher_density, bits)
    if num_samples > 1:
        scale = torch.exp(student_log_s)
        for _ in range(num_samples - 1):
            z = sample_logistic(list(x.shape), x.dtype, x.device, generator)
            draw = student_mu + scale * z
            total = total - _teacher_log_density(teacher_params, draw, teacher_density, bits)
    return total / num_samples


def distillation_kl(
    student_mu: torch.Tensor,
    student_log_s: torch.Tensor,
    x: torch.Tensor,
    teacher_params: torch.Tensor,
    *,
    teacher_density: str = "continuous",
    bits: int = 16,
    num_samples: int = 1,
    reduction: str = "mean",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Monte-Carlo ``KL(p_S ‖ p_T)``: cross-entropy under the teacher minus the student's entropy.

    Args:
        student_mu: (B, N) student location ``μ_t``.
        student_log_s: (B, N) student log-scale ``log s_t``.
        x: (B, N) the student's sample that ``teacher_params`` were computed from.
        teacher_params: (B, 3K, N) teacher mixture parameters for ``x``.
        teacher_density: ``"continuous"`` or ``"discretized"`` (module docstring).
        bits: bin width of the discretized density.
        num_samples: Monte-Carlo draws per step (see :func:`student_teacher_cross_entropy`).
        reduction: ``"mean"`` (nats per sample), ``"sum"`` or ``"none"`` ((B, N)).
        generator: random generator for the extra draws.

    Returns:
        Scalar, or (B, N) per-step estimates for ``reduction="none"``.
    """
    cross_entropy = student_teacher_cross_entropy(
        student_mu,
        student_log_s,
        x,
        teacher_params,
        teacher_density=teacher_density,
        bits=bits,
        num_samples=num_samples,
        generator=generator,
    )
    return _reduce(cross_entropy - logistic_entropy(student_log_s), reduction)


class DistillationKL(nn.Module):
    """Module form of :func:`distillation_kl`.

    Args:
        teacher_density: ``"continuous"`` or ``"discretized"``.
        bits: bin width of the discretized density.
        num_samples: Monte-Carlo draws per step.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """

    def __init__(
        self,
        *,
        teacher_density: str = "continuous",
        bits: int = 16,
        num_samples: int = 1,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if teacher_density not in _DENSITIES:
            raise ValueError(f"teacher_density must be one of {_DENSITIES}, got {teacher_density!r}")
        if num_samples < 1:
            raise ValueError(f"num_samples must be ≥ 1, got {num_samples}")
        _reduce(torch.zeros(()), reduction)
        self.teacher_density = teacher_density
        self.bits = bits
        self.num_samples = num_samples
        self.reduction = reduction

    def forward(
        self,
        student_mu: torch.Tensor,
        student_log_s: torch.Tensor,
        x: torch.Tensor,
        teacher_params: torch.Tensor,
    ) -> torch.Tensor:
        """KL estimate from (B, N) student parameters and sample and (B, 3K, N) teacher parameters."""
        return distillation_kl(
            student_mu,
            student_log_s,
            x,
            teacher_params,
            teacher_density=self.teacher_density,
            bits=self.bits,
            num_samples=self.num_samples,
            reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return (
            f"teacher_density={self.teacher_density!r}, bits={self.bits}, "
            f"num_samples={self.num_samples}, reduction={self.reduction!r}"
        )
