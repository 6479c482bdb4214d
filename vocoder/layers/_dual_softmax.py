"""Conditional dual softmax: an n-bit categorical output as coarse bits, then fine bits given them.

A level ``v`` in ``[0, 2**(c + f))`` is the pair ``(coarse, fine) = (v >> f, v & (2**f - 1))``, so a
softmax over 65,536 values becomes two softmaxes over 256 (WaveRNN's dual softmax, Kalchbrenner et
al. 2018). The fine distribution is **conditioned on the coarse value**:

    log p(v | h) = log p(coarse | h) + log p(fine | coarse, h)

Predicting the two halves independently is wrong for multimodal targets: a 4-bit target that is
"7 or 8, half and half" is (1, 3) or (2, 0); independent heads learn coarse {1, 2} and fine {3, 0} at
50 % each and then sample (1, 0) = 4 and (2, 3) = 11 half the time. With the conditional head,
``p(fine | coarse = 1)`` puts its mass on 3 and ``p(fine | coarse = 2)`` on 0.

Fine head (a documented choice): ``fine_logits = W_o tanh(W_h h + E[coarse]) + b_o`` — the coarse
value enters through a learned embedding ``E`` added to a projection of ``h`` (one small hidden
layer of ``hidden_size`` units), so the fine distribution can depend on the coarse value and on
``h`` jointly. The coarse head is one affine map of ``h``. Training is teacher forced (the true coarse
value feeds the fine head); :meth:`DualSoftmax.sample` draws the coarse value first, then the fine
value given it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def split_levels(levels: torch.Tensor, fine_bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer levels → ``(coarse, fine) = (v >> fine_bits, v & (2**fine_bits - 1))`` (int64)."""
    levels = levels.long()
    return levels >> fine_bits, levels & ((1 << fine_bits) - 1)


def join_levels(coarse: torch.Tensor, fine: torch.Tensor, fine_bits: int) -> torch.Tensor:
    """``(coarse, fine)`` → integer levels ``coarse · 2**fine_bits + fine`` (int64)."""
    return (coarse.long() << fine_bits) | fine.long()


def _sample_categorical(
    logits: torch.Tensor, generator: torch.Generator | None, exponent: torch.Tensor | float = 1.0
) -> torch.Tensor:
    """One draw per row of ``(..., K)`` logits from ``softmax(logits)**exponent`` renormalized."""
    log_p = F.log_softmax(logits.float(), dim=-1)
    if not (isinstance(exponent, float | int) and exponent == 1.0):
        exponent = torch.as_tensor(exponent, dtype=log_p.dtype, device=log_p.device)
        log_p = F.log_softmax(log_p * exponent.unsqueeze(-1), dim=-1)  # p**a / Σ p**a
    flat = log_p.exp().reshape(-1, log_p.shape[-1])
    return torch.multinomial(flat, 1, generator=generator).reshape(log_p.shape[:-1])


class DualSoftmax(nn.Module):
    """A ``2**(coarse_bits + fine_bits)``-way categorical output as p(coarse) · p(fine | coarse).

    Args:
        input_size: features of the hidden state ``h``.
        coarse_bits: high bits of a level (the first softmax has ``2**coarse_bits`` classes).
        fine_bits: low bits (the second softmax has ``2**fine_bits`` classes).
        hidden_size: units of the fine head's hidden layer (``None``: ``input_size``).

    Shapes:
        ``h``: ``(..., input_size)``; levels, coarse and fine values: ``(...)`` integers.

    Example:
        >>> head = DualSoftmax(16, coarse_bits=2, fine_bits=2)
        >>> h = torch.randn(3, 16)
        >>> all_levels = torch.arange(16).expand(3, 16)
        >>> total = head.log_prob(h[:, None].expand(3, 16, 16), all_levels).exp().sum(-1)
        >>> bool(torch.allclose(total, torch.ones(3)))
        True
    """

    def __init__(
        self, input_size: int, coarse_bits: int = 8, fine_bits: int = 8, hidden_size: int | None = None
    ) -> None:
        super().__init__()
        if input_size < 1:
            raise ValueError(f"input_size must be >= 1, got {input_size}")
        if coarse_bits < 1 or fine_bits < 1 or coarse_bits + fine_bits > 24:
            raise ValueError(
                f"coarse_bits and fine_bits must be >= 1 with sum <= 24, got {coarse_bits}, {fine_bits}"
            )
        hidden_size = input_size if hidden_size is None else hidden_size
        if hidden_size < 1:
            raise ValueError(f"hidden_size must be >= 1, got {hidden_size}")
        self.input_size = input_size
        self.coarse_bits = coarse_bits
        self.fine_bits = fine_bits
        self.hidden_size = hidden_size
        self.coarse = nn.Linear(input_size, 2**coarse_bits)
        self.fine_input = nn.Linear(input_size, hidden_size)
        self.coarse_embedding = nn.Embedding(2**coarse_bits, hidden_size)
        self.fine = nn.Linear(hidden_size, 2**fine_bits)
        nn.init.normal_(self.coarse_embedding.weight, std=1.0 / hidden_size**0.5)

    @property
    def bits(self) -> int:
        """Bits of a level (``coarse_bits + fine_bits``)."""
        return self.coarse_bits + self.fine_bits

    @property
    def num_levels(self) -> int:
        """Levels of the output distribution (``2**bits``)."""
        return 2**self.bits

    def coarse_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Logits of p(coarse | h): ``(..., input_size)`` → ``(..., 2**coarse_bits)``."""
        return self.coarse(h)

    def fine_logits(self, h: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        """Logits of p(fine | coarse, h).

        Args:
            h: ``(..., input_size)`` hidden state.
            coarse: ``(...)`` integer coarse values in ``[0, 2**coarse_bits)``.

        Returns:
            ``(..., 2**fine_bits)``.
        """
        return self.fine(torch.tanh(self.fine_input(h) + self.coarse_embedding(coarse.long())))

    def forward(self, h: torch.Tensor, coarse: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced logits of both softmaxes.

        Args:
            h: ``(..., input_size)``.
            coarse: ``(...)`` the true coarse values (``levels >> fine_bits``).

        Returns:
            ``(coarse_logits (..., 2**coarse_bits), fine_logits (..., 2**fine_bits))``.
        """
        return self.coarse_logits(h), self.fine_logits(h, coarse)

    def log_prob(self, h: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
        """``log p(levels | h) = log p(coarse | h) + log p(fine | coarse, h)``.

        Args:
            h: ``(..., input_size)``.
            levels: ``(...)`` integers in ``[0, 2**bits)``.

        Returns:
            ``(...)`` log-probabilities (float32 even under bf16 autocast).
        """
        coarse, fine = split_levels(levels, self.fine_bits)
        coarse_logits, fine_logits = self(h, coarse)
        coarse_lp = F.log_softmax(coarse_logits.float(), dim=-1).gather(-1, coarse.unsqueeze(-1))
        fine_lp = F.log_softmax(fine_logits.float(), dim=-1).gather(-1, fine.unsqueeze(-1))
        return (coarse_lp + fine_lp).squeeze(-1)

    def nll(self, h: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood in nats per level (the training loss)."""
        return -self.log_prob(h, levels).mean()

    @torch.no_grad()
    def sample(
        self,
        h: torch.Tensor,
        generator: torch.Generator | None = None,
        coarse_exponent: torch.Tensor | float = 1.0,
    ) -> torch.Tensor:
        """Draw levels: coarse from p(coarse | h), then fine from p(fine | coarse, h).

        Args:
            h: ``(..., input_size)``.
            generator: random generator (default: torch's global one).
            coarse_exponent: tempering of the coarse distribution only, ``p**a / Σ p**a``; a float or
                a tensor broadcastable to ``h.shape[:-1]`` (LPCNet's voicing-dependent exponent). The
                fine distribution is sampled as is.

        Returns:
            ``(...)`` int64 levels in ``[0, 2**bits)``.
        """
        exponent = coarse_exponent
        if torch.is_tensor(exponent):
            exponent = exponent.expand(h.shape[:-1])
        coarse = _sample_categorical(self.coarse_logits(h), generator, exponent)
        fine = _sample_categorical(self.fine_logits(h, coarse), generator)
        return join_levels(coarse, fine, self.fine_bits)

    def extra_repr(self) -> str:
        return (
            f"input_size={self.input_size}, coarse_bits={self.coarse_bits}, fine_bits={self.fine_bits}, "
            f"hidden_size={self.hidden_size}"
        )
