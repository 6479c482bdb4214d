"""IAF student: flow log-determinants, causality, composed logistic parameters, fast path, TorchScript."""

import io
import warnings

import pytest
import torch

from vocoder.models import IAFFlow, IAFStudent

DT = torch.float64


def _randomize(module: torch.nn.Module, std: float = 0.2, seed: int = 0) -> torch.nn.Module:
    """Non-zero weights everywhere (the student's output layers start at zero, i.e. the identity)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * std)
    return module


def _small_student(separate: bool = False, upsample: str = "repeat", overlap: int = 0) -> IAFStudent:
    student = IAFStudent(
        n_mels=5,
        hop_length=4,
        flow_layers=[3, 2, 2],
        dilation_cycle=2,
        residual_channels=6,
        gate_channels=8,
        log_scale_min=-7.0,
        separate_networks=separate,
        upsample=upsample,
        upsample_overlap=overlap,
    ).to(DT)
    return _randomize(student)


def _script(module: torch.nn.Module) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated but still supported
        return torch.jit.script(module)


def test_default_configuration() -> None:
    student = IAFStudent()
    assert len(student.flows) == 4
    assert all(len(flow.nets) == 1 and len(flow.nets[0].blocks) == 10 for flow in student.flows)
    assert student.flows[0].nets[0].dilations == [2**i for i in range(10)]
    assert student.flows[0].nets[0].skip_channels == 0  # no skip connections by default
    assert student.receptive_field == 1 + 4 * 1024
    eight = IAFStudent(separate_networks=True)
    assert sum(len(flow.nets) for flow in eight.flows) == 8


def test_untrained_student_is_identity() -> None:
    student = IAFStudent(
        n_mels=5, hop_length=4, flow_layers=[2, 2], dilation_cycle=2, residual_channels=6, gate_channels=8
    )
    mel = torch.randn(2, 5, 6)
    z = student.sample_noise(mel, seed=0)
    x, mu, log_s = student(z, mel)
    assert torch.equal(x, z)
    assert torch.count_nonzero(mu) == 0 and torch.count_nonzero(log_s) == 0


@pytest.mark.parametrize("separate", [False, True])
def test_flow_log_determinant_equals_autograd_jacobian(separate: bool) -> None:
    """Each flow's Jacobian is lower-triangular with diagonal s, so log|det| = Σ log s."""
    flow = _randomize(
        IAFFlow(
            layers=3,
            dilation_cycle=2,
            kernel_size=2,
            residual_channels=5,
            gate_channels=6,
            skip_channels=None if not separate else 4,
            cond_channels=3,
            log_scale_min=-7.0,
            separate_networks=separate,
        ).to(DT),
        std=0.4,
    )
    length = 16
    x = torch.randn(1, length, dtype=DT)
    cond = torch.randn(1, 3, length // 4, dtype=DT)
    jacobian = torch.autograd.functional.jacobian(lambda v: flow(v, cond, 4)[0], x)[0, :, 0, :]
    _, _, log_s = flow(x, cond, 4)
    upper = torch.triu(jacobian, diagonal=1)
    assert torch.count_nonzero(upper) == 0
    torch.testing.assert_close(torch.diagonal(jacobian), log_s[0].exp(), rtol=1e-12, atol=0)
    sign, log_abs_det = torch.linalg.slogdet(jacobian)
    assert sign.item() == 1.0
    torch.testing.assert_close(log_abs_det, log_s.sum(), rtol=1e-12, atol=1e-12)
    # The strictly lower part is not trivially zero: μ and s do read the past.
    assert torch.count_nonzero(torch.tril(jacobian, diagonal=-1)) > 0


def test_log_scale_floor() -> None:
    flow = IAFFlow(
        layers=2,
        dilation_cycle=2,
        kernel_size=2,
        residual_channels=4,
        gate_channels=4,
        skip_channels=None,
        cond_channels=2,
        log_scale_min=-3.0,
        separate_networks=False,
    ).to(DT)
    with torch.no_grad():
        flow.nets[0].output.bias.copy_(torch.tensor([0.0, -50.0], dtype=DT))
    _, _, log_s = flow(torch.randn(2, 8, dtype=DT), torch.randn(2, 2, 2, dtype=DT), 4)
    assert torch.all(log_s == -3.0)


@pytest.mark.parametrize("separate,upsample", [(False, "repeat"), (True, "repeat"), (False, "centred")])
def test_student_is_causal(separate: bool, upsample: str) -> None:
    """A change of z at t changes no x before t; μ_tot, s_tot up to t depend on z_<t only.

    With the centred upsampler (look-ahead of the mel) the student stays causal in its noise.
    """
    student = _small_student(separate, upsample)
    mel = torch.randn(1, 5, 10, dtype=DT)
    z = student.sample_noise(mel, seed=1)
    t = 17
    changed = z.clone()
    changed[0, t] += 1.0
    a, b = student(z, mel), student(changed, mel)
    x_a, mu_a, ls_a = a
    x_b, mu_b, ls_b = b
    torch.testing.assert_close(x_a[:, :t], x_b[:, :t], rtol=0, atol=0)
    torch.testing.assert_close(mu_a[:, : t + 1], mu_b[:, : t + 1], rtol=0, atol=0)
    torch.testing.assert_close(ls_a[:, : t + 1], ls_b[:, : t + 1], rtol=0, atol=0)
    assert (x_a[:, t] - x_b[:, t]).abs().item() > 1e-6
    assert (mu_a[:, t + 1] - mu_b[:, t + 1]).abs().item() > 1e-9


def test_composed_parameters_match_flow_by_flow_composition() -> None:
    student = _small_student()
    mel = torch.randn(2, 5, 6, dtype=DT)
    z = student.sample_noise(mel, seed=2)
    x, mu_tot, log_s_tot = student(z, mel)
    torch.testing.assert_close(x, z * log_s_tot.exp() + mu_tot, rtol=0, atol=1e-12)
    cond, repeat = student.upsampler.forward_factored(mel)
    value, total_mu, total_s = z, torch.zeros_like(z), torch.ones_like(z)
    for flow in student.flows:
        value, mu, log_s = flow(value, cond, repeat)
        total_mu, total_s = total_mu * log_s.exp() + mu, total_s * log_s.exp()
    torch.testing.assert_close(value, x, rtol=0, atol=0)
    torch.testing.assert_close(total_mu, mu_tot, rtol=0, atol=1e-12)
    torch.testing.assert_close(total_s.log(), log_s_tot, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "separate,upsample,overlap",
    [(False, "repeat", 0), (True, "repeat", 0), (False, "transposed", 2), (False, "centred", 0)],
)
@pytest.mark.parametrize("chunk_frames", [1, 3, 100])
def test_blockwise_synthesis_equals_forward(
    separate: bool, upsample: str, overlap: int, chunk_frames: int
) -> None:
    student = _small_student(separate, upsample, overlap)
    mel = torch.randn(2, 5, 10, dtype=DT)
    z = student.sample_noise(mel, seed=3)
    reference = student(z, mel)[0]
    fast = student.synthesize_from_noise(z, mel, chunk_frames)
    torch.testing.assert_close(fast, reference, rtol=0, atol=1e-12)
    assert not fast.requires_grad


def test_blockwise_synthesis_float32_and_seeded_synthesis() -> None:
    student = _small_student().float()
    mel = torch.randn(1, 5, 12)
    out = student.synthesize(mel, seed=7)
    assert out.shape == (1, 48)
    torch.testing.assert_close(out, student(student.sample_noise(mel, seed=7), mel)[0], rtol=0, atol=1e-5)
    assert torch.equal(student.synthesize(mel, seed=7), out)
    assert not torch.equal(student.synthesize(mel, seed=8), out)


def test_rejects_mismatched_lengths() -> None:
    student = _small_student()
    mel = torch.randn(1, 5, 4, dtype=DT)
    with pytest.raises(ValueError):
        student(torch.randn(1, 15, dtype=DT), mel)
    with pytest.raises(ValueError):
        student.synthesize_from_noise(torch.randn(1, 17, dtype=DT), mel, 2)


@pytest.mark.parametrize("separate,upsample", [(False, "repeat"), (True, "transposed"), (False, "centred")])
def test_torchscript_matches_eager(separate: bool, upsample: str) -> None:
    student = _small_student(separate, upsample, 1 if upsample == "transposed" else 0).float()
    scripted = _script(student)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(scripted, buffer)
        buffer.seek(0)
        loaded = torch.jit.load(buffer)
    mel = torch.randn(2, 5, 9)
    z = student.sample_noise(mel, seed=4)
    for module in (scripted, loaded):
        for got, expected in zip(module(z, mel), student(z, mel), strict=True):
            torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
        torch.testing.assert_close(
            module.synthesize(mel, 5, 2), student.synthesize(mel, 5, 2), rtol=0, atol=1e-6
        )


@pytest.mark.parametrize(
    "separate,upsample,overlap",
    [(False, "repeat", 0), (True, "repeat", 0), (False, "transposed", 2), (False, "centred", 0)],
)
@pytest.mark.parametrize("segments", [2, 3])
def test_segmented_synthesis_equals_one_pass(
    separate: bool, upsample: str, overlap: int, segments: int
) -> None:
    student = _small_student(separate, upsample, overlap)
    lead = student.lead_in_frames()
    # the composed receptive field, rounded up to frames, is what a segment needs before its start
    assert lead == -(-(student.receptive_field - 1) // student.hop_length)
    frames = segments * lead + 5
    mel = torch.randn(2, 5, frames, dtype=DT)
    z = student.sample_noise(mel, seed=3)
    bounds = student.segment_bounds(frames, segments)
    assert len(bounds) == segments and bounds[0][0] == 0 and bounds[-1][1] == frames
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    reference = student(z, mel)[0]
    segmented = student.synthesize_from_noise(z, mel, 2, segments)
    torch.testing.assert_close(segmented, reference, rtol=0, atol=1e-12)
    # the second segment evaluates its lead-in and its own frames, nothing more
    out = torch.empty_like(z)
    cond, repeat = student.upsampler.forward_factored(mel)
    first, last = bounds[1]
    with torch.no_grad():
        evaluated = student._synthesize_range(z, cond, repeat, first, last, 2, out)
    # flow f evaluates from Σ_{j ≥ f} R_j samples (in whole frames) before the segment on
    fields = [flow.receptive_field for flow in student.flows]
    leads = [-(-sum(fields[f:]) // student.hop_length) for f in range(len(fields))]
    assert evaluated == sum(last - max(0, first - lead_f) for lead_f in leads) * student.hop_length
    span = slice(first * student.hop_length, last * student.hop_length)
    torch.testing.assert_close(out[:, span], reference[:, span], rtol=0, atol=1e-12)


def test_segments_limited_by_lead_in() -> None:
    student = _small_student()
    lead = student.lead_in_frames()
    assert student.segment_bounds(lead - 1, 4) == [(0, lead - 1)]
    assert len(student.segment_bounds(2 * lead, 8)) == 2


def test_torchscript_segmented_synthesis() -> None:
    student = _small_student().float()
    scripted = _script(student)
    mel = torch.randn(1, 5, 3 * student.lead_in_frames())
    assert torch.is_grad_enabled()
    torch.testing.assert_close(
        scripted.synthesize(mel, 5, 2, 3), student.synthesize(mel, 5, 2, 1), rtol=0, atol=1e-6
    )
    # the forked segments leave the caller's grad mode as it was (no_grad restored on its own thread)
    assert torch.is_grad_enabled()
    with torch.no_grad():
        scripted.synthesize(mel, 5, 2, 3)
        assert not torch.is_grad_enabled()
    assert torch.is_grad_enabled()


def test_centred_upsampler_aligns_frames_with_their_centres_and_looks_ahead() -> None:
    """Frame k is centred at sample k·hop: half frames interpolate ¾/¼ and ¼/¾ between k and k+1."""
    from vocoder.layers._upsample import CentredUpsampler

    hop = 4
    upsampler = CentredUpsampler(channels=1, hop_length=hop, context=2).to(DT)
    frames = torch.tensor([[[0.0, 4.0, 8.0, 12.0]]], dtype=DT)  # a ramp: 4 per frame, 1 per sample
    # the mixer starts as the identity; the last frame is replicated
    expected = torch.tensor([1.0, 3.0, 5.0, 7.0, 9.0, 11.0, 12.0, 12.0], dtype=DT).repeat_interleave(hop // 2)
    torch.testing.assert_close(upsampler(frames)[0, 0], expected, rtol=0, atol=1e-12)
    low, repeat = upsampler.forward_factored(frames)
    assert repeat == hop // 2 and low.shape == (1, 1, 8)
    # with a random mixer, samples of frame k read frames k-2 … k+3 and nothing else
    _randomize(upsampler)
    mel = torch.randn(1, 1, 12, dtype=DT)
    base = upsampler(mel)
    for changed_frame in range(12):
        changed = mel.clone()
        changed[0, 0, changed_frame] += 1.0
        differs = (upsampler(changed) - base).abs()[0, 0].view(12, hop).amax(dim=1) > 0
        reached = [k for k in range(12) if differs[k]]
        inside = [k for k in range(12) if changed_frame - 3 <= k <= changed_frame + 2]
        assert reached == inside, changed_frame


def test_student_reads_mel_look_ahead_but_no_future_noise() -> None:
    student = _small_student(upsample="centred")
    assert student.cond_lookahead_frames == 3 and _small_student().cond_lookahead_frames == 0
    mel = torch.randn(1, 5, 10, dtype=DT)
    z = student.sample_noise(mel, seed=1)
    x = student(z, mel)[0]
    changed = mel.clone()
    changed[0, :, 6] += 1.0
    difference = (student(z, changed)[0] - x).abs().view(10, 4).amax(dim=1)
    assert torch.all(difference[:3] == 0) and difference[3] > 0  # frame 3 already hears frame 6


def test_per_flow_dilation_cycles_set_each_flow_receptive_field() -> None:
    student = IAFStudent(
        n_mels=5,
        hop_length=4,
        flow_layers=[3, 4, 6],
        dilation_cycle=[3, 4, 3],
        residual_channels=4,
        gate_channels=4,
    )
    # 1 + Σ dilations: 1+2+4 = 7, 1+2+4+8 = 15, (1+2+4)·2 = 14
    assert [flow.receptive_field for flow in student.flows] == [8, 16, 15]
    assert student.receptive_field == 1 + 8 + 16 + 15
    with pytest.raises(ValueError, match="dilation_cycle has 2 values for 3 flows"):
        IAFStudent(n_mels=5, hop_length=4, flow_layers=[3, 4, 6], dilation_cycle=[3, 4])
    paper = IAFStudent(flow_layers=[10, 10, 10, 30])
    assert [flow.receptive_field for flow in paper.flows] == [1024, 1024, 1024, 3 * 1023 + 1]


@pytest.mark.parametrize("separate", [False, True])
def test_output_log_scale_sets_the_untrained_output_level(separate: bool) -> None:
    student = IAFStudent(
        n_mels=5,
        hop_length=4,
        flow_layers=[2, 2],
        dilation_cycle=2,
        residual_channels=6,
        gate_channels=8,
        separate_networks=separate,
        output_log_scale=-3.5,
    )
    mel = torch.randn(2, 5, 6)
    z = student.sample_noise(mel, seed=0)
    x, mu, log_s = student(z, mel)
    torch.testing.assert_close(x, z * torch.exp(torch.tensor(-3.5)), rtol=1e-6, atol=0)
    assert torch.count_nonzero(mu) == 0 and torch.allclose(log_s, torch.full_like(log_s, -3.5))
    student.set_output_log_scale(0.0)
    assert torch.equal(student(z, mel)[0], z)
