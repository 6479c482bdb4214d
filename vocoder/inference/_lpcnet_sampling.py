"""LPCNet synthesis: shared preparation, tempered sampling, and the torch reference loop.

Synthesis runs the frame-rate network over the utterance's frames (the numba kernel of
:mod:`vocoder.inference._lpcnet_frames`: every frame from its own window in a fixed order, so that a
stream that sees a few frames at a time gets the same values) and then, for every sample ``t`` of frame
``f`` (all in the pre-emphasized domain, α = 0.85):

1. ``p_t = −Σ_k a_k[f] s_{t−k}`` from the utterance's own past *output* (``s_{t<0} = 0``), with the
   LPC ``a[f]`` derived from frame ``f``'s cepstrum (:func:`vocoder.dsp.lpc_from_cepstrum`) or given;
2. the sample-rate network maps the μ-law codes of ``s_{t−1}``, ``p_t``, ``e_{t−1}`` (all starting at
   the mid level 128) and the frame's conditioning to logits of ``e_t``;
3. ``e_t`` is drawn from the *tempered* distribution: probabilities raised to
   ``1 + max(0, 1.5·f_g − 0.5)`` (``f_g`` the frame's *stored* pitch-correlation feature, xiph's
   ``g − 0.5``: tempering starts at ``g > 0.83`` and tops out at 1.25, as every xiph implementation
   computes it) and renormalized, then ``0.002`` subtracted (clamped at 0) — sharper sampling for
   strongly voiced frames, no low-probability outliers (xiph's ``sample_from_pdf``). ``tempering="raw"``
   applies the formula to ``g`` itself (this project's earlier, over-tempered convention) and
   ``"none"`` samples the plain distribution;
4. ``s_t = p_t + μ⁻¹(e_t)``; the waveform is ``s`` de-emphasized (:func:`vocoder.dsp.deemphasis`).

RNG contract (shared by every backend, so they produce identical samples): the excitation of sample
``n`` of utterance ``b`` consumes the uniform
``u[b, n] = numpy.random.default_rng([seed, b]).random(N)[n]`` (float64 in [0, 1)); the code is the
smallest ``i`` with ``u · C_{L−1} < C_i``, ``C`` the cumulative sum of the floored tempered
probabilities (``L − 1`` if rounding leaves none); the ``tree`` head walks its 8 bit decisions with the
same single uniform, rescaled at each (:func:`sample_tree`). Utterance ``b`` therefore gets the same samples
whether it is synthesized alone or in a batch (at the same index ``b``).

Features ``(B, T, 20)`` are padded with ``frame_context`` (2) copies of the edge frames on each side
(as the training segments are), so ``T`` frames give ``T · 160`` samples.

Every backend's sample loop starts from a :class:`SamplerState` and leaves it after its last sample
(``sample_reference``, :func:`~vocoder.inference._lpcnet_fast.sample_fast`,
:func:`~vocoder.inference._lpcnet_int8.sample_int8`): offline synthesis is one call from the silent
state, a stream (:class:`vocoder.inference.LPCNetStream`) one call per push — the same arithmetic.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from vocoder.dsp import deemphasis, excitation16_decode, lpc_from_cepstrum, mulaw_code_values, mulaw_encode
from vocoder.inference._lpcnet_frames import frame_network_terms, pack_frame_network
from vocoder.models import LPCNet

#: xiph's ``PDF_FLOOR``: probability mass subtracted from every level before sampling.
PDF_FLOOR = 0.002

#: Floor of each tree decision's probabilities (``tree`` head): ``p1`` is clipped into
#: ``[TREE_FLOOR, 1 − TREE_FLOOR]`` (xiph's ``sampling_logit_table`` range).
TREE_FLOOR = 0.025

#: The largest float64 below 1: where the tree walk clamps its rescaled uniform.
_BELOW_ONE = float(np.nextafter(1.0, 0.0))


def sampling_uniforms(seed: int, batch: int, n_samples: int) -> np.ndarray:
    """The uniforms of the RNG contract: row ``b`` is ``default_rng([seed, b]).random(n_samples)``.

    Args:
        seed: synthesis seed (non-negative).
        batch: utterances.
        n_samples: samples per utterance.

    Returns:
        ``(batch, n_samples)`` float64 in [0, 1).
    """
    rows = [np.random.default_rng([seed, b]).random(n_samples) for b in range(batch)]
    return np.array(rows, dtype=np.float64).reshape(batch, n_samples)


#: Tempering conventions (see the module docstring).
TEMPERING = ("xiph", "raw", "none")


def sampling_exponent(correlation_feature: torch.Tensor | np.ndarray,
                      tempering: str = "xiph") -> torch.Tensor | np.ndarray:
    """Exponent applied to the probabilities (same shape and type as the input).

    Args:
        correlation_feature: the stored pitch-correlation feature ``f = g − 0.5`` (xiph's layout).
        tempering: ``xiph``: ``1 + max(0, 1.5·f − 0.5)``; ``raw``: the same formula on ``g = f + 0.5``;
            ``none``: 1.
    """
    if tempering not in TEMPERING:
        raise ValueError(f"tempering must be one of {TEMPERING}, got {tempering!r}")
    is_tensor = isinstance(correlation_feature, torch.Tensor)
    f = correlation_feature if is_tensor else np.asarray(correlation_feature, dtype=np.float64)
    if tempering == "raw":
        f = f + 0.5
    if tempering == "none":
        return torch.ones_like(f) if is_tensor else np.ones_like(f)
    if is_tensor:
        return 1.0 + torch.clamp(1.5 * f - 0.5, min=0.0)
    return 1.0 + np.maximum(1.5 * f - 0.5, 0.0)


def tempered_distribution(logits: torch.Tensor, exponent: torch.Tensor,
                          pdf_floor: float = PDF_FLOOR) -> torch.Tensor:
    """The distribution LPCNet samples from: tempered, floored, renormalized.

    Args:
        logits: ``(..., L)``.
        exponent: ``(...)`` power applied to the probabilities (see :func:`sampling_exponent`).
        pdf_floor: mass subtracted from every normalized tempered probability (clamped at 0).

    Returns:
        ``(..., L)`` probabilities (dtype of ``logits``).
    """
    probabilities = torch.softmax(logits, dim=-1)
    tempered = probabilities ** exponent.unsqueeze(-1)
    tempered = tempered / tempered.sum(-1, keepdim=True)
    floored = torch.clamp(tempered - pdf_floor, min=0.0)
    return floored / floored.sum(-1, keepdim=True)


def sample_inverse_cdf(weights: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF sampling: the smallest ``i`` with ``u · C_{L−1} < C_i``, ``C = cumsum(weights)``.

    Args:
        weights: ``(..., L)`` non-negative (need not be normalized).
        uniforms: ``(...)`` in [0, 1).

    Returns:
        ``(...)`` int64 codes in ``[0, L − 1]``.
    """
    cdf = torch.cumsum(weights, dim=-1)
    threshold = uniforms.to(cdf.dtype) * cdf[..., -1]
    codes = (cdf <= threshold.unsqueeze(-1)).sum(-1)
    return codes.clamp(max=weights.shape[-1] - 1)


@dataclass
class SynthesisInputs:
    """Everything the per-sample loop needs, computed once per batch of utterances.

    Attributes:
        tables: ``(3, L, 3·H_a)`` GRU_A input projections per code and slot (s, p, e).
        a_frame: ``(B, T, 3·H_a)`` per-frame GRU_A input term (bias included).
        b_frame: ``(B, T, 3·H_b)`` per-frame GRU_B input term (bias included).
        lpc: ``(B, T, order)`` float64 predictor of each frame.
        exponent: ``(B, T)`` float64 sampling exponents.
        uniforms: ``(B, T · hop)`` float64 uniforms (RNG contract).
    """

    tables: torch.Tensor
    a_frame: torch.Tensor
    b_frame: torch.Tensor
    lpc: np.ndarray
    exponent: np.ndarray
    uniforms: np.ndarray


@dataclass
class SynthesisResult:
    """Output of a synthesis backend.

    Attributes:
        waveform: ``(B, N)`` float32 de-emphasized audio, clipped to [-1, 1].
        signal: ``(B, N)`` float64 pre-emphasized synthesized signal ``s``.
        excitation: ``(B, N)`` int64 sampled μ-law codes ``e`` (16-bit levels for the ``dual_softmax`` head).
        prediction: ``(B, N)`` float64 LPC predictions ``p`` used for each sample.
    """

    waveform: np.ndarray
    signal: np.ndarray
    excitation: np.ndarray
    prediction: np.ndarray


@dataclass
class SamplerState:
    """The per-utterance state of the sample loop between calls: what a stream carries from call to call.

    Every backend reads it at the start of a call and leaves it as it was after the call's last
    sample, so synthesizing frames ``[0, a)`` and then ``[a, T)`` runs the same arithmetic as ``[0, T)``
    in one call.

    Attributes:
        gru_a: ``(B, H_a)`` GRU_A state (network dtype).
        gru_b: ``(B, H_b)`` GRU_B state.
        quantized_a: ``(B, ⌈H_a/4⌉·4)`` int8 GRU_A state as the 8-bit products read it (int8 backend).
        quantized_b: ``(B, ⌈H_b/4⌉·4)`` int8 GRU_B state.
        history: ``(B, order)`` float64 past output ``s_{t−1}, s_{t−2}, …``.
        code: ``(B,)`` int64 μ-law code of ``e_{t−1}``.
    """

    gru_a: np.ndarray
    gru_b: np.ndarray
    quantized_a: np.ndarray
    quantized_b: np.ndarray
    history: np.ndarray
    code: np.ndarray

    @classmethod
    def initial(cls, model: LPCNet, batch: int, dtype: np.dtype | type) -> SamplerState:
        """Silence before the first sample: zero states and history, the mid code."""
        hidden_a, hidden_b = model.gru_a.hidden_size, model.gru_b.hidden_size
        return cls(np.zeros((batch, hidden_a), dtype), np.zeros((batch, hidden_b), dtype),
                   np.zeros((batch, -(-hidden_a // 4) * 4), np.int8),
                   np.zeros((batch, -(-hidden_b // 4) * 4), np.int8),
                   np.zeros((batch, model.lpc_order)), np.full(batch, model.n_levels // 2, np.int64))


def pad_features(features: np.ndarray, context: int) -> np.ndarray:
    """Replicate the first and last frame ``context`` times: ``(B, T, C)`` → ``(B, T + 2·context, C)``."""
    rows = np.clip(np.arange(-context, features.shape[1] + context), 0, features.shape[1] - 1)
    return features[:, rows]


@torch.no_grad()
def prepare_synthesis(model: LPCNet, features: np.ndarray | torch.Tensor,
                      lpc: np.ndarray | torch.Tensor | None = None,
                      seed: int = 0, uniforms: np.ndarray | None = None,
                      tempering: str = "xiph") -> SynthesisInputs:
    """Run the frame-rate part once and collect the per-frame inputs of the sample loop.

    Args:
        model: the network (its parameters' dtype is used for the network computations).
        features: ``(B, T, n_features)`` raw features (unpadded).
        lpc: ``(B, T, order)`` predictor per frame; from the cepstra when omitted.
        seed: RNG seed (see the module docstring) when ``uniforms`` is omitted.
        uniforms: ``(B, T · hop)`` uniforms to use instead of the seeded ones.
        tempering: see :func:`sampling_exponent`.

    Returns:
        The :class:`SynthesisInputs`.
    """
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().numpy()
    features = np.asarray(features, np.float64)
    if features.ndim != 3 or features.shape[-1] != model.n_features:
        raise ValueError(f"features must be (B, T, {model.n_features}), got {features.shape}")
    batch, frames, _ = features.shape
    n_samples = frames * model.hop_length
    if lpc is None:
        lpc = lpc_from_cepstrum(features[..., : model.period_index], order=model.lpc_order)
    lpc = np.asarray(lpc.detach().cpu() if isinstance(lpc, torch.Tensor) else lpc, np.float64)
    if lpc.shape != (batch, frames, model.lpc_order):
        raise ValueError(f"lpc must be ({batch}, {frames}, {model.lpc_order}), got {lpc.shape}")
    if uniforms is None:
        uniforms = sampling_uniforms(seed, batch, n_samples)
    uniforms = np.asarray(uniforms, np.float64)
    if uniforms.shape != (batch, n_samples):
        raise ValueError(f"uniforms must be ({batch}, {n_samples}), got {uniforms.shape}")

    padded = pad_features(features, model.frame_context)
    a_frame, b_frame = frame_network_terms(pack_frame_network(model), padded)
    return frame_inputs(model, model.input_tables(), a_frame, b_frame, lpc,
                        sampling_exponent(features[..., model.correlation_index], tempering), uniforms)


def frame_inputs(model: LPCNet, tables: torch.Tensor, a_frame: np.ndarray, b_frame: np.ndarray,
                 lpc: np.ndarray, exponent: np.ndarray, uniforms: np.ndarray) -> SynthesisInputs:
    """:class:`SynthesisInputs` of a run of frames from their parts (tensors on the model's device).

    Args:
        model: the network.
        tables: ``model.input_tables()``.
        a_frame, b_frame: ``(B, T, 3·H)`` from :func:`~vocoder.inference._lpcnet_frames.frame_network_terms`.
        lpc: ``(B, T, order)`` float64.
        exponent: ``(B, T)`` float64 sampling exponents.
        uniforms: ``(B, T · hop)`` float64.
    """
    weight = model.gru_a.weight_hh_l0
    return SynthesisInputs(
        tables=tables,
        a_frame=torch.from_numpy(a_frame).to(weight.device, weight.dtype),
        b_frame=torch.from_numpy(b_frame).to(weight.device, weight.dtype),
        lpc=np.asarray(lpc, np.float64),
        exponent=np.asarray(exponent, np.float64),
        uniforms=np.asarray(uniforms, np.float64),
    )


@contextmanager
def single_torch_thread() -> Iterator[None]:
    """Run torch ops on the calling thread only (restored on exit).

    Per-sample ops are far too small to split, and a multi-threaded pool would synchronize at
    every one of them (stalling whenever another process holds a core).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def finish_waveform(signal: np.ndarray) -> np.ndarray:
    """De-emphasize the synthesized pre-emphasized signal ``(B, N)`` → float32 audio in [-1, 1]."""
    return np.clip(deemphasis(signal), -1.0, 1.0).astype(np.float32)


@torch.no_grad()
def synthesize_reference(model: LPCNet, features: np.ndarray | torch.Tensor,
                         lpc: np.ndarray | torch.Tensor | None = None, seed: int = 0,
                         uniforms: np.ndarray | None = None, pdf_floor: float = PDF_FLOOR,
                         tempering: str = "xiph") -> SynthesisResult:
    """Synthesize with a plain torch loop, sample by sample, straight from the module's weights.

    This is the reference implementation (slow); :func:`vocoder.inference.lpcnet_synthesize` with the
    ``fast`` backend reproduces it sample for sample. The network runs in the model's dtype; the
    LPC prediction, signal and sampling arithmetic in float64.

    Args:
        model: the network.
        features: ``(B, T, n_features)`` raw features.
        lpc: ``(B, T, order)`` predictor per frame (from the cepstra when omitted).
        seed: RNG seed (module docstring).
        uniforms: ``(B, T · hop)`` uniforms overriding ``seed``.
        pdf_floor: see :func:`tempered_distribution`.
        tempering: see :func:`sampling_exponent`.

    Returns:
        A :class:`SynthesisResult`.
    """
    inputs = prepare_synthesis(model, features, lpc, seed, uniforms, tempering)
    batch = inputs.uniforms.shape[0]
    state = SamplerState.initial(model, batch, model.gru_a.weight_hh_l0.detach().cpu().numpy().dtype)
    signal, excitation, prediction = sample_reference(model, inputs, state, pdf_floor)
    return SynthesisResult(finish_waveform(signal), signal, excitation, prediction)


@torch.no_grad()
def sample_reference(model: LPCNet, inputs: SynthesisInputs, state: SamplerState, pdf_floor: float = PDF_FLOOR
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The torch loop over the frames of ``inputs``, continuing from ``state`` (updated in place).

    Returns:
        ``(signal, excitation, prediction)``, each ``(B, T · hop)`` (see :class:`SynthesisResult`).
    """
    with single_torch_thread():
        return _reference_loop(model, inputs, pdf_floor, state)


def sample_tree(logits: torch.Tensor, exponent: torch.Tensor, uniforms: torch.Tensor,
                tree_floor: float = TREE_FLOOR) -> torch.Tensor:
    """Codes from the ``tree`` head's logits with one uniform per sample (inverse CDF of the tree pdf).

    From the root (node 1), at each level's node ``i = (1 << level) | prefix``:
    ``p1 = clip(σ(α · logit_i), f, 1 − f)`` (``α`` the tempering exponent: ``σ(x)^α`` renormalized
    over the two branches is ``σ(α x)``); ``u < 1 − p1`` → bit 0 and ``u ← u / (1 − p1)``, else bit 1
    and ``u ← (u − (1 − p1)) / p1``, clamped into [0, 1); the bits, MSB first, are the code.
    float64 throughout.

    Args:
        logits: ``(B, L)`` tree logits (only the visited nodes are read).
        exponent: ``(B,)`` tempering exponents ``α``.
        uniforms: ``(B,)`` in [0, 1).
        tree_floor: ``f``.

    Returns:
        ``(B,)`` int64 codes in ``[0, L − 1]``.
    """
    levels = logits.shape[-1]
    bits = levels.bit_length() - 1
    logits = logits.double()
    u = uniforms.double()
    alpha = exponent.double()
    prefix = torch.zeros(logits.shape[:-1], dtype=torch.int64, device=logits.device)
    for level in range(bits):
        x = logits.gather(-1, ((1 << level) | prefix).unsqueeze(-1)).squeeze(-1)
        p1 = torch.sigmoid(alpha * x).clamp(tree_floor, 1.0 - tree_floor)
        p0 = 1.0 - p1
        bit = u >= p0
        u = torch.where(bit, (u - p0) / p1, u / p0).clamp(0.0, _BELOW_ONE)
        prefix = 2 * prefix + bit.long()
    return prefix


def _sample_dual_softmax(model: LPCNet, h_b: torch.Tensor, exponent: torch.Tensor, uniforms: torch.Tensor,
                         pdf_floor: float) -> torch.Tensor:
    """16-bit levels ``(B,)`` from the ``dual_softmax`` head with one uniform per sample.

    The coarse value is drawn from the tempered, floored coarse distribution by inverse CDF (the
    DualFC head's rule); the uniform's position inside the chosen coarse bin, rescaled to [0, 1),
    then draws the fine value from p(fine | coarse) — one uniform, an exact sample of both stages.
    """
    head = model.dual_softmax
    coarse_p = tempered_distribution(head.coarse_logits(h_b).double(), exponent, pdf_floor)
    cdf = torch.cumsum(coarse_p, dim=-1)
    threshold = uniforms.to(cdf.dtype) * cdf[..., -1]
    coarse = (cdf <= threshold.unsqueeze(-1)).sum(-1).clamp(max=coarse_p.shape[-1] - 1)
    below = torch.where(coarse > 0, cdf.gather(-1, (coarse - 1).clamp(min=0).unsqueeze(-1)).squeeze(-1),
                        torch.zeros_like(threshold))
    mass = coarse_p.gather(-1, coarse.unsqueeze(-1)).squeeze(-1)
    inner = ((threshold - below) / mass.clamp_min(torch.finfo(mass.dtype).tiny)).clamp(0.0, 1.0 - 1e-12)
    fine_p = torch.softmax(head.fine_logits(h_b, coarse).double(), dim=-1)
    fine = sample_inverse_cdf(fine_p, inner)
    return (coarse << head.fine_bits) | fine


def _reference_loop(model: LPCNet, inputs: SynthesisInputs, pdf_floor: float, state: SamplerState
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The per-sample loop of :func:`synthesize_reference` from ``state`` (left after the last sample)."""
    batch, frames, _ = inputs.a_frame.shape
    hop = model.hop_length
    n_samples = frames * hop
    hidden_a = model.gru_a.hidden_size
    w_hh_a, b_hh_a = model.gru_a.weight_hh_l0, model.gru_a.bias_hh_l0
    w_ih_b = model.gru_b.weight_ih_l0[:, :hidden_a]
    w_hh_b, b_hh_b = model.gru_b.weight_hh_l0, model.gru_b.bias_hh_l0
    device = w_hh_a.device
    lpc = torch.from_numpy(inputs.lpc).to(device)
    exponent = torch.from_numpy(inputs.exponent).to(device)
    uniforms = torch.from_numpy(inputs.uniforms).to(device)

    dtype = w_hh_a.dtype
    h_a = torch.from_numpy(state.gru_a.copy()).to(device, dtype)
    h_b = torch.from_numpy(state.gru_b.copy()).to(device, dtype)
    history = torch.from_numpy(state.history.copy()).to(device)  # s_{t−1}, s_{t−2}, …
    excitation_code = torch.from_numpy(state.code.copy()).to(device)
    signal = torch.zeros(batch, n_samples, dtype=torch.float64, device=device)
    excitation = torch.zeros(batch, n_samples, dtype=torch.int64, device=device)
    prediction = torch.zeros(batch, n_samples, dtype=torch.float64, device=device)
    bits, quantizer = model.mulaw_bits, model.mulaw_quantizer
    code_values = torch.from_numpy(mulaw_code_values(bits, quantizer)).to(device)  # as the numba kernels
    head = getattr(model, "output_head", "dualfc")
    dual_softmax = head == "dual_softmax"

    def gru_update(x: torch.Tensor, gh: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        size = h.shape[-1]
        r = torch.sigmoid(x[:, :size] + gh[:, :size])
        z = torch.sigmoid(x[:, size : 2 * size] + gh[:, size : 2 * size])
        n = torch.tanh(x[:, 2 * size :] + r * gh[:, 2 * size :])
        return (1 - z) * n + z * h

    for t in range(n_samples):
        f = t // hop
        predicted = -(lpc[:, f] * history).sum(-1)
        signal_code = mulaw_encode(history[:, 0], bits, quantizer)
        prediction_code = mulaw_encode(predicted, bits, quantizer)
        x_a = (inputs.a_frame[:, f] + inputs.tables[0, signal_code] + inputs.tables[1, prediction_code]
               + inputs.tables[2, excitation_code])
        h_a = gru_update(x_a, F.linear(h_a, w_hh_a, b_hh_a), h_a)
        x_b = inputs.b_frame[:, f] + F.linear(h_a, w_ih_b)
        h_b = gru_update(x_b, F.linear(h_b, w_hh_b, b_hh_b), h_b)
        if dual_softmax:
            level = _sample_dual_softmax(model, h_b, exponent[:, f], uniforms[:, t], pdf_floor)
            value = excitation16_decode(level)
            excitation_code = mulaw_encode(value, bits, quantizer)  # the network's input stays 8-bit μ-law
            sample = predicted + value
            excitation[:, t] = level
        else:
            logits = model.dual_fc(h_b).double()
            if head == "tree":
                excitation_code = sample_tree(logits, exponent[:, f], uniforms[:, t])
            else:
                distribution = tempered_distribution(logits, exponent[:, f], pdf_floor)
                excitation_code = sample_inverse_cdf(distribution, uniforms[:, t])
            sample = predicted + code_values[excitation_code]
            excitation[:, t] = excitation_code
        history = torch.cat([sample[:, None], history[:, :-1]], dim=1)
        signal[:, t] = sample
        prediction[:, t] = predicted

    state.gru_a[...] = h_a.cpu().numpy()
    state.gru_b[...] = h_b.cpu().numpy()
    state.history[...] = history.cpu().numpy()
    state.code[...] = excitation_code.cpu().numpy()
    return signal.cpu().numpy(), excitation.cpu().numpy(), prediction.cpu().numpy()
