"""Noise injection: in the μ-law signal domain, or on LPCNet's excitation codes as xiph does; excitation targets."""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

from vocoder.dsp import (
    lpc_predict_torch,
    mulaw_code_values,
    mulaw_compress,
    mulaw_decision_levels,
    mulaw_encode,
    mulaw_expand,
)

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
                           hop_length: int, history: int, bits: int = 8,
                           quantizer: str = "mid_rise") -> dict[str, torch.Tensor]:
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
        quantizer: μ-law code convention (:func:`vocoder.dsp.mulaw_encode`).

    Returns:
        dict of int64 ``(B, N)`` codes: ``signal_in`` (s_{t−1}, noisy), ``prediction`` (p_t),
        ``excitation_in`` (e_{t−1} = noisy s_{t−1} − p_{t−1}) and ``target`` (e_t = clean s_t − p_t);
        plus float64 ``prediction_value`` (p_t itself, for heads that predict the linear excitation).
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
        "signal_in": mulaw_encode(previous, bits, quantizer),
        "prediction": mulaw_encode(prediction, bits, quantizer),
        "excitation_in": mulaw_encode(previous - previous_prediction, bits, quantizer),
        "target": mulaw_encode(clean[:, history:] - prediction, bits, quantizer),
        "prediction_value": prediction.detach().to(torch.float64),
    }


#: Schedules of the excitation-noise std: ``square`` (xiph: ``scale·u²`` per item, u uniform),
#: ``uniform`` (``scale·u``), ``fixed`` (``scale``).
NOISE_SCHEDULES = ("square", "uniform", "fixed")
EXCITATION_DISTRIBUTIONS = ("laplace", "gaussian", "uniform", "none")


class ExcitationNoise:
    """Integer noise on LPCNet's excitation codes, as xiph's ``dump_data.c`` simulates synthesis errors.

    xiph (``write_audio``, LPCNet v0.1) adds integer noise ``n`` to the μ-law code of the *excitation*,
    clamps it to the code range and rebuilds the past as ``s̃ = p + μ⁻¹(clamp(e + n))``: the past the
    network sees carries the excitation's quantization error and the noise, ``e_{t−1}`` is the
    noisy code, and the target is the code of ``s_t − p_t`` with ``p_t`` predicted from the noisy past.
    The noise is Laplacian, ``floor(.5 + σ·0.707·(ln u₁ − ln u₂))`` (std σ), and σ is redrawn as
    ``4·u²`` every 2,821 frames of the concatenated corpus; here σ is drawn once per training
    segment (15 frames), which gives the same distribution of σ over the data.

    Args:
        scale: σ's scale in code steps (xiph v0.1: 4; later releases: 10).
        distribution: ``laplace`` (xiph), ``gaussian``, ``uniform`` (same std) or ``none``.
        schedule: how σ is drawn per segment (:data:`NOISE_SCHEDULES`).
    """

    def __init__(self, scale: float = 4.0, distribution: str = "laplace", schedule: str = "square") -> None:
        if distribution not in EXCITATION_DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {EXCITATION_DISTRIBUTIONS}, got {distribution!r}")
        if schedule not in NOISE_SCHEDULES:
            raise ValueError(f"schedule must be one of {NOISE_SCHEDULES}, got {schedule!r}")
        if not scale >= 0:
            raise ValueError(f"scale must be >= 0, got {scale}")
        self.scale = float(scale)
        self.distribution = distribution
        self.schedule = schedule

    def segment_std(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """σ per segment ``(B, 1)`` float64."""
        u = torch.rand((batch, 1), dtype=torch.float64, generator=generator)
        if self.schedule == "square":
            return self.scale * u * u
        if self.schedule == "uniform":
            return self.scale * u
        return torch.full((batch, 1), self.scale, dtype=torch.float64)

    def sample_codes(self, shape: tuple[int, int], generator: torch.Generator | None = None) -> torch.Tensor:
        """Integer noise ``(B, N)`` int64 in code steps."""
        batch, length = shape
        if self.distribution == "none" or self.scale == 0:
            return torch.zeros(shape, dtype=torch.int64)
        std = self.segment_std(batch, generator)
        if self.distribution == "laplace":
            tiny = torch.finfo(torch.float64).tiny
            u1 = torch.rand(shape, dtype=torch.float64, generator=generator).clamp_min(tiny)
            u2 = torch.rand(shape, dtype=torch.float64, generator=generator).clamp_min(tiny)
            noise = std * (1.0 / math.sqrt(2.0)) * (torch.log(u1) - torch.log(u2))
        elif self.distribution == "gaussian":
            noise = std * torch.randn(shape, dtype=torch.float64, generator=generator)
        else:
            noise = std * math.sqrt(3.0) * (2 * torch.rand(shape, dtype=torch.float64, generator=generator) - 1)
        return torch.floor(0.5 + noise).to(torch.int64)


@numba.njit(cache=True, nogil=True)
def _excitation_recursion(clean, lpc, noise, levels, code_values, hop, history, mid):  # pragma: no cover - compiled
    batch, total = clean.shape
    order = lpc.shape[2]
    n = total - history
    signal_in = np.zeros((batch, n), np.int64)
    prediction_codes = np.zeros((batch, n), np.int64)
    excitation_in = np.zeros((batch, n), np.int64)
    target = np.zeros((batch, n), np.int64)
    prediction_values = np.zeros((batch, n))
    for b in range(batch):
        past = np.zeros(order)  # s̃_{t−1}, s̃_{t−2}, …
        previous_code = mid
        for t in range(total):
            frame = max(t - history, 0) // hop
            p = 0.0
            for k in range(order):
                p -= lpc[b, frame, k] * past[k]
            e_code = np.searchsorted(levels, clean[b, t] - p, side="right")
            if t >= history:
                i = t - history
                signal_in[b, i] = np.searchsorted(levels, past[0], side="right")
                prediction_codes[b, i] = np.searchsorted(levels, p, side="right")
                excitation_in[b, i] = previous_code
                target[b, i] = e_code
                prediction_values[b, i] = p
            noisy = min(max(e_code + noise[b, t], 0), levels.shape[0])
            value = code_values[noisy]
            for k in range(order - 1, 0, -1):
                past[k] = past[k - 1]
            past[0] = p + value
            previous_code = noisy
    return signal_in, prediction_codes, excitation_in, target, prediction_values


def excitation_noise_inputs(clean: torch.Tensor, lpc: torch.Tensor, noise: torch.Tensor, hop_length: int,
                            history: int, bits: int = 8, quantizer: str = "mid_rise") -> dict[str, torch.Tensor]:
    """LPCNet's teacher-forcing inputs with xiph's excitation-domain noise (see :class:`ExcitationNoise`).

    Runs xiph's recursion over the whole segment, history included (the history uses the first
    frame's LPC, so the past is already noisy where the segment starts): for every sample,
    ``p_t = −Σ a_k s̃_{t−k}``, ``e_t = code(s_t − p_t)`` (the target, from the *clean* sample),
    ``ẽ_t = clamp(e_t + n_t, 0, 2^bits − 1)``, ``s̃_t = p_t + μ⁻¹(ẽ_t)``.

    Args:
        clean: ``(B, history + N)`` clean pre-emphasized waveform.
        lpc: ``(B, F, order)`` LPC per frame of the last ``N`` samples.
        noise: ``(B, history + N)`` int64 code noise (zeros: only the quantization error).
        hop_length: samples per frame.
        history: leading context samples.
        bits: μ-law depth.
        quantizer: μ-law code convention (:func:`vocoder.dsp.mulaw_encode`; xiph's is ``mid_tread``).

    Returns:
        dict of int64 ``(B, N)`` codes: ``signal_in`` (code of s̃_{t−1}), ``prediction`` (p_t),
        ``excitation_in`` (ẽ_{t−1}) and ``target`` (e_t); plus float64 ``prediction_value`` (p_t).
    """
    arrays = _excitation_recursion(
        np.ascontiguousarray(clean.detach().cpu().numpy(), np.float64),
        np.ascontiguousarray(lpc.detach().cpu().numpy(), np.float64),
        np.ascontiguousarray(noise.cpu().numpy(), np.int64),
        mulaw_decision_levels(bits, quantizer), mulaw_code_values(bits, quantizer), hop_length, history,
        2 ** (bits - 1),
    )
    names = ("signal_in", "prediction", "excitation_in", "target", "prediction_value")
    return {name: torch.from_numpy(a).to(clean.device) for name, a in zip(names, arrays, strict=True)}
