"""Fast CPU synthesis for LPCNet (numba), sample-for-sample equal to the torch reference.

What makes it fast (per sample and utterance, paper-size model at 10 % density):

* GRU_A's input is three rows of precomputed tables (embedding × input weights) plus the frame term
  computed once per frame — no embedding or input product at sample rate;
* GRU_A's recurrent matrix is stored as compressed 16×1 blocks (block-column index lists per
  16-row block row, diagonal kept apart as a vector) and multiplied with 16-wide vector FMAs
  (:func:`vocoder.layers._simd.block_gemv`), so only the ~10 % kept blocks cost anything;
* GRU_B's input and recurrent products and the DualFC are dense products with the output vectors
  held in registers (:func:`vocoder.layers._simd.dense_gemv`);
* sigmoid/tanh/exp are vectorizable polynomials; all buffers are allocated once per call;
* a model with the ``tree`` output head computes only the 8 visited tree nodes' two DualFC rows per
  sample (16 of 512 rows, no softmax over 256 levels).

The algorithm, the float64 signal/LPC arithmetic and the RNG contract are those of
:func:`vocoder.inference._lpcnet_sampling.synthesize_reference`; with ``dtype=float64`` the two agree
sample for sample (different summation orders move the probabilities by ~1e-16, far below what
could flip an inverse-CDF decision). float32 (the default for float32 models) is the fast mode.
Utterances of a batch are independent: they are advanced in lockstep groups of up to four, so that
each weight block is loaded once per sample for the whole group (the products are bound by memory
traffic, not arithmetic, for a single utterance); ``threads > 1`` splits the batch over threads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numba import njit

from vocoder.inference._lpcnet_kernels import (
    dense_product,
    gru_update,
    mulaw_encode_one,
    mulaw_table,
    reassoc_sum,
    run_synthesis_kernel,
    tree_bits,
    tree_decision,
)
from vocoder.inference._lpcnet_sampling import (
    PDF_FLOOR,
    TREE_FLOOR,
    SamplerState,
    SynthesisInputs,
    SynthesisResult,
    finish_waveform,
    prepare_synthesis,
)
from vocoder.layers import (
    FASTMATH,
    block_gemv,
    block_gemv2,
    block_gemv4,
    one_like,
    pack_blocks,
    pack_dense,
    vexp,
    vtanh,
)
from vocoder.models import LPCNet


@dataclass(frozen=True)
class PackedLPCNet:
    """Sample-rate weights of an :class:`~vocoder.models.LPCNet` in the fast kernel's layout.

    The block-sparse matrix is a ``(row_ptr, col_idx, blocks)`` triple (see
    :func:`~vocoder.layers._simd.pack_blocks`); dense ones are transposed and flat (see
    :func:`~vocoder.layers._simd.pack_dense`); rows are padded to multiples of 16.

    Attributes:
        hidden_a, hidden_b, levels: GRU_A units, GRU_B units, μ-law levels.
        a_recurrent: GRU_A ``W_hh`` without its per-gate diagonals (zero blocks dropped).
        a_diagonal: ``(3·H_a,)`` the per-gate diagonals of GRU_A's ``W_hh``.
        a_bias: ``(3·H_a,)`` GRU_A ``b_hh``.
        b_input: GRU_B input weights acting on GRU_A's output (dense).
        b_recurrent: GRU_B ``W_hh`` (dense).
        b_bias: GRU_B ``b_hh`` padded to the block rows.
        fc: DualFC weights of both branches stacked ``(2·L, H_b)`` (dense).
        fc_bias, fc_scale: ``(2·L,)``.
        density: fraction of GRU_A's off-diagonal recurrent blocks stored.
        tree: the model's ``tree`` head: sampling walks 8 nodes, two rows of ``fc_matrix`` each.
        fc_matrix: the DualFC's stacked weights ``(2·L, H_b)`` row-major (the tree walk's rows).
    """

    hidden_a: int
    hidden_b: int
    levels: int
    a_recurrent: tuple[np.ndarray, np.ndarray, np.ndarray]
    a_diagonal: np.ndarray
    a_bias: np.ndarray
    b_input: np.ndarray
    b_recurrent: np.ndarray
    b_bias: np.ndarray
    fc: np.ndarray
    fc_bias: np.ndarray
    fc_scale: np.ndarray
    density: float
    tree: bool
    fc_matrix: np.ndarray


def _padded(vector: np.ndarray, length: int, dtype: np.dtype) -> np.ndarray:
    out = np.zeros(length, dtype=dtype)
    out[: vector.shape[0]] = vector
    return out


@torch.no_grad()
def pack_lpcnet(model: LPCNet, dtype: np.dtype | type = np.float32) -> PackedLPCNet:
    """Convert the sample-rate weights of ``model`` for :func:`synthesize_fast`.

    Args:
        model: the network (pruned or not: zero blocks are simply not stored).
        dtype: ``np.float32`` or ``np.float64``.

    Returns:
        The :class:`PackedLPCNet`.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    hidden_a, hidden_b, levels = model.gru_a.hidden_size, model.gru_b.hidden_size, model.n_levels
    w_hh_a = model.gru_a.weight_hh_l0.detach().cpu().double().numpy().copy()
    gate_rows = np.arange(3 * hidden_a)
    diagonal = w_hh_a[gate_rows, gate_rows % hidden_a].copy()
    w_hh_a[gate_rows, gate_rows % hidden_a] = 0.0
    a_recurrent = pack_blocks(w_hh_a, dtype)
    n_blocks = (a_recurrent[0].shape[0] - 1) * hidden_a
    b_gates = -(-3 * hidden_b // 16) * 16

    def dense(weight: torch.Tensor) -> np.ndarray:
        return pack_dense(weight.detach().cpu().double().numpy(), dtype)

    fc = model.dual_fc
    return PackedLPCNet(
        hidden_a=hidden_a,
        hidden_b=hidden_b,
        levels=levels,
        a_recurrent=a_recurrent,
        a_diagonal=diagonal.astype(dtype),
        a_bias=model.gru_a.bias_hh_l0.detach().cpu().numpy().astype(dtype),
        b_input=dense(model.gru_b.weight_ih_l0[:, :hidden_a]),
        b_recurrent=dense(model.gru_b.weight_hh_l0),
        b_bias=_padded(model.gru_b.bias_hh_l0.detach().cpu().numpy(), b_gates, dtype),
        fc=dense(fc.weight.reshape(2 * levels, -1)),
        fc_bias=fc.bias.detach().cpu().numpy().reshape(-1).astype(dtype),
        fc_scale=fc.scale.detach().cpu().numpy().reshape(-1).astype(dtype),
        density=float(a_recurrent[1].shape[0]) / n_blocks,
        tree=getattr(model, "output_head", "dualfc") == "tree",
        fc_matrix=np.ascontiguousarray(fc.weight.detach().cpu().double().numpy().reshape(2 * levels, -1),
                                       dtype=dtype),
    )


@njit(inline="always")
def _sparse_product(group, row_ptr, col_idx, blocks, x, x_stride, y, y_stride):
    """:func:`~vocoder.layers._simd.block_gemv` for ``group`` ∈ {1, 2, 4} utterances."""
    if group == 4:
        block_gemv4(row_ptr, col_idx, blocks, x, x_stride, y, y_stride)
    elif group == 2:
        block_gemv2(row_ptr, col_idx, blocks, x, x_stride, y, y_stride)
    else:
        block_gemv(row_ptr, col_idx, blocks, x, x_stride, y, y_stride)


@njit(cache=True, nogil=True, fastmath=set(FASTMATH), error_model="numpy")
def _synthesize_group(tables, a_frame, b_frame, a_ptr, a_idx, a_blocks, a_diagonal, a_bias,
                      b_input, b_recurrent, b_bias, fc, fc_bias, fc_scale, tree, fc_matrix, tree_floor,
                      lpc, exponent, uniforms, mulaw, hop, hidden_b, pdf_floor,
                      state_a, state_b, state_history, state_code, first, group,
                      excitation, signal, prediction):
    """The per-sample loop for utterances ``[first, first + group)``, ``group`` ∈ {1, 2, 4}, in lockstep.

    Per-utterance state lives in flat arrays, utterance ``g`` at ``g · size``, loaded from the
    ``state_*`` arrays (:class:`~vocoder.inference._lpcnet_sampling.SamplerState`) and stored back
    after the last sample; the matrix products handle the whole group at once so that every weight is
    loaded once per sample for all of them.
    ``exponent`` and ``pdf_floor`` (a one-element array) come in the network dtype so that the
    float32 kernel stays in float32; LPC, signal, prediction and uniforms are float64.
    ``tree``: the ``tree`` head's walk instead of the softmax: per sample the 8 visited nodes' two rows
    of ``fc_matrix`` (``(2·L, H_b)``) and the float64 decisions with floor ``tree_floor``.
    """
    dtype = tables.dtype
    levels = tables.shape[1]
    a_gates = tables.shape[2]
    hidden_a = a_gates // 3
    a_rows = (a_ptr.shape[0] - 1) * 16  # products write whole 16-row blocks: padded lengths
    b_gates = b_frame.shape[2]
    fc_rows = fc.shape[0] // hidden_b
    order = lpc.shape[2]
    n_samples = uniforms.shape[1]
    decision_levels = mulaw[0, : levels - 1]
    code_values = mulaw[1]
    one = one_like(tables[0, 0, 0])
    zero = one - one
    floor = pdf_floor[0]
    bits = tree_bits(levels)
    h_a = np.zeros(group * hidden_a, dtype)
    x_a = np.zeros(group * a_gates, dtype)
    g_a = np.zeros(group * a_rows, dtype)
    h_b = np.zeros(group * hidden_b, dtype)
    x_b = np.zeros(group * b_gates, dtype)
    g_b = np.zeros(group * b_gates, dtype)
    pre = np.zeros(group * fc_rows, dtype)
    logits = np.zeros(levels, dtype)
    weights = np.zeros(levels, dtype)
    history = np.zeros((group, order))  # s_{t−1}, s_{t−2}, … per utterance
    predicted = np.zeros(group)
    codes = np.zeros(group, np.int64)
    for g in range(group):
        h_a[g * hidden_a : (g + 1) * hidden_a] = state_a[first + g]
        h_b[g * hidden_b : (g + 1) * hidden_b] = state_b[first + g]
        history[g] = state_history[first + g]
        codes[g] = state_code[first + g]
    for t in range(n_samples):
        f = t // hop
        # LPC prediction and GRU_A inputs: table rows + frame term; recurrent init: bias + diagonal
        for g in range(group):
            u = first + g
            value = 0.0
            for k in range(order):
                value -= lpc[u, f, k] * history[g, k]
            predicted[g] = value
            frame_a = a_frame[u, f]
            row_s = tables[0, mulaw_encode_one(history[g, 0], decision_levels)]
            row_p = tables[1, mulaw_encode_one(value, decision_levels)]
            row_e = tables[2, codes[g]]
            x = x_a[g * a_gates : (g + 1) * a_gates]
            for i in range(a_gates):
                x[i] = frame_a[i] + row_s[i] + row_p[i] + row_e[i]
            h = h_a[g * hidden_a : (g + 1) * hidden_a]
            gh = g_a[g * a_rows : (g + 1) * a_rows]
            for gate in range(3):
                offset = gate * hidden_a
                for j in range(hidden_a):
                    gh[offset + j] = a_bias[offset + j] + a_diagonal[offset + j] * h[j]
        _sparse_product(group, a_ptr, a_idx, a_blocks, h_a, hidden_a, g_a, a_rows)
        for g in range(group):
            gru_update(x_a[g * a_gates : (g + 1) * a_gates], g_a[g * a_rows : (g + 1) * a_rows],
                        h_a[g * hidden_a : (g + 1) * hidden_a], hidden_a)

        # GRU_B: frame term + input product on GRU_A's state; recurrent product
        for g in range(group):
            frame_b = b_frame[first + g, f]
            for i in range(b_gates):
                x_b[g * b_gates + i] = frame_b[i]
                g_b[g * b_gates + i] = b_bias[i]
        dense_product(group, b_input, h_a, hidden_a, x_b, b_gates)
        dense_product(group, b_recurrent, h_b, hidden_b, g_b, b_gates)
        for g in range(group):
            gru_update(x_b[g * b_gates : (g + 1) * b_gates], g_b[g * b_gates : (g + 1) * b_gates],
                        h_b[g * hidden_b : (g + 1) * hidden_b], hidden_b)

        if not tree:  # DualFC: both branches of every level, for the whole group at once
            for g in range(group):
                for i in range(2 * levels):
                    pre[g * fc_rows + i] = fc_bias[i]
            dense_product(group, fc, h_b, hidden_b, pre, fc_rows)
        for g in range(group):
            u = first + g
            if tree:  # the tree head: 8 nodes, two DualFC rows each → one decision per level
                hb = h_b[g * hidden_b : (g + 1) * hidden_b]
                power = exponent[u, f]
                rest = uniforms[u, t]
                code = 0
                for level in range(bits):
                    node = (1 << level) | code
                    branch_a = fc_bias[node]
                    branch_b = fc_bias[levels + node]
                    for j in range(hidden_b):
                        branch_a += fc_matrix[node, j] * hb[j]
                        branch_b += fc_matrix[levels + node, j] * hb[j]
                    logit = fc_scale[node] * vtanh(branch_a) + fc_scale[levels + node] * vtanh(branch_b)
                    bit, rest = tree_decision(logit, power, tree_floor, rest)
                    code = 2 * code + bit
            else:  # tempered, floored distribution → inverse CDF
                branches = pre[g * fc_rows : (g + 1) * fc_rows]
                for k in range(levels):
                    first_branch = fc_scale[k] * vtanh(branches[k])
                    logits[k] = first_branch + fc_scale[levels + k] * vtanh(branches[levels + k])
                peak = logits[0]
                for k in range(1, levels):
                    peak = max(peak, logits[k])
                power = exponent[u, f]
                for k in range(levels):
                    weights[k] = vexp(power * (logits[k] - peak))
                inverse = one / reassoc_sum(weights)
                for k in range(levels):
                    weights[k] = max(weights[k] * inverse - floor, zero)
                threshold = uniforms[u, t] * reassoc_sum(weights)
                cumulative = 0.0
                code = levels - 1
                for k in range(levels):
                    cumulative += weights[k]
                    if threshold < cumulative:
                        code = k
                        break
            sample = predicted[g] + code_values[code]
            for k in range(order - 1, 0, -1):
                history[g, k] = history[g, k - 1]
            history[g, 0] = sample
            codes[g] = code
            excitation[u, t] = code
            signal[u, t] = sample
            prediction[u, t] = predicted[g]
    for g in range(group):
        state_a[first + g] = h_a[g * hidden_a : (g + 1) * hidden_a]
        state_b[first + g] = h_b[g * hidden_b : (g + 1) * hidden_b]
        state_history[first + g] = history[g]
        state_code[first + g] = codes[g]


@njit(cache=True, nogil=True)
def _synthesize_kernel(tables, a_frame, b_frame, a_ptr, a_idx, a_blocks, a_diagonal, a_bias,
                       b_input, b_recurrent, b_bias, fc, fc_bias, fc_scale, tree, fc_matrix, tree_floor,
                       lpc, exponent, uniforms, mulaw, hop, hidden_b, pdf_floor,
                       state_a, state_b, state_history, state_code, first, last,
                       excitation, signal, prediction):
    """Utterances ``[first, last)`` in lockstep groups of 4, then 2, then 1."""
    start = first
    while start < last:
        remaining = last - start
        group = 4 if remaining >= 4 else (2 if remaining >= 2 else 1)
        _synthesize_group(tables, a_frame, b_frame, a_ptr, a_idx, a_blocks, a_diagonal, a_bias,
                          b_input, b_recurrent, b_bias, fc, fc_bias, fc_scale, tree, fc_matrix, tree_floor,
                          lpc, exponent, uniforms, mulaw, hop, hidden_b, pdf_floor,
                          state_a, state_b, state_history, state_code, start, group,
                          excitation, signal, prediction)
        start += group


def synthesize_fast(model: LPCNet, features: np.ndarray | torch.Tensor,
                    lpc: np.ndarray | torch.Tensor | None = None,
                    seed: int = 0, uniforms: np.ndarray | None = None, dtype: np.dtype | type | None = None,
                    threads: int = 1, pdf_floor: float = PDF_FLOOR, packed: PackedLPCNet | None = None,
                    tempering: str = "xiph") -> SynthesisResult:
    """Synthesize a batch of utterances with the numba kernel.

    Args:
        model: the network.
        features: ``(B, T, n_features)`` raw features.
        lpc: ``(B, T, order)`` predictor per frame (from the cepstra when omitted).
        seed: RNG seed (see :mod:`vocoder.inference._lpcnet_sampling`).
        uniforms: ``(B, T · hop)`` uniforms overriding ``seed``.
        dtype: network arithmetic, ``np.float32`` or ``np.float64``; float64 for a float64 model and
            float32 otherwise if omitted.
        threads: utterances are split over this many threads.
        pdf_floor: see :func:`~vocoder.inference._lpcnet_sampling.tempered_distribution`.
        packed: weights from :func:`pack_lpcnet` (packed here when omitted; pass them to amortize).
        tempering: see :func:`~vocoder.inference._lpcnet_sampling.sampling_exponent`.

    Returns:
        A :class:`~vocoder.inference._lpcnet_sampling.SynthesisResult`.
    """
    if dtype is None:
        dtype = np.float64 if model.gru_a.weight_hh_l0.dtype == torch.float64 else np.float32
    dtype = np.dtype(dtype)
    if packed is None:
        packed = pack_lpcnet(model, dtype)
    elif packed.a_diagonal.dtype != dtype:
        raise ValueError(f"packed weights are {packed.a_diagonal.dtype}, requested {dtype}")
    inputs = prepare_synthesis(model, features, lpc, seed, uniforms, tempering)
    state = SamplerState.initial(model, inputs.uniforms.shape[0], dtype)
    signal, excitation, prediction = sample_fast(model, packed, inputs, state, threads, pdf_floor)
    return SynthesisResult(finish_waveform(signal), signal, excitation, prediction)


def sample_fast(model: LPCNet, packed: PackedLPCNet, inputs: SynthesisInputs, state: SamplerState,
                threads: int = 1, pdf_floor: float = PDF_FLOOR) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The numba sample loop over the frames of ``inputs``, continuing from ``state`` (updated in place).

    Args:
        model: the network (its μ-law convention and hop).
        packed: from :func:`pack_lpcnet` (its dtype is the arithmetic's).
        inputs: the frames' inputs (:func:`~vocoder.inference._lpcnet_sampling.prepare_synthesis`).
        state: the utterances' state before the first frame (:class:`SamplerState`).
        threads: utterances are split over this many threads.
        pdf_floor: see :func:`~vocoder.inference._lpcnet_sampling.tempered_distribution`.

    Returns:
        ``(signal, excitation, prediction)``, each ``(B, T · hop)``.
    """
    dtype = packed.a_diagonal.dtype
    batch, frames, _ = inputs.a_frame.shape
    n_samples = frames * model.hop_length
    b_gates = packed.b_bias.shape[0]

    def array(tensor: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(tensor.detach().cpu().numpy(), dtype=dtype)

    b_frame = np.zeros((batch, frames, b_gates), dtype=dtype)
    b_frame[..., : 3 * packed.hidden_b] = array(inputs.b_frame)
    arguments = (
        array(inputs.tables), array(inputs.a_frame), b_frame,
        *packed.a_recurrent, packed.a_diagonal, packed.a_bias,
        packed.b_input, packed.b_recurrent, packed.b_bias,
        packed.fc, packed.fc_bias, packed.fc_scale, packed.tree, packed.fc_matrix, TREE_FLOOR,
        np.ascontiguousarray(inputs.lpc), np.ascontiguousarray(inputs.exponent, dtype=dtype),
        np.ascontiguousarray(inputs.uniforms), mulaw_table(model.mulaw_bits, model.mulaw_quantizer),
        model.hop_length, packed.hidden_b, np.full(1, pdf_floor, dtype),
        state.gru_a, state.gru_b, state.history, state.code,
    )
    return run_synthesis_kernel(_synthesize_kernel, arguments, batch, n_samples, threads)
