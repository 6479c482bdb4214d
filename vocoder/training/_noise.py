"""Noise injection in the μ-law domain, and LPCNet-style excitation targets."""

from __future__ import annotations

import math

import torch

from vocoder.dsp import mulaw_compress, mulaw_encode, mulaw_expand
from vocoder.dsp._lpc_torch import lpc_predict_torch

DISTRIBUTIONS = ("uniform", "gaussian", "laplace", "none")


class MulawNoiseInjection:
    """Adds noise to a waveform's μ-law values so that the noise is proportional to the amplitude.

    Autoregressive μ-law models see their own (imperfect) past at synthesis time; training on a
    noisy past makes them robust to it (LPCNet, §3.3). Because the noise is added to the companded
    value ``u`` and expanded back, a code step near ``|x|`` is worth ``≈ (1 + μ|x|) ln(1 + μ) / μ``
    in the linear domain: loud samples get loud noise, silence stays nearly clean.

    Args:
        bits: μ-law bit depth of the model (8 → 256 levels).
        scale: noise amplitude in μ-law *code steps* (uniform: half-width; gaussian/laplace: std).
        distribution: ``uniform`` | ``gaussian`` | ``laplace`` | ``none``.
        random_scale: draw a per-utterance scale uniformly in ``[0, scale]`` (as LPCNet varies it)
            instead of using ``scale`` for every item.
    """

    def __init__(self, bits: int = 8, scale: float = 1.0, distribution: str = "uniform",
                 random_scale: bool = True) -> None:
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"noise distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
        if scale < 0:
            raise ValueError(f"noise scale must be >= 0, got {scale}")
        self.bits = bits
        self.scale = scale
        self.distribution = distribution
        self.random_scale = random_scale

    def sample_noise(self, shape: torch.Size, dtype: torch.dtype, device: torch.device,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """Noise in code steps, ``shape`` ``(B, N)``."""
        if self.distribution == "none" or self.scale == 0:
            return torch.zeros(shape, dtype=dtype, device=device)
        if self.distribution == "uniform":
            noise = torch.rand(shape, dtype=dtype, device=device, generator=generator) * 2 - 1
        elif self.distribution == "gaussian":
            noise = torch.randn(shape, dtype=dtype, device=device, generator=generator)
        else:  # laplace: difference of two exponentials, unit variance
            u = torch.rand(shape, dtype=dtype, device=device, generator=generator).clamp_min(
                torch.finfo(dtype).tiny
            ) - 0.5
            noise = -torch.sign(u) * torch.log1p(-2 * u.abs().clamp_max(0.5 - torch.finfo(dtype).eps)) / math.sqrt(2)
        scale = torch.full((shape[0], 1), self.scale, dtype=dtype, device=device)
        if self.random_scale:
            scale = scale * torch.rand((shape[0], 1), dtype=dtype, device=device, generator=generator)
        return noise * scale

    def __call__(self, signal: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Noisy copy of ``signal`` ``(B, N)`` in [-1, 1] (noise added in the μ-law domain)."""
        step = 2.0 / (2**self.bits - 1)  # one code step in companded units
        noise = self.sample_noise(signal.shape, signal.dtype, signal.device, generator)
        companded = mulaw_compress(signal.clamp(-1, 1), self.bits) + noise * step
        return mulaw_expand(companded.clamp(-1, 1), self.bits)


def lpcnet_training_inputs(clean: torch.Tensor, noisy: torch.Tensor, lpc: torch.Tensor,
                           hop_length: int, history: int, bits: int = 8) -> dict[str, torch.Tensor]:
    """LPCNet's teacher-forcing inputs and excitation target from a clean and a noisy signal.

    The prediction is made from the *noisy* past, as at synthesis time, and the target excitation
    is the *clean* sample minus that prediction: the network learns to correct its own noise.

    Args:
        clean, noisy: ``(B, history + N)`` pre-emphasized waveforms; the first ``history`` samples
            (≥ LPC order) only serve as the predictor's past.
        lpc: ``(B, F, order)`` LPC per frame of the last ``N`` samples.
        hop_length: samples per frame.
        history: leading context samples (≥ 1 and ≥ order).
        bits: μ-law depth.

    Returns:
        dict of int64 ``(B, N)`` codes: ``signal_in`` (s_{t−1}, noisy), ``prediction`` (p_t),
        ``excitation_in`` (e_{t−1} = noisy s_{t−1} − p_{t−1}) and ``target`` (e_t = clean s_t − p_t).
    """
    order = lpc.shape[-1]
    if history < order + 1:
        raise ValueError(f"history ({history}) must exceed the LPC order ({order})")
    prediction = lpc_predict_torch(
        noisy[:, history:], lpc, hop_length=hop_length, history=noisy[:, history - order : history]
    )
    # p_{t-1} for the first sample's e_{t-1}: the sample before the segment, with the first frame's LPC
    before = noisy[:, history - 1 - order : history - 1].flip(-1)
    first_prediction = -(before * lpc[:, 0]).sum(-1, keepdim=True)
    previous_prediction = torch.cat([first_prediction, prediction[:, :-1]], dim=1)
    previous = noisy[:, history - 1 : -1]
    return {
        "signal_in": mulaw_encode(previous, bits),
        "prediction": mulaw_encode(prediction, bits),
        "excitation_in": mulaw_encode(previous - previous_prediction, bits),
        "target": mulaw_encode(clean[:, history:] - prediction, bits),
    }
