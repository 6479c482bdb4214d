"""LPCNet's dual fully-connected output layer (Valin & Skoglund, ICASSP 2019, eq. 5).

Training on the CPU runs the layer as one autograd function: the stacked affine map is one matrix
product, and the elementwise rest — both ``tanh``, the per-output scales and the sum, forward and
backward — is one fused numba pass over the ``(N, 2·L)`` pre-activations each way, instead of five
separate tensor passes (tanh, multiply, sum and their backwards over ``N × 2 × 256`` values, which
made a quarter of an LPCNet training step). Elsewhere (no gradient, another device or dtype,
autocast) it is the plain torch expression.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from numba import njit
from torch import nn

from vocoder.layers._simd import FASTMATH, one_like, vtanh
from vocoder.layers._threads import run_in_threads, split_range


@njit(nogil=True, cache=True, fastmath=set(FASTMATH), error_model="numpy")
def _dualfc_forward(hidden, scale, out, first, last):
    """Rows ``[first, last)``: ``hidden ← tanh(hidden)`` in place, ``out = Σ_d scale[d] · hidden[:, d]``."""
    levels = out.shape[1]
    for n in range(first, last):
        for k in range(levels):
            a = vtanh(hidden[n, k])
            b = vtanh(hidden[n, levels + k])
            hidden[n, k] = a
            hidden[n, levels + k] = b
            out[n, k] = scale[0, k] * a + scale[1, k] * b


@njit(nogil=True, cache=True, fastmath=set(FASTMATH), error_model="numpy")
def _dualfc_grad_hidden(activations, grad_out, scale, grad_hidden, first, last):
    """Rows ``[first, last)``: ``grad_hidden = g · scale · (1 − tanh²)``."""
    levels = grad_out.shape[1]
    one = one_like(scale[0, 0])
    for n in range(first, last):
        for k in range(levels):
            g = grad_out[n, k]
            a = activations[n, k]
            b = activations[n, levels + k]
            grad_hidden[n, k] = g * scale[0, k] * (one - a * a)
            grad_hidden[n, levels + k] = g * scale[1, k] * (one - b * b)


@njit(nogil=True, cache=True, fastmath=set(FASTMATH), error_model="numpy")
def _dualfc_grad_scale(activations, grad_out, grad_scale, first, last):
    """Rows ``[first, last)``: ``grad_scale[d] += Σ_n g · tanh`` (a separate pass: fused with the
    one above neither loop vectorizes)."""
    levels = grad_out.shape[1]
    for n in range(first, last):
        for k in range(levels):
            grad_scale[0, k] += grad_out[n, k] * activations[n, k]
            grad_scale[1, k] += grad_out[n, k] * activations[n, levels + k]


def _dualfc_backward(activations, grad_out, scale, grad_hidden, grad_scale, first, last):
    _dualfc_grad_hidden(activations, grad_out, scale, grad_hidden, first, last)
    _dualfc_grad_scale(activations, grad_out, grad_scale, first, last)


class _DualFCFunction(torch.autograd.Function):
    """``x (N, in), weight (2L, in), bias (2L,), scale (2, L)`` → ``(N, L)`` (see :class:`DualFC`)."""

    @staticmethod
    def forward(ctx, x, weight, bias, scale):
        hidden = torch.addmm(bias, x, weight.t())
        out = x.new_empty(x.shape[0], scale.shape[1])
        scale = scale.contiguous()
        h, s, o = hidden.numpy(), scale.detach().numpy(), out.numpy()
        run_in_threads(lambda first, last: _dualfc_forward(h, s, o, first, last),
                       split_range(x.shape[0], torch.get_num_threads()))
        ctx.save_for_backward(x, weight, hidden, scale)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, weight, activations, scale = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        grad_hidden = torch.empty_like(activations)
        chunks = split_range(x.shape[0], torch.get_num_threads())
        partial = np.zeros((len(chunks), 2, scale.shape[1]))
        a, g, s, gh = activations.numpy(), grad_out.numpy(), scale.numpy(), grad_hidden.numpy()
        run_in_threads(lambda first, last: _dualfc_backward(a, g, s, gh, partial[chunks.index((first, last))],
                                                            first, last), chunks)
        grad_x = grad_hidden @ weight if ctx.needs_input_grad[0] else None
        grad_weight = grad_hidden.t() @ x if ctx.needs_input_grad[1] else None
        grad_bias = grad_hidden.sum(0) if ctx.needs_input_grad[2] else None
        grad_scale = torch.from_numpy(partial.sum(0)).to(scale.dtype) if ctx.needs_input_grad[3] else None
        return grad_x, grad_weight, grad_bias, grad_scale


class DualFC(nn.Module):
    """``DualFC(x) = a₁ ⊙ tanh(W₁ x + b₁) + a₂ ⊙ tanh(W₂ x + b₂)``.

    Two affine maps through ``tanh``, each scaled elementwise by a learned per-output vector and
    summed. The result is used as logits of a softmax. The two maps are evaluated as one matrix
    product over the stacked weights.

    Args:
        in_features: input size.
        out_features: output size (256 μ-law levels in LPCNet).

    Shapes:
        forward: ``(..., in_features)`` → ``(..., out_features)``.

    Parameters:
        weight: ``(2, out_features, in_features)``; bias: ``(2, out_features)``; scale
        ``(2, out_features)`` (the per-output factors ``a₁, a₂``, initialized to one as in the
        reference implementation).
    """

    def __init__(self, in_features: int, out_features: int = 256) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(2, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(2, out_features))
        self.scale = nn.Parameter(torch.empty(2, out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot-uniform weights, zero biases, unit scales (the Keras ``MDense`` defaults)."""
        limit = math.sqrt(6.0 / (self.in_features + self.out_features))
        nn.init.uniform_(self.weight, -limit, limit)
        nn.init.zeros_(self.bias)
        nn.init.ones_(self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer.

        Args:
            x: ``(..., in_features)``.

        Returns:
            ``(..., out_features)``.
        """
        out = self.out_features
        weight, bias = self.weight.reshape(2 * out, -1), self.bias.reshape(2 * out)
        if self._fused(x):
            flat = _DualFCFunction.apply(x.reshape(-1, self.in_features), weight, bias, self.scale)
            return flat.reshape(*x.shape[:-1], out)
        hidden = torch.tanh(F.linear(x, weight, bias)).unflatten(-1, (2, out))
        return (hidden * self.scale).sum(-2)

    def _fused(self, x: torch.Tensor) -> bool:
        """The fused CPU training path: gradients wanted, CPU float32/float64, no autocast."""
        tensors = (x, self.weight, self.bias, self.scale)
        return (
            torch.is_grad_enabled()
            and any(t.requires_grad for t in tensors)
            and all(t.device.type == "cpu" and t.dtype == x.dtype for t in tensors)
            and x.dtype in (torch.float32, torch.float64)
            and x.numel() > 0
            and not torch.is_autocast_enabled("cpu")
        )

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"
