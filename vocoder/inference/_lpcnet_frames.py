"""LPCNet's frame-rate network for synthesis: one numba kernel, frame by frame in a fixed order.

Synthesis needs, per frame, the GRU_A and GRU_B input terms of the frame's conditioning
(:meth:`vocoder.models.LPCNet.frame_rate_network` followed by
:meth:`~vocoder.models.LPCNet.frame_projections`). Torch evaluates those as convolutions and matrix
products over the whole utterance, and the summation order of a product depends on how many frames
it is given: a stream that computes a few frames at a time would get other last bits than an
offline call, and a sample-rate sampler turns last bits into different samples sooner or later.
This kernel computes every output frame from its own window of ``2·frame_context + 1`` input frames
with the same loops, whatever the window's position or the number of frames per call, so offline
synthesis (all frames in one call) and a stream (any number of frames per call) get identical
conditioning by construction. It computes the same function as the module (the tests compare it
with torch to float rounding).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numba import njit

from vocoder.layers import FASTMATH, vtanh
from vocoder.models import LPCNet


@dataclass(frozen=True)
class PackedFrameNetwork:
    """Frame-rate weights of an :class:`~vocoder.models.LPCNet` in the kernel's layout (network dtype).

    Attributes:
        mean, std: ``(n_features,)`` feature statistics.
        embedding: ``(n_periods, E)`` pitch-period embedding.
        conv1, conv2: ``(k, C_in, C_out)`` convolution taps; ``conv1_bias``, ``conv2_bias`` ``(C_out,)``.
        dense1, dense2: ``(C, C)`` transposed dense weights (input-major); ``dense1_bias``, ``dense2_bias``.
        gru_a, gru_b: ``(C, 3·H)`` transposed frame parts of the GRU input weights; ``gru_a_bias``,
            ``gru_b_bias`` their ``b_ih``.
        period_index, correlation_index: feature columns of the period and the pitch correlation.
        context: input frames consumed on each side (``frame_context``).
    """

    mean: np.ndarray
    std: np.ndarray
    embedding: np.ndarray
    conv1: np.ndarray
    conv1_bias: np.ndarray
    conv2: np.ndarray
    conv2_bias: np.ndarray
    dense1: np.ndarray
    dense1_bias: np.ndarray
    dense2: np.ndarray
    dense2_bias: np.ndarray
    gru_a: np.ndarray
    gru_a_bias: np.ndarray
    gru_b: np.ndarray
    gru_b_bias: np.ndarray
    period_index: int
    correlation_index: int
    context: int

    @property
    def dtype(self) -> np.dtype:
        return self.conv1.dtype


@torch.no_grad()
def pack_frame_network(model: LPCNet) -> PackedFrameNetwork:
    """The frame-rate network and frame projections of ``model`` for :func:`frame_network_terms`.

    Args:
        model: the network; float32 or float64 (the kernel computes in its dtype).

    Returns:
        The :class:`PackedFrameNetwork`.
    """
    dtype = np.float64 if model.gru_a.weight_hh_l0.dtype == torch.float64 else np.float32

    def array(tensor: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(tensor.detach().cpu().double().numpy(), dtype=dtype)

    frames = 3 * model.sample_embedding_size
    return PackedFrameNetwork(
        mean=array(model.feature_mean), std=array(model.feature_std),
        embedding=array(model.pitch_embedding.weight),
        conv1=array(model.conv1.weight.permute(2, 1, 0)), conv1_bias=array(model.conv1.bias),
        conv2=array(model.conv2.weight.permute(2, 1, 0)), conv2_bias=array(model.conv2.bias),
        dense1=array(model.dense1.weight.t()), dense1_bias=array(model.dense1.bias),
        dense2=array(model.dense2.weight.t()), dense2_bias=array(model.dense2.bias),
        gru_a=array(model.gru_a.weight_ih_l0[:, frames:].t()), gru_a_bias=array(model.gru_a.bias_ih_l0),
        gru_b=array(model.gru_b.weight_ih_l0[:, model.gru_a.hidden_size:].t()),
        gru_b_bias=array(model.gru_b.bias_ih_l0),
        period_index=model.period_index, correlation_index=model.correlation_index,
        context=model.frame_context,
    )


#: rows per block of the products: each weight row is loaded once per block (any value gives the
#: same results: every output sums its inputs in the same order)
_BLOCK = 8


@njit(inline="always", fastmath=set(FASTMATH))
def _affine(weights, bias, x, out):
    """``out[f] = bias + Σ_i x[f, i] · weights[i]`` for rows ``f``, ``weights`` ``(n_in, n_out)``.

    Every output sums over ``i`` in order (the inner loop over outputs vectorizes without
    reordering), so a row's result does not depend on the other rows or on the blocking.
    """
    rows, n_out = out.shape
    for first in range(0, rows, _BLOCK):
        last = min(first + _BLOCK, rows)
        for f in range(first, last):
            for o in range(n_out):
                out[f, o] = bias[o]
        for i in range(x.shape[1]):
            row = weights[i]
            for f in range(first, last):
                value = x[f, i]
                target = out[f]
                for o in range(n_out):
                    target[o] += row[o] * value


@njit(inline="always", fastmath=set(FASTMATH))
def _tanh(values):
    for f in range(values.shape[0]):
        for o in range(values.shape[1]):
            values[f, o] = vtanh(values[f, o])


@njit(cache=True, nogil=True, fastmath=set(FASTMATH))
def _frame_network_kernel(features, mean, std, embedding, period_index, correlation_index,
                          conv1, conv1_bias, conv2, conv2_bias, dense1, dense1_bias, dense2, dense2_bias,
                          gru_a, gru_a_bias, gru_b, gru_b_bias, a_out, b_out):
    """``features (P, n_features)`` (network dtype, padded) → ``a_out (P − k1 − k2 + 2, 3·H_a)``,
    ``b_out (…, 3·H_b)``. Every intermediate row is a function of its own input window computed by
    the same loops, so a row does not depend on ``P`` or on where the window starts."""
    dtype = conv1.dtype
    k1, _, channels = conv1.shape
    k2 = conv2.shape[0]
    n_periods, width = embedding.shape
    n_values = correlation_index  # cepstra, then the correlation, then the embedding
    n_in = n_values + width
    padded = features.shape[0]
    frames = a_out.shape[0]
    positions1 = max(padded - k1 + 1, 0)
    # conv inputs with the taps stacked: row t holds input frames t … t + k − 1 (position t's window)
    stacked1 = np.zeros((positions1, k1 * n_in), dtype)
    stacked2 = np.zeros((frames, k2 * channels), dtype)
    hidden1 = np.zeros((positions1, channels), dtype)
    hidden = np.zeros((frames, channels), dtype)
    dense = np.zeros((frames, channels), dtype)
    for j in range(padded):
        # normalized cepstra and correlation, then the period's embedding row, into every tap that reads it
        row = features[j]
        code = int(np.floor(np.float64(row[period_index]) * 50.0 + 100.1))
        code = min(max(code, 0), n_periods - 1)
        for k in range(k1):
            t = j - k
            if 0 <= t < positions1:
                x = stacked1[t, k * n_in : (k + 1) * n_in]
                for c in range(period_index):
                    x[c] = (row[c] - mean[c]) / std[c]
                x[period_index] = (row[correlation_index] - mean[correlation_index]) / std[correlation_index]
                for c in range(width):
                    x[n_values + c] = embedding[code, c]
    _affine(conv1.reshape(k1 * n_in, channels), conv1_bias, stacked1, hidden1)
    _tanh(hidden1)
    for f in range(frames):
        for k in range(k2):
            stacked2[f, k * channels : (k + 1) * channels] = hidden1[f + k]
    _affine(conv2.reshape(k2 * channels, channels), conv2_bias, stacked2, hidden)
    _tanh(hidden)
    _affine(dense1, dense1_bias, hidden, dense)
    _tanh(dense)
    _affine(dense2, dense2_bias, dense, hidden)
    _tanh(hidden)
    _affine(gru_a, gru_a_bias, hidden, a_out)
    _affine(gru_b, gru_b_bias, hidden, b_out)


def frame_network_terms(packed: PackedFrameNetwork, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GRU_A and GRU_B input terms of every frame whose input window lies inside ``features``.

    Args:
        packed: from :func:`pack_frame_network`.
        features: ``(B, P, n_features)`` raw features, already padded (``P`` frames give
            ``P − 2·context`` output frames; output frame ``f`` reads input frames
            ``f … f + 2·context``).

    Returns:
        ``(a_frame (B, F, 3·H_a), b_frame (B, F, 3·H_b))`` in the network dtype, biases ``b_ih``
        included: ``frame_projections(frame_rate_network(features))`` of the module.
    """
    features = np.asarray(features)
    batch, padded, _ = features.shape
    frames = padded - 2 * packed.context
    if frames < 0:
        raise ValueError(f"need at least {2 * packed.context} frames, got {padded}")
    # the module converts the raw features to its dtype before normalizing them
    inputs = np.ascontiguousarray(features, dtype=packed.dtype)
    a_frame = np.zeros((batch, frames, packed.gru_a.shape[1]), packed.dtype)
    b_frame = np.zeros((batch, frames, packed.gru_b.shape[1]), packed.dtype)
    for b in range(batch):
        _frame_network_kernel(inputs[b], packed.mean, packed.std, packed.embedding, packed.period_index,
                              packed.correlation_index, packed.conv1, packed.conv1_bias, packed.conv2,
                              packed.conv2_bias, packed.dense1, packed.dense1_bias, packed.dense2,
                              packed.dense2_bias, packed.gru_a, packed.gru_a_bias, packed.gru_b,
                              packed.gru_b_bias, a_frame[b], b_frame[b])
    return a_frame, b_frame
