"""LPCNet's dual fully-connected output layer (Valin & Skoglund, ICASSP 2019, eq. 5)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


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
        hidden = torch.tanh(F.linear(x, self.weight.reshape(2 * out, -1), self.bias.reshape(2 * out)))
        hidden = hidden.unflatten(-1, (2, out))
        return (hidden * self.scale).sum(-2)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"
