"""Discriminators (vocoder.layers) and adversarial objectives (vocoder.losses): shapes, receptive fields,
gradient flow, closed-form values."""

from __future__ import annotations

import pytest
import torch

from vocoder.layers import (
    Discriminators,
    MultiPeriodDiscriminator,
    MultiResolutionSTFTDiscriminator,
    ParallelWaveGANDiscriminator,
    PeriodDiscriminator,
    SpectrogramDiscriminator,
    build_discriminators,
)
from vocoder.losses import (
    AdversarialLoss,
    discriminator_adversarial_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {
    "mrstft": {"resolutions": [[64, 16, 32], [128, 32, 64]], "channels": 4},
    "mpd": {"periods": [2, 3], "channels": [4, 8]},
    "pwg": {"layers": 4, "channels": 4},
}


def _nonzero_samples(score_entry: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Indices of the samples of ``x[0]`` that one score entry depends on (nonzero gradient)."""
    (grad,) = torch.autograd.grad(score_entry, x, retain_graph=True)
    assert torch.isfinite(grad).all()
    return torch.nonzero(grad[0]).flatten()


# ------------------------------------------------------------------------------------------ shapes
@pytest.mark.parametrize("spectrum", ["magnitude", "log_magnitude", "complex"])
def test_spectrogram_discriminator_scores_every_frame(spectrum):
    disc = SpectrogramDiscriminator(256, 64, 128, channels=4, spectrum=spectrum)
    x = torch.randn(3, 1000)
    image = disc.spectrogram(x)
    assert image.shape == (3, 2 if spectrum == "complex" else 1, 1 + 1000 // 64, 129)
    out = disc(x)
    # time is never strided; frequency is halved (rounding up) by three strided layers: 129 → 65 → 33 → 17
    assert out.score.shape == (3, 1, 16, 17)
    widths = [129, 65, 33, 17, 17]
    assert [f.shape for f in out.features] == [(3, 4, 16, width) for width in widths]


def test_multi_resolution_and_period_shapes():
    x = torch.randn(2, 1000)
    outputs = MultiResolutionSTFTDiscriminator(**TINY["mrstft"])(x)
    assert [o.score.shape for o in outputs] == [(2, 1, 63, 5), (2, 1, 32, 9)]
    outputs = MultiPeriodDiscriminator(**TINY["mpd"])(x)
    # 1000 samples fold into 500 x 2 and 334 x 3 (reflect-padded), two stride-3 layers: rows / 9
    assert [o.score.shape for o in outputs] == [(2, 1, 56, 2), (2, 1, 38, 3)]
    assert [len(o.features) for o in outputs] == [3, 3]
    (output,) = ParallelWaveGANDiscriminator(**TINY["pwg"])(x)
    assert output.score.shape == (2, 1, 1000) and len(output.features) == 3


def test_period_fold_puts_each_phase_in_its_column():
    disc = PeriodDiscriminator(3, channels=[2])
    x = torch.arange(10.0)[None]
    folded = disc.fold(x)
    assert folded.shape == (1, 1, 4, 3)
    # 10 samples + 2 reflected ones (8, 7) at the end, row by row
    assert folded.flatten().tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 8, 7]


def test_build_discriminators_by_kind():
    discriminators = build_discriminators(["mrstft", "mpd", "pwg"], TINY)
    assert isinstance(discriminators, Discriminators)
    assert list(discriminators.kinds) == ["mrstft", "mpd", "pwg"]
    outputs = discriminators(torch.randn(2, 800))
    assert {kind: len(items) for kind, items in outputs.items()} == {"mrstft": 2, "mpd": 2, "pwg": 1}
    assert build_discriminators(["pwg"]).kinds["pwg"].receptive_field == 77  # Parallel WaveGAN's own size


@pytest.mark.parametrize(
    "kinds,settings,message",
    [
        (["mrstfd"], {}, "^mrstfd: unknown discriminator \\(known: mrstft, mpd, pwg\\)"),
        (["mpd", "mpd"], TINY, "^mpd: listed twice"),
        ([], {}, "^no discriminator"),
        (["mpd"], {"mpd": {"periods": []}}, "^mpd: periods: need at least one period"),
        (["pwg"], {"pwg": {"kernel": 3}}, "^pwg: .*unexpected keyword argument 'kernel'"),
        (["mrstft"], {"mrstft": {"spectrum": "phase"}}, "^mrstft: spectrum: expected one of"),
        (["mrstft"], {"mrstft": {"resolutions": [[64, 16, 128]]}}, "^mrstft: resolution \\(64, 16, 128\\)"),
    ],
)
def test_bad_discriminator_settings_are_one_line(kinds, settings, message):
    with pytest.raises(ValueError, match=message) as info:
        build_discriminators(kinds, settings)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------------------ receptive fields
@pytest.mark.parametrize("layers,radius", [(4, 5), (10, 38)])
def test_parallel_wavegan_score_depends_on_its_receptive_field_on_both_sides(layers, radius):
    disc = ParallelWaveGANDiscriminator(layers=layers, channels=4).double()
    assert disc.radius == radius and disc.receptive_field == 2 * radius + 1
    x = torch.randn(1, 200, dtype=torch.float64, requires_grad=True)
    (output,) = disc(x)
    depends = _nonzero_samples(output.score[0, 0, 100], x)
    assert depends.tolist() == list(range(100 - radius, 100 + radius + 1))  # not causal: both sides


@pytest.mark.parametrize("period", [2, 3, 5])
def test_period_discriminator_sees_one_phase_over_its_receptive_rows(period):
    disc = PeriodDiscriminator(period, channels=[4, 4]).double()
    assert disc.receptive_rows == 71  # 1 + 4 + 4·3 + 4·9 + 2·9
    x = torch.randn(1, 300 * period, dtype=torch.float64, requires_grad=True)
    score = disc(x).score
    row = score.shape[2] // 2
    for column in range(period):
        depends = _nonzero_samples(score[0, 0, row, column], x)
        assert (depends % period == column).all()  # only its phase of the period
        rows = depends // period
        assert int(rows.max() - rows.min()) + 1 == disc.receptive_rows


@pytest.mark.parametrize("spectrum", ["magnitude", "log_magnitude", "complex"])
def test_spectrogram_score_frame_depends_on_the_windows_of_six_frames_either_side(spectrum):
    n_fft, hop, win = 64, 16, 32
    disc = SpectrogramDiscriminator(n_fft, hop, win, channels=3, spectrum=spectrum).double()
    x = torch.randn(1, 1024, dtype=torch.float64, requires_grad=True)
    score = disc(x).score
    frame = 32
    depends = _nonzero_samples(score[0, 0, frame].sum(), x)
    # frame k's window covers samples [k·hop - win/2, k·hop + win/2); the periodic Hann window is 0 at its
    # first sample
    radius = SpectrogramDiscriminator.frame_radius
    first = (frame - radius) * hop - win // 2 + 1
    last = (frame + radius) * hop + win // 2 - 1
    assert int(depends.min()) == first and int(depends.max()) == last


# ------------------------------------------------------------------------------------------ gradients
@pytest.mark.parametrize("kind", ["mrstft", "mpd", "pwg"])
@pytest.mark.parametrize("objective", ["lsgan", "hinge"])
def test_gradients_reach_the_generator_and_every_discriminator_weight(kind, objective):
    torch.manual_seed(0)
    discriminators = build_discriminators([kind], TINY)
    loss = AdversarialLoss(objective)
    real = torch.randn(2, 800)
    generated = (0.5 * torch.randn(2, 800)).requires_grad_()
    # the discriminator's side: every weight receives a finite, nonzero gradient from each term (from
    # their sum, the hinge's output-bias gradients cancel while every score is inside the margin)
    real_out = discriminators(real)[kind]
    fake_out = discriminators(generated.detach())[kind]
    terms = loss.discriminator([o.score for o in real_out], [o.score for o in fake_out])
    for term in terms:
        discriminators.zero_grad()
        term.backward(retain_graph=True)
        for name, param in discriminators.named_parameters():
            assert param.grad is not None and torch.isfinite(param.grad).all(), name
            assert param.grad.abs().sum() > 0, name
    assert generated.grad is None  # detached: nothing flows back to the generator
    # the generator's side: adversarial and feature-matching terms reach the generated samples
    discriminators.zero_grad()
    fake_out = discriminators(generated)[kind]
    adversarial = loss.generator([o.score for o in fake_out])
    matching = feature_matching_loss([o.features for o in real_out], [o.features for o in fake_out])
    (grad,) = torch.autograd.grad(adversarial + matching, generated)
    assert torch.isfinite(grad).all() and (grad != 0).float().mean() > 0.9


# ------------------------------------------------------------------------------------------ objectives
def test_least_squares_and_hinge_closed_form():
    real = [torch.tensor([1.0, 0.0]), torch.tensor([[2.0]])]
    fake = [torch.tensor([0.0, 1.0]), torch.tensor([[-2.0]])]
    # mean over sub-discriminators of the mean over each map
    real_term, fake_term = discriminator_adversarial_loss(real, fake, "lsgan")
    assert real_term.item() == pytest.approx((0.5 + 1.0) / 2)
    assert fake_term.item() == pytest.approx((0.5 + 4.0) / 2)
    assert generator_adversarial_loss(fake, "lsgan").item() == pytest.approx((0.5 + 9.0) / 2)
    real_term, fake_term = discriminator_adversarial_loss(real, fake, "hinge")
    # max(0, 1 - r): (0 + 1) / 2 and 0;  max(0, 1 + f): (1 + 2) / 2 and 0
    assert real_term.item() == pytest.approx(0.25) and fake_term.item() == pytest.approx(0.75)
    assert generator_adversarial_loss(fake, "hinge").item() == pytest.approx((-0.5 + 2.0) / 2)


def test_feature_matching_is_l1_against_constant_real_features():
    real = [[torch.zeros(2, 3, requires_grad=True)], [torch.ones(4), torch.zeros(1)]]
    fake = [[torch.full((2, 3), 2.0, requires_grad=True)], [torch.ones(4), torch.full((1,), -3.0)]]
    value = feature_matching_loss(real, fake)
    assert value.item() == pytest.approx((2.0 + 0.0 + 3.0) / 3)  # the mean over the three layers
    value.backward()
    assert real[0][0].grad is None and torch.allclose(fake[0][0].grad, torch.full((2, 3), 1 / 3 / 6))


def test_objective_errors_are_one_line():
    with pytest.raises(ValueError, match="^objective: expected one of lsgan, hinge, got 'wgan'"):
        AdversarialLoss("wgan")
    with pytest.raises(ValueError, match="2 real but 1 generated"):
        discriminator_adversarial_loss([torch.zeros(1)] * 2, [torch.zeros(1)])
    with pytest.raises(ValueError, match="differ in shape"):
        feature_matching_loss([[torch.zeros(2)]], [[torch.zeros(3)]])
