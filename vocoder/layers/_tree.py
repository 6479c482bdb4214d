"""Binary-tree output distribution over ``2**bits`` codes (xiph's current LPCNet head).

The ``L = 2**bits`` outputs of a layer are read as logits of a binary tree of decisions over the
code's bits, most significant first: the decision at level ``ℓ`` (``0 ≤ ℓ < bits``) is taken at node
``(1 << ℓ) | prefix``, ``prefix`` the code's ``ℓ`` bits above that level (node 0 is unused), and
``P(code) = Π_ℓ σ(±logit[node_ℓ])`` with ``+`` where the code's bit at that level is 1. A code's
probability needs only its ``bits`` node logits, which is what makes sampling cheap.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def tree_node_table(bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The nodes a code visits and its bit at each.

    Args:
        bits: tree depth (``L = 2**bits`` codes and logits).

    Returns:
        ``nodes`` ``(L, bits)`` int64: ``nodes[c, ℓ] = (1 << ℓ) | (c >> (bits − ℓ))``; ``code_bits``
        ``(L, bits)`` int64: ``(c >> (bits − 1 − ℓ)) & 1``.
    """
    if bits < 1:
        raise ValueError(f"bits must be >= 1, got {bits}")
    codes = torch.arange(2**bits)[:, None]
    levels = torch.arange(bits)[None, :]
    nodes = (1 << levels) | (codes >> (bits - levels))
    code_bits = (codes >> (bits - 1 - levels)) & 1
    return nodes, code_bits


def _bits_of(levels: int) -> int:
    bits = levels.bit_length() - 1
    if bits < 1 or 1 << bits != levels:
        raise ValueError(f"tree logits need a power-of-two size >= 2, got {levels}")
    return bits


def tree_log_likelihood(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``log P(target)`` under the tree distribution of ``logits``.

    ``log σ(±x)`` is ``−softplus(∓x)``: the code's ``bits`` node logits are gathered from the node
    table, signed by the code's bits and summed through ``softplus`` (stable for any logit).

    Args:
        logits: ``(..., L)`` tree logits, ``L = 2**bits``.
        target: ``(...)`` int64 codes in ``[0, L − 1]``.

    Returns:
        ``(...)`` log-likelihoods (dtype of ``logits``).
    """
    levels = logits.shape[-1]
    nodes, code_bits = tree_node_table(_bits_of(levels))
    if target.shape != logits.shape[:-1]:
        raise ValueError(f"target must be {tuple(logits.shape[:-1])}, got {tuple(target.shape)}")
    target = target.long()
    nodes, code_bits = nodes.to(logits.device)[target], code_bits.to(logits.device)[target]
    sign = (1 - 2 * code_bits).to(logits.dtype)  # bit 1 → −1: log σ(x) = −softplus(−x)
    return -F.softplus(sign * logits.gather(-1, nodes)).sum(-1)


def tree_log_pdf(logits: torch.Tensor) -> torch.Tensor:
    """Log-probabilities of every code (for references and tests; training needs only the target's).

    Args:
        logits: ``(..., L)`` tree logits.

    Returns:
        ``(..., L)``: ``log P(c)`` for each code ``c`` (``logsumexp`` over the last axis is 0).
    """
    nodes, code_bits = tree_node_table(_bits_of(logits.shape[-1]))
    nodes, code_bits = nodes.to(logits.device), code_bits.to(logits.device)
    sign = (1 - 2 * code_bits).to(logits.dtype)
    gathered = logits[..., nodes]  # (..., L, bits)
    return -F.softplus(sign * gathered).sum(-1)
