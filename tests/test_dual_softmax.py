"""DualSoftmax: a normalized 2**(c+f)-way distribution whose fine bits are conditioned on the coarse bits."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from vocoder.layers import DualSoftmax, join_levels, split_levels


def make_head(input_size=6, coarse_bits=3, fine_bits=3, **overrides) -> DualSoftmax:
    return DualSoftmax(input_size, coarse_bits=coarse_bits, fine_bits=fine_bits, **overrides)


@pytest.mark.parametrize("coarse_bits, fine_bits", [(1, 1), (2, 3), (4, 4), (8, 8)])
def test_log_prob_sums_to_one_over_all_levels(coarse_bits, fine_bits):
    head = make_head(5, coarse_bits, fine_bits, hidden_size=7)
    levels = torch.arange(2 ** (coarse_bits + fine_bits))
    h = torch.randn(2, 1, 5).expand(2, levels.numel(), 5)
    total = head.log_prob(h, levels.expand(2, -1)).double().exp().sum(-1)
    torch.testing.assert_close(total, torch.ones(2, dtype=torch.float64), atol=1e-5, rtol=0)


def test_split_join_round_trip_and_example_from_the_issue():
    levels = torch.arange(256)
    coarse, fine = split_levels(levels, 4)
    assert torch.equal(join_levels(coarse, fine, 4), levels)
    # 4 bits as 2 x 2: 7 = (1, 3), 8 = (2, 0); crossing them gives 4 and 11
    assert split_levels(torch.tensor([7, 8]), 2)[0].tolist() == [1, 2]
    assert split_levels(torch.tensor([7, 8]), 2)[1].tolist() == [3, 0]
    assert join_levels(torch.tensor([1, 2]), torch.tensor([0, 3]), 2).tolist() == [4, 11]


def test_log_prob_is_the_teacher_forced_logits():
    head = make_head()
    h, levels = torch.randn(4, 9, 6), torch.randint(0, 64, (4, 9))
    coarse, fine = split_levels(levels, 3)
    coarse_logits, fine_logits = head(h, coarse)
    expected = (F.log_softmax(coarse_logits, -1).gather(-1, coarse[..., None])
                + F.log_softmax(fine_logits, -1).gather(-1, fine[..., None]))[..., 0]
    torch.testing.assert_close(head.log_prob(h, levels), expected)


def test_sample_draws_from_log_prob():
    """Empirical frequencies of 20,000 draws match exp(log_prob) (one fixed h, 4 bits)."""
    head = make_head(4, 2, 2)
    with torch.no_grad():
        head.coarse.bias.copy_(torch.tensor([0.0, 1.0, -1.0, 0.5]))
    h = torch.randn(4)
    draws = head.sample(h.expand(20_000, 4), generator=torch.Generator().manual_seed(3))
    frequency = torch.bincount(draws, minlength=16).double() / draws.numel()
    expected = head.log_prob(h.expand(16, 4), torch.arange(16)).double().exp().detach()
    assert (frequency - expected).abs().max() < 0.015


def test_coarse_exponent_tempers_the_coarse_distribution_only():
    head = make_head(4, 2, 2)
    h = torch.randn(4)
    sharp = head.sample(h.expand(5000, 4), generator=torch.Generator().manual_seed(0), coarse_exponent=50.0)
    coarse = sharp >> 2
    assert torch.bincount(coarse, minlength=4).max() == 5000  # the mode of p(coarse) only
    per_level = torch.full((5000,), 50.0)
    again = head.sample(
        h.expand(5000, 4), generator=torch.Generator().manual_seed(0), coarse_exponent=per_level
    )
    assert torch.equal(again, sharp)
    assert len(set((sharp & 3).tolist())) > 1  # the fine distribution was not sharpened


class IndependentHeads(nn.Module):
    """The pitfall: coarse and fine predicted independently from h."""

    def __init__(self, input_size: int, coarse_bits: int, fine_bits: int) -> None:
        super().__init__()
        self.fine_bits = fine_bits
        self.coarse = nn.Linear(input_size, 2**coarse_bits)
        self.fine = nn.Linear(input_size, 2**fine_bits)

    def log_prob(self, h, levels):
        coarse, fine = split_levels(levels, self.fine_bits)
        return (F.log_softmax(self.coarse(h), -1).gather(-1, coarse[..., None])
                + F.log_softmax(self.fine(h), -1).gather(-1, fine[..., None]))[..., 0]

    @torch.no_grad()
    def sample(self, h, generator=None):
        coarse = torch.multinomial(F.softmax(self.coarse(h), -1), 1, generator=generator)[:, 0]
        fine = torch.multinomial(F.softmax(self.fine(h), -1), 1, generator=generator)[:, 0]
        return join_levels(coarse, fine, self.fine_bits)


def _fraction_in_7_or_8(head: nn.Module) -> float:
    """Train on "7 or 8, half and half" (4 bits = 2 coarse x 2 fine) for 60 steps, then sample."""
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(head.parameters(), lr=0.05)
    h = torch.ones(64, 8)
    targets = torch.tensor([7, 8]).repeat(32)
    for _ in range(60):
        loss = -head.log_prob(h, targets).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    draws = head.sample(torch.ones(2000, 8), generator=torch.Generator().manual_seed(1))
    return float(((draws == 7) | (draws == 8)).double().mean())


def test_seven_or_eight_conditional_head_vs_independent_heads():
    torch.manual_seed(0)
    conditional = _fraction_in_7_or_8(DualSoftmax(8, coarse_bits=2, fine_bits=2))
    torch.manual_seed(0)
    independent = _fraction_in_7_or_8(IndependentHeads(8, 2, 2))
    print(f"fraction of samples in {{7, 8}}: conditional {conditional:.3f}, independent {independent:.3f}")
    assert conditional >= 0.95
    assert independent < 0.6  # ~0.5: (1, 0) = 4 and (2, 3) = 11 half the time


def test_rejects_bad_sizes():
    with pytest.raises(ValueError, match="coarse_bits"):
        DualSoftmax(4, coarse_bits=0)
    with pytest.raises(ValueError, match="hidden_size"):
        DualSoftmax(4, hidden_size=0)
