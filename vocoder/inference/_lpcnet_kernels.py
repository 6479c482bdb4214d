"""Pieces shared by the float and the 8-bit LPCNet synthesizers: μ-law tables, inline numba helpers
for products and the GRU update, and the threaded runner of a per-utterance sampling kernel."""

from __future__ import annotations

import numpy as np
from numba import njit

from vocoder.dsp import mulaw_code_values, mulaw_decision_levels
from vocoder.layers import (
    FASTMATH,
    dense_gemv,
    dense_gemv2,
    dense_gemv4,
    run_in_threads,
    split_range,
    vsigmoid,
    vtanh,
)


@njit(cache=True, fastmath={"reassoc", "contract", "nsz"})
def reassoc_sum(values):
    """Sum with reassociation allowed (vectorized; only used where the order does not matter)."""
    total = values[0] - values[0]
    for k in range(values.shape[0]):
        total += values[k]
    return total


def mulaw_table(bits: int, quantizer: str = "mid_rise") -> np.ndarray:
    """``(2, 2**bits)`` float64: row 0 the decision levels of :func:`vocoder.dsp.mulaw_encode` (the last
    entry unused), row 1 the waveform value of each code (:func:`vocoder.dsp.mulaw_code_values`)."""
    table = np.zeros((2, 2**bits), np.float64)
    table[0, :-1] = mulaw_decision_levels(bits, quantizer)
    table[0, -1] = np.inf
    table[1] = mulaw_code_values(bits, quantizer)
    return table


@njit(inline="always")
def mulaw_encode_one(x, levels):
    """:func:`vocoder.dsp.mulaw_encode` of one float64 sample (same decision levels)."""
    return np.int64(np.searchsorted(levels, x, side="right"))


@njit(inline="always")
def dense_product(group, weights_t, x, x_stride, y, y_stride):
    """:func:`~vocoder.layers._simd.dense_gemv` for ``group`` ∈ {1, 2, 4} utterances."""
    if group == 4:
        dense_gemv4(weights_t, x, x_stride, y, y_stride)
    elif group == 2:
        dense_gemv2(weights_t, x, x_stride, y, y_stride)
    else:
        dense_gemv(weights_t, x, x_stride, y, y_stride)


@njit(inline="always", fastmath=set(FASTMATH))
def gru_update(x, gh, h, hidden):
    """``h ← (1 − z) n + z h`` from input gates ``x`` and recurrent gates ``gh`` (r, z, n)."""
    for j in range(hidden):
        r = vsigmoid(x[j] + gh[j])
        z = vsigmoid(x[hidden + j] + gh[hidden + j])
        n = vtanh(x[2 * hidden + j] + r * gh[2 * hidden + j])
        h[j] = n + z * (h[j] - n)


#: The largest float64 below 1 (where the tree walk clamps its rescaled uniform).
BELOW_ONE = float(np.nextafter(1.0, 0.0))


@njit(inline="always")
def tree_bits(levels):
    """``log2(levels)``: the depth of the ``tree`` head's walk."""
    bits = 0
    while (1 << bits) < levels:
        bits += 1
    return bits


@njit(inline="always")
def tree_decision(logit, power, floor, u):
    """One node of the ``tree`` head's walk (float64): ``p1 = clip(σ(α·logit), f, 1 − f)``; returns the
    bit (``u ≥ 1 − p1``) and the uniform rescaled into that branch, clamped into [0, 1)
    (:func:`~vocoder.inference._lpcnet_sampling.sample_tree`)."""
    p1 = 1.0 / (1.0 + np.exp(-np.float64(power) * np.float64(logit)))
    p1 = min(max(p1, floor), 1.0 - floor)
    p0 = 1.0 - p1
    if u < p0:
        return 0, min(max(u / p0, 0.0), BELOW_ONE)
    return 1, min(max((u - p0) / p1, 0.0), BELOW_ONE)


def run_synthesis_kernel(kernel, arguments: tuple, batch: int, n_samples: int, threads: int
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run a per-utterance sampling kernel ``kernel(*arguments, first, last, excitation, signal, prediction)``
    over ``batch`` utterances split into contiguous ranges on up to ``threads`` threads (nogil kernels).

    Returns:
        ``(signal, excitation, prediction)``, each ``(batch, n_samples)``.
    """
    excitation = np.zeros((batch, n_samples), np.int64)
    signal = np.zeros((batch, n_samples), np.float64)
    prediction = np.zeros((batch, n_samples), np.float64)
    run_in_threads(lambda first, last: kernel(*arguments, first, last, excitation, signal, prediction),
                   split_range(batch, threads))
    return signal, excitation, prediction
