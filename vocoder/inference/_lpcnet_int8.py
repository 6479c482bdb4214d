"""8-bit LPCNet synthesis: the fast sampler with int8 × int8 → int32 products for the recurrent network.

What is quantized (with ``dual_fc="float"`` exactly the split of xiph's AVX2 "dot product" build):

* GRU_A's recurrent matrix (without its per-gate diagonals, which stay float), GRU_B's input matrix
  (acting on GRU_A's state) and GRU_B's recurrent matrix: int8 weights with one float scale per
  output row (:func:`vocoder.layers.quantize_rows`), stored as 16×1 blocks in groups of four
  (:func:`vocoder.layers.pack_int8_blocks`) so that GRU_A's pruned blocks are skipped;
* the activations feeding those products — GRU_A's state (feeds GRU_A's big product and GRU_B's
  input) and GRU_B's state — quantized once per sample to ``floor(127·h + ½)``;
* the products are exact int32 sums (:func:`vocoder.layers.int8_block_gemv`), dequantized as
  ``acc · scale_r / 127`` and added in float;
* with ``dual_fc="int8"`` (the default) also the DualFC's stacked ``(2·L, H_b)`` matrix, acting on
  GRU_B's quantized state (the same ``q_b`` that feeds GRU_B's recurrent product): its 32 KB of
  float weights (L2 traffic every sample) become 8 KB of bytes and 128 byte dot products.
  ``dual_fc="float"`` keeps it float, exactly xiph's split.

With the ``tree`` output head only the 8 visited tree nodes' two DualFC rows are computed per sample
(int8 rows on ``q_b`` with their row scales, or float rows with ``dual_fc="float"``).

Everything else — the per-code input tables, frame terms, diagonals, biases, gates, the DualFC's
``tanh`` and scales and the tempered sampling — is float, as in
:mod:`vocoder.inference._lpcnet_fast` (whose helpers it uses; same RNG contract). With
``dtype=float64`` the kernel computes, up to float rounding in sums of a few terms, the float64
reference of this quantized arithmetic (the tests compare it sample for sample); float32 is the fast
mode.
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
    int8_aligned_gemv,
    int8_block_gemv,
    int8_dense_gemv,
    int8_groups_aligned,
    one_like,
    pack_dense,
    pack_int8_blocks,
    quantize_activations,
    quantize_rows,
    vexp,
    vtanh,
)
from vocoder.models import LPCNet


@dataclass(frozen=True)
class QuantizedMatrix:
    """An int8 matrix with per-row scales, packed for :func:`vocoder.layers.int8_block_gemv`.

    Attributes:
        row_ptr, col_idx, weights, row_sum: the packed layout (:func:`vocoder.layers.pack_int8_blocks`).
        scale: ``(padded rows,)`` ``scale_r / 127`` (activation step folded in), float dtype.
        quantized: ``(rows, cols)`` int8 weights (for references and inspection).
        row_scale: ``(rows,)`` float64 ``scale_r``.
    """

    row_ptr: np.ndarray
    col_idx: np.ndarray
    weights: np.ndarray
    row_sum: np.ndarray
    scale: np.ndarray
    quantized: np.ndarray
    row_scale: np.ndarray


def quantize_matrix(matrix: np.ndarray, dtype: np.dtype, dense: bool = False) -> QuantizedMatrix:
    """Quantize ``matrix`` per row and pack it; zero 16×1 blocks are dropped unless ``dense``.

    Args:
        matrix: ``(rows, cols)`` float weights.
        dtype: float dtype of the dequantization scales.
        dense: keep every block (a dense matrix: no index savings to be had).

    Returns:
        The :class:`QuantizedMatrix`.
    """
    matrix = np.asarray(matrix, np.float64)
    quantized, row_scale = quantize_rows(matrix)
    rows, cols = matrix.shape
    n_block_rows = -(-rows // 16)
    padded = np.zeros((n_block_rows * 16, cols))
    padded[:rows] = matrix
    if dense:
        keep = np.ones((n_block_rows, cols), bool)
    else:
        keep = np.any(padded.reshape(n_block_rows, 16, cols) != 0, axis=1)
    row_ptr, col_idx, weights, row_sum = pack_int8_blocks(quantized, keep)
    scale = np.zeros(n_block_rows * 16)
    scale[:rows] = row_scale / 127.0
    return QuantizedMatrix(row_ptr, col_idx, weights, row_sum, scale.astype(dtype), quantized, row_scale)


@dataclass(frozen=True)
class PackedLPCNetInt8:
    """Sample-rate weights of an :class:`~vocoder.models.LPCNet` for :func:`synthesize_int8`.

    Attributes:
        hidden_a, hidden_b, levels: GRU_A units, GRU_B units, μ-law levels.
        a_recurrent: GRU_A ``W_hh`` without its per-gate diagonals (pruned blocks dropped).
        a_diagonal: ``(3·H_a,)`` float, the per-gate diagonals of GRU_A's ``W_hh``.
        a_bias: ``(3·H_a,)`` float, GRU_A ``b_hh``.
        b_input: GRU_B input weights acting on GRU_A's output.
        b_recurrent: GRU_B ``W_hh``.
        b_bias: GRU_B ``b_hh`` padded to the block rows (float).
        fc: DualFC weights of both branches stacked ``(2·L, H_b)``, float, transposed
            (:func:`vocoder.layers.pack_dense`).
        fc_quantized: the same matrix quantized (for ``dual_fc="int8"``).
        fc_bias, fc_scale: ``(2·L,)`` float.
        density: fraction of GRU_A's off-diagonal recurrent 16×1 blocks stored.
        a_aligned: GRU_A's stored blocks come in aligned runs of four columns (a model pruned in 16×4
            blocks, ``loss.sparsify.block=[16,4]``): the product loads each group's four activations
            at once (:func:`vocoder.layers.int8_aligned_gemv`) instead of gathering them.
        tree: the model's ``tree`` head: sampling walks 8 nodes, two DualFC rows each (the int8 rows of
            ``fc_quantized.quantized`` on ``q_b`` with its row scales, or the float rows of ``fc_matrix``).
        fc_matrix: the DualFC's stacked float weights ``(2·L, H_b)`` row-major.
    """

    hidden_a: int
    hidden_b: int
    levels: int
    a_recurrent: QuantizedMatrix
    a_diagonal: np.ndarray
    a_bias: np.ndarray
    b_input: QuantizedMatrix
    b_recurrent: QuantizedMatrix
    b_bias: np.ndarray
    fc: np.ndarray
    fc_quantized: QuantizedMatrix
    fc_bias: np.ndarray
    fc_scale: np.ndarray
    density: float
    a_aligned: bool
    tree: bool
    fc_matrix: np.ndarray

    @property
    def dtype(self) -> np.dtype:
        return self.a_diagonal.dtype


@torch.no_grad()
def pack_lpcnet_int8(model: LPCNet, dtype: np.dtype | type = np.float32) -> PackedLPCNetInt8:
    """Quantize and pack the sample-rate weights of ``model`` for :func:`synthesize_int8`.

    Args:
        model: the network (pruned or not: GRU_A's zero blocks are simply not stored).
        dtype: float arithmetic of the rest of the network, ``np.float32`` or ``np.float64``.

    Returns:
        The :class:`PackedLPCNetInt8`.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    hidden_a, hidden_b, levels = model.gru_a.hidden_size, model.gru_b.hidden_size, model.n_levels

    def numpy(tensor: torch.Tensor) -> np.ndarray:
        return tensor.detach().cpu().double().numpy().copy()

    w_hh_a = numpy(model.gru_a.weight_hh_l0)
    gate_rows = np.arange(3 * hidden_a)
    diagonal = w_hh_a[gate_rows, gate_rows % hidden_a].copy()
    w_hh_a[gate_rows, gate_rows % hidden_a] = 0.0
    a_recurrent = quantize_matrix(w_hh_a, dtype)
    n_blocks = (a_recurrent.row_ptr.shape[0] - 1) * hidden_a
    live_blocks = int(np.any(w_hh_a.reshape(-1, 16, hidden_a) != 0, axis=1).sum()) if hidden_a else 0
    b_gates = -(-3 * hidden_b // 16) * 16
    b_bias = np.zeros(b_gates, dtype)
    b_bias[: 3 * hidden_b] = numpy(model.gru_b.bias_hh_l0)
    fc = model.dual_fc
    fc_weight = numpy(fc.weight.reshape(2 * levels, -1))
    return PackedLPCNetInt8(
        hidden_a=hidden_a,
        hidden_b=hidden_b,
        levels=levels,
        a_recurrent=a_recurrent,
        a_diagonal=diagonal.astype(dtype),
        a_bias=numpy(model.gru_a.bias_hh_l0).astype(dtype),
        b_input=quantize_matrix(numpy(model.gru_b.weight_ih_l0[:, :hidden_a]), dtype, dense=True),
        b_recurrent=quantize_matrix(numpy(model.gru_b.weight_hh_l0), dtype, dense=True),
        b_bias=b_bias,
        fc=pack_dense(fc_weight, dtype),
        fc_quantized=quantize_matrix(fc_weight, dtype, dense=True),
        fc_bias=numpy(fc.bias).reshape(-1).astype(dtype),
        fc_scale=numpy(fc.scale).reshape(-1).astype(dtype),
        density=live_blocks / n_blocks if n_blocks else 0.0,
        a_aligned=int8_groups_aligned(a_recurrent.row_ptr, a_recurrent.col_idx),
        tree=getattr(model, "output_head", "dualfc") == "tree",
        fc_matrix=np.ascontiguousarray(fc_weight, dtype=dtype),
    )


@njit(inline="always")
def _peak(values, lanes):
    """``max(values)`` 16 lanes at a time (a scalar max chain does not vectorize); ``len(values)`` a
    multiple of 16, ``lanes`` scratch of 16."""
    for i in range(16):
        lanes[i] = values[i]
    for start in range(16, values.shape[0], 16):
        for i in range(16):
            lanes[i] = max(lanes[i], values[start + i])
    peak = lanes[0]
    for i in range(1, 16):
        peak = max(peak, lanes[i])
    return peak


@njit(inline="always")
def _inverse_cdf(weights, chunk_sums, fraction):
    """Inverse-CDF sampling: the first ``k`` whose cumulative weight exceeds ``fraction · Σ weights``.

    The sums go 16 weights at a time (vectorized chunk sums, :func:`_total`), then one weight at a time
    inside the chunk where the threshold falls; up to rounding that is the plain in-order scan (the
    last index of that chunk with a non-zero weight if rounding leaves the threshold unreached inside it).
    ``chunk_sums``: scratch of ``ceil(len(weights) / 16)``.
    """
    levels = weights.shape[0]
    n_chunks = (levels + 15) // 16
    total = 0.0
    for c in range(n_chunks):
        chunk_sums[c] = reassoc_sum(weights[16 * c : min(16 * c + 16, levels)])
        total += chunk_sums[c]
    threshold = fraction * total
    cumulative = 0.0
    for c in range(n_chunks):
        if threshold < cumulative + chunk_sums[c]:
            end = min(16 * c + 16, levels)
            last_live = 16 * c
            for k in range(16 * c, end):
                cumulative += weights[k]
                if threshold < cumulative:
                    return k
                if weights[k] > 0:
                    last_live = k
            return last_live
        cumulative += chunk_sums[c]
    return levels - 1


@njit(cache=True, nogil=True, fastmath=set(FASTMATH), error_model="numpy")
def _synthesize_int8_kernel(tables, a_frame, b_frame,
                            a_ptr, a_idx, a_weights, a_sum, a_scale, a_aligned, a_diagonal, a_bias,
                            bi_ptr, bi_idx, bi_weights, bi_sum, bi_scale,
                            br_ptr, br_idx, br_weights, br_sum, br_scale, b_bias,
                            fc, fc_ptr, fc_idx, fc_weights, fc_sum, fc_qscale, int8_fc, fc_bias, fc_scale,
                            tree, fc_matrix, fc_int8, tree_floor,
                            lpc, exponent, uniforms, mulaw, hop, hidden_b, pdf_floor,
                            state_a, state_b, state_qa, state_qb, state_history, state_code, first, last,
                            excitation, signal, prediction):
    """The per-sample loop for utterances ``[first, last)``, one after the other, each from its row of
    the ``state_*`` arrays (:class:`~vocoder.inference._lpcnet_sampling.SamplerState`; stored back
    after its last sample).

    ``exponent`` and ``pdf_floor`` (a one-element array) come in the network dtype; LPC, signal,
    prediction and uniforms are float64 (as in the float kernel). ``int8_fc``: the DualFC product
    from the quantized matrix ``fc_*`` and ``q_b`` instead of the float ``fc`` and ``h_b``. ``tree``:
    the ``tree`` head's walk: per sample the 8 visited nodes' two rows, of ``fc_int8`` (``(2·L, H_b)``
    int8, exact int32 dot products with ``q_b`` times ``fc_qscale``) or of the float ``fc_matrix``, and
    the float64 decisions with floor ``tree_floor``.
    """
    dtype = tables.dtype
    levels = tables.shape[1]
    a_gates = tables.shape[2]
    hidden_a = a_gates // 3
    a_rows = (a_ptr.shape[0] - 1) * 16
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
    node_pre = np.zeros(2, dtype)
    h_a = np.zeros(hidden_a, dtype)
    q_a = np.zeros(-(-hidden_a // 4) * 4, np.int8)  # padded: the products read whole groups of four
    x_a = np.zeros(a_gates, dtype)
    g_a = np.zeros(a_rows, dtype)
    h_b = np.zeros(hidden_b, dtype)
    q_b = np.zeros(-(-hidden_b // 4) * 4, np.int8)
    x_b = np.zeros(b_gates, dtype)
    g_b = np.zeros(b_gates, dtype)
    pre = np.zeros(fc_rows, dtype)
    logits = np.zeros(levels, dtype)
    weights = np.zeros(levels, dtype)
    lanes = np.zeros(16, dtype)
    chunk_sums = np.zeros((levels + 15) // 16, dtype)
    history = np.zeros(order)
    for u in range(first, last):
        h_a[:] = state_a[u]
        q_a[:] = state_qa[u]
        h_b[:] = state_b[u]
        q_b[:] = state_qb[u]
        history[:] = state_history[u]
        code = state_code[u]
        for t in range(n_samples):
            f = t // hop
            # LPC prediction and GRU_A inputs: table rows + frame term
            predicted = 0.0
            for k in range(order):
                predicted -= lpc[u, f, k] * history[k]
            frame_a = a_frame[u, f]
            row_s = tables[0, mulaw_encode_one(history[0], decision_levels)]
            row_p = tables[1, mulaw_encode_one(predicted, decision_levels)]
            row_e = tables[2, code]
            for i in range(a_gates):
                x_a[i] = frame_a[i] + row_s[i] + row_p[i] + row_e[i]
            # GRU_A recurrent: bias + float diagonal + int8 block-sparse product of the quantized state
            for gate in range(3):
                offset = gate * hidden_a
                for j in range(hidden_a):
                    g_a[offset + j] = a_bias[offset + j] + a_diagonal[offset + j] * h_a[j]
            if a_aligned:
                int8_aligned_gemv(a_ptr, a_idx, a_weights, a_sum, q_a, a_scale, g_a)
            else:
                int8_block_gemv(a_ptr, a_idx, a_weights, a_sum, q_a, a_scale, g_a)
            gru_update(x_a, g_a, h_a, hidden_a)
            quantize_activations(h_a, q_a)

            # GRU_B: frame term + int8 input product on GRU_A's quantized state; int8 recurrent product
            frame_b = b_frame[u, f]
            for i in range(b_gates):
                x_b[i] = frame_b[i]
                g_b[i] = b_bias[i]
            int8_dense_gemv(bi_ptr, bi_idx, bi_weights, bi_sum, q_a, bi_scale, x_b)
            int8_dense_gemv(br_ptr, br_idx, br_weights, br_sum, q_b, br_scale, g_b)
            gru_update(x_b, g_b, h_b, hidden_b)
            quantize_activations(h_b, q_b)

            if tree:  # the tree head: 8 nodes, two DualFC rows each → one decision per level
                power = exponent[u, f]
                rest = uniforms[u, t]
                code = 0
                for level in range(bits):
                    node = (1 << level) | code
                    node_pre[0] = fc_bias[node]
                    node_pre[1] = fc_bias[levels + node]
                    if int8_fc:
                        acc_a = np.int32(0)
                        acc_b = np.int32(0)
                        for j in range(hidden_b):
                            acc_a += np.int32(fc_int8[node, j]) * np.int32(q_b[j])
                            acc_b += np.int32(fc_int8[levels + node, j]) * np.int32(q_b[j])
                        node_pre[0] += acc_a * fc_qscale[node]
                        node_pre[1] += acc_b * fc_qscale[levels + node]
                    else:
                        for j in range(hidden_b):
                            node_pre[0] += fc_matrix[node, j] * h_b[j]
                            node_pre[1] += fc_matrix[levels + node, j] * h_b[j]
                    logit = fc_scale[node] * vtanh(node_pre[0]) + fc_scale[levels + node] * vtanh(node_pre[1])
                    bit, rest = tree_decision(logit, power, tree_floor, rest)
                    code = 2 * code + bit
            else:
                # DualFC (int8 or float) → tempered, floored pdf → inverse CDF → s_t = p_t + μ⁻¹(e_t)
                for i in range(2 * levels):
                    pre[i] = fc_bias[i]
                if int8_fc:
                    int8_dense_gemv(fc_ptr, fc_idx, fc_weights, fc_sum, q_b, fc_qscale, pre)
                else:
                    dense_product(1, fc, h_b, hidden_b, pre, fc_rows)
                for k in range(levels):
                    first_branch = fc_scale[k] * vtanh(pre[k])
                    logits[k] = first_branch + fc_scale[levels + k] * vtanh(pre[levels + k])
                peak = _peak(logits, lanes)
                power = exponent[u, f]
                for k in range(levels):
                    weights[k] = vexp(power * (logits[k] - peak))
                inverse = one / reassoc_sum(weights)
                for k in range(levels):
                    weights[k] = max(weights[k] * inverse - floor, zero)
                code = _inverse_cdf(weights, chunk_sums, uniforms[u, t])
            sample = predicted + code_values[code]
            for k in range(order - 1, 0, -1):
                history[k] = history[k - 1]
            history[0] = sample
            excitation[u, t] = code
            signal[u, t] = sample
            prediction[u, t] = predicted
        state_a[u] = h_a
        state_qa[u] = q_a
        state_b[u] = h_b
        state_qb[u] = q_b
        state_history[u] = history
        state_code[u] = code


def synthesize_int8(model: LPCNet, features: np.ndarray | torch.Tensor,
                    lpc: np.ndarray | torch.Tensor | None = None,
                    seed: int = 0, uniforms: np.ndarray | None = None, dtype: np.dtype | type = np.float32,
                    threads: int = 1, pdf_floor: float = PDF_FLOOR, packed: PackedLPCNetInt8 | None = None,
                    tempering: str | None = None, dual_fc: str = "int8") -> SynthesisResult:
    """Synthesize a batch of utterances with the 8-bit kernel.

    Args:
        model: the network.
        features: ``(B, T, n_features)`` raw features.
        lpc: ``(B, T, order)`` predictor per frame (from the cepstra when omitted).
        seed: RNG seed (see :mod:`vocoder.inference._lpcnet_sampling`).
        uniforms: ``(B, T · hop)`` uniforms overriding ``seed``.
        dtype: float arithmetic outside the int8 products, ``np.float32`` (fast) or ``np.float64``.
        threads: utterances are split over this many threads.
        pdf_floor: see :func:`~vocoder.inference._lpcnet_sampling.tempered_distribution`.
        packed: weights from :func:`pack_lpcnet_int8` (packed here when omitted; pass them to amortize).
        tempering: see :func:`~vocoder.inference._lpcnet_sampling.sampling_exponent` (its default
            when omitted).
        dual_fc: ``"int8"`` (the DualFC product in 8 bits, on GRU_B's quantized state) or ``"float"``
            (float, as xiph's build; see the module docstring).

    Returns:
        A :class:`~vocoder.inference._lpcnet_sampling.SynthesisResult`.
    """
    if dual_fc not in ("int8", "float"):
        raise ValueError(f"dual_fc must be 'int8' or 'float', got {dual_fc!r}")
    if model.n_levels % 16:
        raise ValueError(f"the int8 synthesizer needs a multiple of 16 μ-law levels (mulaw_bits >= 4), "
                         f"got {model.n_levels}: use backend='fast'")
    dtype = np.dtype(dtype)
    if packed is None:
        packed = pack_lpcnet_int8(model, dtype)
    elif packed.dtype != dtype:
        raise ValueError(f"packed weights are {packed.dtype}, requested {dtype}")
    options = {} if tempering is None else {"tempering": tempering}
    inputs = prepare_synthesis(model, features, lpc, seed, uniforms, **options)
    state = SamplerState.initial(model, inputs.uniforms.shape[0], dtype)
    signal, excitation, prediction = sample_int8(model, packed, inputs, state, threads, pdf_floor, dual_fc)
    return SynthesisResult(finish_waveform(signal), signal, excitation, prediction)


def sample_int8(model: LPCNet, packed: PackedLPCNetInt8, inputs: SynthesisInputs, state: SamplerState,
                threads: int = 1, pdf_floor: float = PDF_FLOOR, dual_fc: str = "int8"
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 8-bit sample loop over the frames of ``inputs``, continuing from ``state`` (updated in place).

    Args:
        model: the network (its μ-law convention and hop).
        packed: from :func:`pack_lpcnet_int8` (its dtype is the float arithmetic's).
        inputs: the frames' inputs (:func:`~vocoder.inference._lpcnet_sampling.prepare_synthesis`).
        state: the utterances' state before the first frame.
        threads: utterances are split over this many threads.
        pdf_floor: see :func:`~vocoder.inference._lpcnet_sampling.tempered_distribution`.
        dual_fc: ``"int8"`` or ``"float"`` (see :func:`synthesize_int8`).

    Returns:
        ``(signal, excitation, prediction)``, each ``(B, T · hop)``.
    """
    if dual_fc not in ("int8", "float"):
        raise ValueError(f"dual_fc must be 'int8' or 'float', got {dual_fc!r}")
    dtype = packed.dtype
    batch, frames, _ = inputs.a_frame.shape
    n_samples = frames * model.hop_length
    b_gates = packed.b_bias.shape[0]

    def array(tensor: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(tensor.detach().cpu().numpy(), dtype=dtype)

    b_frame = np.zeros((batch, frames, b_gates), dtype=dtype)
    b_frame[..., : 3 * packed.hidden_b] = array(inputs.b_frame)
    a, bi, br, fq = packed.a_recurrent, packed.b_input, packed.b_recurrent, packed.fc_quantized
    arguments = (
        array(inputs.tables), array(inputs.a_frame), b_frame,
        a.row_ptr, a.col_idx, a.weights, a.row_sum, a.scale, packed.a_aligned,
        packed.a_diagonal, packed.a_bias,
        bi.row_ptr, bi.col_idx, bi.weights, bi.row_sum, bi.scale,
        br.row_ptr, br.col_idx, br.weights, br.row_sum, br.scale, packed.b_bias,
        packed.fc, fq.row_ptr, fq.col_idx, fq.weights, fq.row_sum, fq.scale, dual_fc == "int8",
        packed.fc_bias, packed.fc_scale, packed.tree, packed.fc_matrix, fq.quantized, TREE_FLOOR,
        np.ascontiguousarray(inputs.lpc), np.ascontiguousarray(inputs.exponent, dtype=dtype),
        np.ascontiguousarray(inputs.uniforms), mulaw_table(model.mulaw_bits, model.mulaw_quantizer),
        model.hop_length,
        packed.hidden_b, np.full(1, pdf_floor, dtype),
        state.gru_a, state.gru_b, state.quantized_a, state.quantized_b, state.history, state.code,
    )
    return run_synthesis_kernel(_synthesize_int8_kernel, arguments, batch, n_samples, threads)
