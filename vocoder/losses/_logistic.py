"""Logistic distributions and the discretized mixture of logistics (PixelCNN++ / wavenet_vocoder).

Conventions, stated once:

* A mixture's parameters are one tensor ``params`` of shape ``(B, 3K, N)`` holding, along the
  channel axis, ``K`` mixture logits, then ``K`` means, then ``K`` log-scales (the layout of
  wavenet_vocoder). Log-scales are used as given: the model that emits them owns its floor
  (:class:`~vocoder.models.WaveNetTeacher` clamps them at ``log_scale_min``).
* ``bits`` quantization: ``L = 2**bits`` levels ``x_i = -1 + 2 i / (L - 1)``, ``i = 0 … L-1``, so
  ``bits=16`` gives 65,536 levels. Level ``i`` owns the bin ``[x_i - h, x_i + h]`` with the
  half-width ``h = 1 / (L - 1)``; the lowest and highest bins extend to ``-inf`` and ``+inf`` so that
  the probabilities of all levels sum to one exactly.
* The probability of an interior bin, ``σ(b) - σ(a)`` with ``a, b = (x ∓ h - μ) / s``, is evaluated
  as ``log σ(b) - σ(a) = w + log(-expm1(-2w)) - |a|/2 - |b|/2 - softplus(-|a|) - softplus(-|b|)``
  with ``w = (b - a) / 2 = h / s``. This identity (from ``σ(b) - σ(a) = sinh(w) / (2 cosh(a/2)
  cosh(b/2))``) does not subtract nearly equal probabilities, so it stays accurate in float32 for bins
  far in a tail and for bins much narrower than the scale; for a bin much wider than the scale that
  contains the mean, ``log1p(-σ(a) - σ(-b))`` is used instead. PixelCNN++ subtracts the two sigmoids
  and falls back to a mid-point density approximation when the difference is tiny; that
  approximation breaks the exact normalisation which this module keeps (see ``tests/test_wavenet.py``):
  in float64 the ``2**bits`` probabilities sum to one within 1e-11. In float32 the level grid itself is
  resolved only to ~6e-8 near ±1, 0.2 % of a 16-bit bin, so neighbouring bins overlap or leave gaps
  of that size and the 65,536 probabilities sum to one within ~1e-3 relative (8 bits: ~1e-6); the
  per-sample log-likelihood error stays at that relative level, far below what training resolves.
* The edge bins are chosen by level index (``x < -1 + h`` and ``x > 1 - h``), not by wavenet_vocoder's
  fixed ``±0.999`` thresholds, which at 16 bits would give ~33 levels the whole tail mass each.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


def split_mixture_params(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split mixture parameters into logits, means and log-scales.

    Args:
        params: (B, 3K, N) mixture parameters (logits, means, log-scales along the channel axis).

    Returns:
        ``(logits, means, log_scales)``, each (B, K, N).
    """
    if params.dim() != 3 or params.shape[1] % 3 != 0:
        raise ValueError(f"mixture params must be (B, 3K, N), got {tuple(params.shape)}")
    logits, means, log_scales = params.chunk(3, dim=1)
    return logits, means, log_scales


def _check_bits(bits: int) -> None:
    if not 1 <= bits <= 24:
        raise ValueError(f"bits must be in [1, 24], got {bits}")


def _as_batch_time(x: torch.Tensor) -> torch.Tensor:
    """Accept (B, N) or (B, 1, N) waveforms and return (B, N)."""
    if x.dim() == 3:
        if x.shape[1] != 1:
            raise ValueError(f"expected a (B, 1, N) waveform, got {tuple(x.shape)}")
        return x[:, 0]
    if x.dim() != 2:
        raise ValueError(f"expected a (B, N) or (B, 1, N) waveform, got {tuple(x.shape)}")
    return x


def quantize_to_levels(x: torch.Tensor, bits: int = 16) -> torch.Tensor:
    """Round values to the nearest of the ``2**bits`` levels in [-1, 1] (clamping outside values).

    Args:
        x: any shape, float.
        bits: quantization depth.

    Returns:
        Tensor like ``x`` whose values are exactly ``-1 + 2 i / (2**bits - 1)``.
    """
    _check_bits(bits)
    top = float(2**bits - 1)
    index = torch.round((x.clamp(-1.0, 1.0) + 1.0) * (top / 2.0))
    return index * (2.0 / top) - 1.0


def logistic_log_density(x: torch.Tensor, mu: torch.Tensor, log_s: torch.Tensor) -> torch.Tensor:
    """Log-density of Logistic(μ, s) at ``x`` (all arguments broadcast).

    Args:
        x: values, any shape.
        mu: location, broadcastable to ``x``.
        log_s: natural log of the scale, broadcastable to ``x``.

    Returns:
        ``log p(x) = -u - log s - 2 softplus(-u)`` with ``u = (x - μ) / s``, broadcast shape.
    """
    u = (x - mu) * torch.exp(-log_s)
    return -u - log_s - 2.0 * F.softplus(-u)


def logistic_entropy(log_s: torch.Tensor) -> torch.Tensor:
    """Differential entropy of Logistic(μ, s) in nats, ``log s + 2``, elementwise.

    Args:
        log_s: natural log of the scale, any shape.

    Returns:
        Entropy, same shape as ``log_s``.
    """
    return log_s + 2.0


def _log_sigmoid_difference(a: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``log(σ(b) - σ(a))`` for ``b > a`` with ``w = (b - a) / 2`` given exactly (see module doc)."""
    abs_a = a.abs()
    abs_b = b.abs()
    sinh_form = (
        w
        + torch.log(-torch.expm1(-2.0 * w))
        - 0.5 * (abs_a + abs_b)
        - F.softplus(-abs_a)
        - F.softplus(-abs_b)
    )
    # A wide bin straddling the mean (a < 0 < b, w > 1) would make the identity above cancel large
    # terms; there the bin holds most of the mass and log1p(-σ(a) - σ(-b)) is accurate (the two tail
    # masses sum to at most 2σ(-1) ≈ 0.54). The clamp only keeps the unselected branch finite.
    tails = (torch.sigmoid(a) + torch.sigmoid(-b)).clamp(max=0.75)
    straddle = (a < 0) & (b > 0) & (w > 1.0)
    return torch.where(straddle, torch.log1p(-tails), sinh_form)


def _component_log_probs(
    x: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor, bits: int, edges: bool
) -> torch.Tensor:
    """Per-component log-probability of the bin centred at ``x`` (``x`` broadcasts against means)."""
    half = 1.0 / (2**bits - 1)
    inv_s = torch.exp(-log_scales)
    centred = x - means
    a = (centred - half) * inv_s
    b = (centred + half) * inv_s
    interior = _log_sigmoid_difference(a, b, half * inv_s)
    if not edges:
        return interior
    lowest = -F.softplus(-b)  # log σ(b): the bin reaches down to -inf
    highest = -F.softplus(a)  # log (1 - σ(a)): the bin reaches up to +inf
    out = torch.where(x < -1.0 + half, lowest, interior)
    return torch.where(x > 1.0 - half, highest, out)


def discretized_mix_logistic_log_prob(params: torch.Tensor, x: torch.Tensor, bits: int = 16) -> torch.Tensor:
    """Log-probability of each sample under a discretized mixture of logistics.

    ``x`` is treated as the centre of its bin (values on the level grid, e.g. from
    :func:`quantize_to_levels`); the lowest and highest levels take the whole tail mass.

    Args:
        params: (B, 3K, N) mixture parameters (see the module docstring).
        x: (B, N) or (B, 1, N) waveform in [-1, 1].
        bits: quantization depth (65,536 levels for 16).

    Returns:
        (B, N) log-probabilities (natural log).
    """
    _check_bits(bits)
    logits, means, log_scales = split_mixture_params(params)
    x = _as_batch_time(x).unsqueeze(1)
    component = _component_log_probs(x, means, log_scales, bits, edges=True)
    return torch.logsumexp(component + torch.log_softmax(logits, dim=1), dim=1)


def discretized_mix_logistic_nll(
    params: torch.Tensor, x: torch.Tensor, bits: int = 16, reduction: str = "mean"
) -> torch.Tensor:
    """Negative log-likelihood of ``x`` under a discretized mixture of logistics.

    Args:
        params: (B, 3K, N) mixture parameters.
        x: (B, N) or (B, 1, N) target waveform on the ``2**bits`` level grid.
        bits: quantization depth.
        reduction: ``"mean"`` (nats per sample), ``"sum"`` or ``"none"``.

    Returns:
        Scalar, or (B, N) for ``reduction="none"``.
    """
    return _reduce(-discretized_mix_logistic_log_prob(params, x, bits), reduction)


def discretized_mix_logistic_log_pmf(params: torch.Tensor, bits: int = 16) -> torch.Tensor:
    """Log-probability of every one of the ``2**bits`` levels at every time step.

    Memory is ``B · K · N · 2**bits`` elements: meant for analysis and tests on a few steps.

    Args:
        params: (B, 3K, N) mixture parameters.
        bits: quantization depth.

    Returns:
        (B, N, 2**bits) log-probabilities; ``exp`` sums to one along the last axis.
    """
    _check_bits(bits)
    logits, means, log_scales = split_mixture_params(params)
    levels = torch.linspace(-1.0, 1.0, 2**bits, dtype=params.dtype, device=params.device)
    component = _component_log_probs(
        levels, means.unsqueeze(-1), log_scales.unsqueeze(-1), bits, edges=True
    )  # (B, K, N, L)
    weights = torch.log_softmax(logits, dim=1).unsqueeze(-1)
    return torch.logsumexp(component + weights, dim=1)


def mix_logistic_log_density(params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Log-density of the continuous (undiscretized) mixture of logistics at ``x``.

    Args:
        params: (B, 3K, N) mixture parameters.
        x: (B, N) or (B, 1, N) real values (not restricted to [-1, 1]).

    Returns:
        (B, N) log-densities.
    """
    logits, means, log_scales = split_mixture_params(params)
    x = _as_batch_time(x).unsqueeze(1)
    component = logistic_log_density(x, means, log_scales)
    return torch.logsumexp(component + torch.log_softmax(logits, dim=1), dim=1)


def mix_logistic_binned_log_density(params: torch.Tensor, x: torch.Tensor, bits: int = 16) -> torch.Tensor:
    """Log-density of the mixture smoothed by a box of one quantization bin, at real ``x``.

    ``p(x) = (F(x + h) - F(x - h)) / (2h)``: the probability the discretized model gives to a bin
    centred at ``x``, divided by the bin width. It integrates to one over the real line and tends to
    the continuous density as ``bits`` grows; no edge bins are used since ``x`` is continuous.

    Args:
        params: (B, 3K, N) mixture parameters.
        x: (B, N) or (B, 1, N) real values.
        bits: quantization depth that sets the bin width ``2h = 2 / (2**bits - 1)``.

    Returns:
        (B, N) log-densities.
    """
    _check_bits(bits)
    logits, means, log_scales = split_mixture_params(params)
    x = _as_batch_time(x).unsqueeze(1)
    component = _component_log_probs(x, means, log_scales, bits, edges=False)
    log_bin_width = math.log(2.0 / (2**bits - 1))
    return torch.logsumexp(component + torch.log_softmax(logits, dim=1), dim=1) - log_bin_width


def sample_logistic(
    shape: list[int],
    dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Standard Logistic(0, 1) noise ``log u - log(1 - u)`` with ``u`` kept inside ``[eps, 1 - eps]``.

    Args:
        shape: output shape.
        dtype: floating dtype; its ``eps`` bounds ``u`` so that ``|z| ≤ log(1/eps)``.
        device: output device.
        generator: optional random generator.

    Returns:
        Tensor of the given shape.
    """
    # Machine epsilon of ``dtype`` as nextafter(1, 2) - 1: ``torch.finfo`` is not scriptable and the
    # student's TorchScript export draws its noise here.
    one = torch.ones((), dtype=dtype, device=device)
    eps = torch.nextafter(one, one + 1.0) - one
    u = torch.rand(shape, dtype=dtype, device=device, generator=generator)
    u = torch.minimum(torch.maximum(u, eps), one - eps)
    return torch.log(u) - torch.log1p(-u)


def sample_discretized_mix_logistic(
    params: torch.Tensor, bits: int = 16, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Draw one value per time step from a discretized mixture of logistics.

    A component is picked with the Gumbel-max trick, a continuous logistic value is drawn from it
    and rounded to the nearest level (clamped to [-1, 1]). Rounding a continuous draw gives exactly
    the discretized distribution because level ``i`` owns the bin ``[x_i - h, x_i + h]`` and the edge
    levels own the tails.

    Args:
        params: (B, 3K, N) mixture parameters.
        bits: quantization depth.
        generator: optional random generator.

    Returns:
        (B, N) samples on the level grid.
    """
    logits, means, log_scales = split_mixture_params(params)
    eps = torch.finfo(params.dtype).eps
    u = torch.rand(logits.shape, dtype=params.dtype, device=params.device, generator=generator)
    gumbel = -torch.log(-torch.log(u.clamp(eps, 1.0 - eps)))
    choice = torch.argmax(logits + gumbel, dim=1, keepdim=True)  # (B, 1, N)
    mean = means.gather(1, choice)[:, 0]
    log_scale = log_scales.gather(1, choice)[:, 0]
    z = sample_logistic(list(mean.shape), dtype=params.dtype, device=params.device, generator=generator)
    return quantize_to_levels(mean + torch.exp(log_scale) * z, bits)


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    if reduction == "none":
        return values
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


class DiscretizedMixLogisticNLL(nn.Module):
    """Negative log-likelihood of a discretized mixture of logistics (module form).

    Args:
        bits: quantization depth (16 → 65,536 levels).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """

    def __init__(self, *, bits: int = 16, reduction: str = "mean") -> None:
        super().__init__()
        _check_bits(bits)
        _reduce(torch.zeros(()), reduction)  # validate eagerly
        self.bits = bits
        self.reduction = reduction

    def forward(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """NLL of ``x`` (B, N) under ``params`` (B, 3K, N); scalar unless ``reduction="none"``."""
        return discretized_mix_logistic_nll(params, x, self.bits, self.reduction)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, reduction={self.reduction!r}"
