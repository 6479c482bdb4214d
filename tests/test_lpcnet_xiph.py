"""LPCNet's xiph fidelity: tempering, excitation noise, augmentation, fp32 recurrences, warm starts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.trainer_toy import make_trainer
from vocoder.checkpoints import CheckpointError, export_weights, load_weights, upgrade_config
from vocoder.data import AugmentSettings, augment_waveform, draw_augmentation
from vocoder.dsp import mulaw_code_values, mulaw_decode, mulaw_encode
from vocoder.inference._lpcnet_sampling import sampling_exponent
from vocoder.models import LPCNet
from vocoder.training._noise import ExcitationNoise, excitation_noise_inputs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ----------------------------------------------------------------------------------------- tempering
def test_tempering_exponent_is_xiphs_formula_on_the_stored_feature():
    stored = np.linspace(-0.5, 0.5, 101)  # xiph stores g − 0.5
    # v0.1 src/test_lpcnet.py: np.power(p, np.maximum(0, 1.5*features[c, fr, 37] - .5)) on top of p itself
    xiph = 1.0 + np.maximum(0.0, 1.5 * stored - 0.5)
    np.testing.assert_array_equal(sampling_exponent(stored), xiph)
    np.testing.assert_array_equal(sampling_exponent(torch.from_numpy(stored)).numpy(), xiph)
    g = stored + 0.5
    assert np.all(sampling_exponent(stored)[g <= 0.5 / 1.5 + 0.5 + 1e-12] == 1.0)  # starts at g > 0.8333
    assert sampling_exponent(np.array([0.5]))[0] == pytest.approx(1.25)  # tops out at 1.25
    # the earlier convention, on g itself: starts at g > 1/3 and reaches 2
    np.testing.assert_allclose(sampling_exponent(stored, "raw"), 1.0 + np.maximum(0.0, 1.5 * g - 0.5))
    assert sampling_exponent(np.array([0.5]), "raw")[0] == pytest.approx(2.0)
    np.testing.assert_array_equal(sampling_exponent(stored, "none"), np.ones_like(stored))
    with pytest.raises(ValueError, match="tempering"):
        sampling_exponent(stored, "sharp")


# ------------------------------------------------------------------------------------ excitation noise
def test_excitation_noise_is_integer_laplacian_of_the_configured_std():
    noise = ExcitationNoise(scale=3.0, distribution="laplace", schedule="fixed")
    codes = noise.sample_codes((4, 200_000), generator=torch.Generator().manual_seed(0))
    assert codes.dtype == torch.int64
    values = codes.double()
    # floor(.5 + Laplace(b = σ/√2)): variance σ² + 1/12 (rounding), mean 0, excess kurtosis ≈ 3
    assert abs(values.mean().item()) < 0.02
    assert values.var().item() == pytest.approx(9.0 + 1 / 12, rel=0.03)
    kurtosis = ((values - values.mean()) ** 4).mean() / values.var() ** 2 - 3
    assert 2.3 < kurtosis.item() < 3.5
    # P(|n| >= 3σ) of a Laplace is exp(−3√2) ≈ 1.4 %, of a Gaussian 0.27 %: heavy tails
    assert (values.abs() > 9).double().mean().item() > 0.008


def test_excitation_noise_std_schedule_is_xiphs_4u2():
    noise = ExcitationNoise(scale=4.0, schedule="square")
    std = noise.segment_std(100_000, generator=torch.Generator().manual_seed(1)).squeeze(1)
    # σ = 4u², u ~ U(0, 1): E σ = 4/3, E σ² = 16/5, σ ≤ 4
    assert std.mean().item() == pytest.approx(4 / 3, rel=0.02)
    assert (std**2).mean().item() == pytest.approx(16 / 5, rel=0.02)
    assert std.max().item() <= 4.0 and std.min().item() >= 0.0
    assert (noise.sample_codes((8, 100)) == 0).all() if noise.scale == 0 else True
    assert (ExcitationNoise(scale=0.0).sample_codes((3, 50)) == 0).all()


def xiph_lin2ulaw(x: float) -> int:
    """xiph's lin2ulaw (lpcnet.h / common.h) of a 16-bit-scale sample, transcribed."""
    scale = 255.0 / 32768.0
    s = 1 if x >= 0 else -1
    u = s * (128 * math.log(1 + scale * abs(x)) / math.log(256))
    u = min(max(128 + u, 0), 255)
    return int(math.floor(0.5 + u))


def xiph_ulaw2lin(u: float) -> float:
    """xiph's ulaw2lin, transcribed (16-bit scale)."""
    u = u - 128
    s = 1 if u >= 0 else -1
    return s * (32768.0 / 255.0) * (math.exp(abs(u) / 128.0 * math.log(256)) - 1)


def test_mid_tread_mulaw_is_xiphs_lin2ulaw_and_ulaw2lin():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(-1, 1, 20000), rng.normal(0, 1e-3, 20000), rng.normal(0, 1e-5, 2000),
                        [0.0, -0.0, 1.0, -1.0, 1e-12, -1e-12, 0.999, -0.999]])
    expected = np.array([xiph_lin2ulaw(v * 32768.0) for v in x])
    np.testing.assert_array_equal(mulaw_encode(x, 8, "mid_tread"), expected)
    np.testing.assert_array_equal(mulaw_encode(torch.from_numpy(x).float(), 8, "mid_tread").numpy(),
                                  [xiph_lin2ulaw(float(v) * 32768.0) for v in torch.from_numpy(x).float()])
    codes = np.arange(256)
    np.testing.assert_allclose(mulaw_decode(codes, 8, "mid_tread") * 32768.0,
                               [xiph_ulaw2lin(c) for c in codes], rtol=1e-13, atol=1e-9)
    assert mulaw_decode(np.int64(128), 8, "mid_tread") == 0.0  # mid-tread: a code for silence
    assert mulaw_encode(np.zeros(1), 8, "mid_tread")[0] == 128
    np.testing.assert_array_equal(mulaw_encode(mulaw_decode(codes, 8, "mid_tread"), 8, "mid_tread"), codes)
    np.testing.assert_array_equal(mulaw_code_values(8, "mid_tread"), mulaw_decode(codes, 8, "mid_tread"))
    # the earlier convention has no zero code: 128 decodes to +1/255 in the companded domain
    assert mulaw_decode(np.int64(128), 8, "mid_rise") > 0 > mulaw_decode(np.int64(127), 8, "mid_rise")
    assert (mulaw_encode(x, 8, "mid_rise") != expected).mean() > 0.2
    with pytest.raises(ValueError, match="quantizer must be one of mid_rise, mid_tread"):
        mulaw_encode(x, 8, "midtread")


def _reference_recursion(clean, lpc, noise, hop, history, bits=8, quantizer="mid_rise"):
    """xiph's write_audio, sample by sample in float64 Python (no vectorization); with ``mid_tread``
    the codes are xiph's own lin2ulaw / ulaw2lin."""
    if quantizer == "mid_tread":
        def encode(v):
            return xiph_lin2ulaw(float(v) * 32768.0)

        def decode(c):
            return xiph_ulaw2lin(c) / 32768.0
    else:
        def encode(v):
            return int(mulaw_encode(np.array(v), bits))

        def decode(c):
            return float(mulaw_decode(np.array(c, np.float64), bits))
    batch, total = clean.shape
    order = lpc.shape[-1]
    out = {k: np.zeros((batch, total - history), np.int64)
           for k in ("signal_in", "prediction", "excitation_in", "target")}
    for b in range(batch):
        past = [0.0] * order
        previous = 2 ** (bits - 1)
        for t in range(total):
            a = lpc[b, max(t - history, 0) // hop]
            p = -sum(a[k] * past[k] for k in range(order))
            e = encode(clean[b, t] - p)
            if t >= history:
                i = t - history
                out["signal_in"][b, i] = encode(past[0])
                out["prediction"][b, i] = encode(p)
                out["excitation_in"][b, i] = previous
                out["target"][b, i] = e
            noisy = min(max(e + int(noise[b, t]), 0), 2**bits - 1)
            past = [p + decode(noisy)] + past[:-1]
            previous = noisy
    return out


@pytest.mark.parametrize("quantizer", ["mid_tread", "mid_rise"])
def test_excitation_noise_inputs_follow_xiphs_recursion(quantizer):
    rng = np.random.default_rng(0)
    hop, history, frames, order = 40, 24, 3, 8
    total = history + frames * hop
    t = np.arange(total)
    clean = 0.3 * np.sin(2 * np.pi * t / 37.0)[None] + 0.02 * rng.standard_normal((2, total))
    lpc = np.tile(np.r_[-0.9, np.zeros(order - 1)], (2, frames, 1)) + 0.01 * rng.standard_normal((2, frames, order))
    noise = np.rint(3 * rng.laplace(size=(2, total))).astype(np.int64)
    got = excitation_noise_inputs(torch.from_numpy(clean), torch.from_numpy(lpc), torch.from_numpy(noise),
                                  hop, history, quantizer=quantizer)
    expected = _reference_recursion(clean, lpc, noise, hop, history, quantizer=quantizer)
    for key in expected:
        np.testing.assert_array_equal(got[key].numpy(), expected[key], err_msg=key)
    # the target comes from the clean signal; the past (and e_{t−1}) carry the noise
    zero = excitation_noise_inputs(torch.from_numpy(clean), torch.from_numpy(lpc), torch.zeros(2, total,
                                   dtype=torch.int64), hop, history, quantizer=quantizer)
    assert (zero["excitation_in"][:, 1:] == zero["target"][:, :-1]).all()  # no noise: e_{t−1} is the last target
    assert (got["excitation_in"][:, 1:] != got["target"][:, :-1]).any()
    # past = p + μ⁻¹(clamp(e + n)): the code of s̃_{t−1} follows from the previous p and noisy e
    p_prev = got["prediction"][:, :-1].numpy()
    assert p_prev.shape == got["signal_in"][:, 1:].shape


# ---------------------------------------------------------------------------------------- augmentation
def test_augmentation_draws_follow_xiph_and_identity_is_exact():
    settings = AugmentSettings(enabled=True)
    rng = np.random.default_rng(0)
    draws = [draw_augmentation(settings, rng) for _ in range(4000)]
    gains_db = np.array([20 * math.log10(d.gain) for d in draws if d.gain > 0])
    assert np.allclose(gains_db, np.round(gains_db), atol=1e-9)  # whole dB
    plain = gains_db[gains_db > -20.5]  # × 0.01 adds −40 dB
    assert plain.min() == -20 and plain.max() == 19 and len(np.unique(plain)) == 40
    attenuated = np.mean([d.gain > 0 and 20 * math.log10(d.gain) < -20.5 for d in draws])
    assert 0.03 < attenuated < 0.07
    assert 0.003 < np.mean([d.gain == 0 for d in draws]) < 0.02
    coefficients = np.array([d.a + d.b for d in draws])
    assert np.abs(coefficients).max() <= 0.375 and np.abs(coefficients).max() > 0.37
    # the high-pass removes DC; gain 1 and a flat filter leave the signal unchanged
    dc = augment_waveform(np.ones(8000), draw_augmentation(AugmentSettings(filter_range=0.0, gain_db_min=0,
                                                           gain_db_max=0, attenuate_probability=0,
                                                           silence_probability=0), rng))
    assert abs(dc[-100:]).max() < 0.02
    x = np.random.default_rng(1).standard_normal(1000)
    flat = draw_augmentation(AugmentSettings(filter_range=0.0, gain_db_min=0, gain_db_max=0,
                                             attenuate_probability=0, silence_probability=0), rng)
    np.testing.assert_allclose(augment_waveform(x, flat, highpass=False), x, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="filter_range"):
        AugmentSettings(filter_range=1.5)


# ------------------------------------------------------------------------------------ fp32 recurrences
TINY = dict(frame_channels=16, pitch_embedding_size=8, sample_embedding_size=8, gru_a_size=16, gru_b_size=8)


def test_gru_outputs_stay_float32_under_bf16_autocast():
    torch.manual_seed(0)
    model = LPCNet(**TINY)
    batch, frames = 2, 3
    features = torch.randn(batch, frames + 4, 20)
    features[..., 18] = 0.2
    codes = [torch.randint(0, 256, (batch, frames * 160)) for _ in range(3)]
    reference = model(features, *codes)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        conditioning = model.frame_rate_network(features)
        logits, (h_a, h_b) = model.sample_rate_network(conditioning, *codes)
        fused, (f_a, f_b) = model._sample_rate_fused(conditioning.float(), *codes, model.initial_state(batch))
    assert conditioning.dtype == torch.bfloat16  # autocast is really on for the frame-rate part
    assert logits.dtype == h_a.dtype == h_b.dtype == torch.float32
    # the recurrences ran in float32: only the bf16 conditioning's rounding separates them from fp32
    assert (logits - reference).abs().max().item() < 0.1
    del fused, f_a, f_b


def test_period_embedding_uses_xiphs_row():
    model = LPCNet(**TINY)
    stored = torch.tensor([[(32 - 100) / 50, (100.4 - 100) / 50, (255.9 - 100) / 50, 7.0]])
    features = torch.zeros(1, 4, 20)
    features[..., 18] = stored
    assert model.period_codes(features).tolist() == [[32, 100, 255, 255]]  # int(.1 + 50 f + 100), clamped
    xiph = LPCNet(**TINY, init="xiph").pitch_embedding.weight
    assert xiph.abs().max() <= 0.05
    assert LPCNet(**TINY, init="per_gate").pitch_embedding.weight.abs().max() > 1.0
    with pytest.raises(ValueError, match="init"):
        LPCNet(**TINY, init="he")


# ------------------------------------------------------------------------------ init_from / weights
def test_init_from_loads_weights_not_optimizer_or_step(tmp_path):
    pretrained = make_trainer(tmp_path / "a", max_steps=40, valid_every=0, audio_every=0)
    pretrained.fit()
    source = tmp_path / "a" / "checkpoints" / "last.pt"
    fresh = make_trainer(tmp_path / "fresh", max_steps=0)
    fresh._setup()
    warm = make_trainer(tmp_path / "warm", max_steps=0, init_from=str(source))
    warm._setup()
    assert warm.step == 0
    for name, value in pretrained.module.model.state_dict().items():
        assert torch.equal(warm.module.model.state_dict()[name], value)
        assert torch.equal(warm.ema.state_dict()[name], pretrained.ema.state_dict()[name])
    assert not warm.optimizer.state_dict()["state"]  # a fresh optimizer
    batch = torch.stack([warm.module.train_dataset("train")[(i, 0)] for i in range(16)])
    with torch.no_grad():
        warm_loss = warm.module.training_step(batch, 1)["mse"].item()
        fresh_loss = fresh.module.training_step(batch, 1)["mse"].item()
    assert warm_loss < 0.2 * fresh_loss
    # a weights file (EMA only, float16) initializes the same way
    weights = export_weights(source, tmp_path / "toy.pt")
    state = torch.load(weights, weights_only=True)
    assert "optimizer" not in state and "model" not in state
    assert all(v.dtype == torch.float16 for v in state["ema"].values())
    warm2 = make_trainer(tmp_path / "warm2", max_steps=0, init_from=str(weights))
    warm2._setup()
    for name, value in pretrained.ema.state_dict().items():
        torch.testing.assert_close(warm2.module.model.state_dict()[name], value, rtol=1e-3, atol=1e-3)
    # resuming its own run wins over init_from
    warm3 = make_trainer(tmp_path / "a", max_steps=40, init_from=str(weights))
    warm3._setup()
    assert warm3.step == 40


def test_init_from_shape_mismatch_is_one_line(tmp_path):
    other = make_trainer(tmp_path / "a", max_steps=2, valid_every=0, audio_every=0)
    other.module.model[0] = torch.nn.Linear(4, 8)
    other.module.model[2] = torch.nn.Linear(8, 1)
    other.fit()
    warm = make_trainer(tmp_path / "b", max_steps=0, init_from=str(tmp_path / "a" / "checkpoints" / "last.pt"))
    with pytest.raises(CheckpointError) as info:
        warm._setup()
    message = str(info.value)
    assert "\n" not in message and "init_from" in message and "0.weight" in message and "shape" in message


def test_pretrained_name_errors_list_the_available_models():
    with pytest.raises(CheckpointError, match="no such pretrained model"):
        load_weights("pretrained:no_such_model")


# ------------------------------------------------------------------------------- xiph feature files
def test_xiph_feature_file_round_trip_and_layout(tmp_path, slt_root):
    import soundfile as sf

    from vocoder.data import DataError, read_xiph_features, write_xiph_features
    from vocoder.dsp import lpcnet_features

    wav = sorted((slt_root / "wav").glob("*.wav"))[0]
    audio, _ = sf.read(wav)
    features, lpc = lpcnet_features(audio.astype(np.float32))
    path = write_xiph_features(tmp_path / "utt.f32", features, lpc)
    raw = np.fromfile(path, dtype=np.float32)
    assert raw.size == 36 * len(features)  # 36 floats per 10 ms frame, as lpcnet_demo -features
    rows = raw.reshape(-1, 36)
    np.testing.assert_array_equal(rows[:, :20], features)
    np.testing.assert_array_equal(rows[:, 20:], lpc)
    back, back_lpc = read_xiph_features(path)
    np.testing.assert_array_equal(back, features)
    np.testing.assert_array_equal(back_lpc, lpc)
    # xiph's definitions of the two pitch columns
    period = rows[:, 18] * 50 + 100
    assert np.all((period >= 32 - 1e-3) & (period <= 256 + 1e-3))
    assert np.all(rows[:, 19] <= 0.5 + 1e-6)
    # 20-float rows (features only) and a wrong size
    features.tofile(tmp_path / "only.f32")
    only, none = read_xiph_features(tmp_path / "only.f32", floats_per_frame=20)
    np.testing.assert_array_equal(only, features) and none is None
    (tmp_path / "bad.f32").write_bytes(b"\0" * (36 * 4 + 4))
    with pytest.raises(DataError, match="bad.f32.*whole number"):
        read_xiph_features(tmp_path / "bad.f32")


def _xiph_analysis_windows(pcm: np.ndarray, writer: str) -> np.ndarray:
    """The samples each row of xiph's feature file is analysed on, by xiph's own buffering ``(rows, 320)``.

    Transcribed from xiph/LPCNet ``src/``: ``dump_data.c`` (main loop: ``x[i] = tmp[i]``, then
    ``fread(tmp, ...)``, a short read ends the loop, then ``compute_frame_features(st, x)``),
    ``lpcnet_demo.c`` (``MODE_FEATURES``: ``fread(pcm, ...)``, then
    ``lpcnet_compute_single_frame_features``), and ``lpcnet_enc.c`` ``frame_analysis`` (the window is
    ``analysis_mem`` — the last ``OVERLAP_SIZE`` samples handed over — followed by the new frame).
    """
    frame_size, overlap_size = 160, 160  # src/freq.h: FRAME_SIZE, OVERLAP_SIZE
    analysis_mem, tmp, rows = np.zeros(overlap_size), np.zeros(frame_size), []
    for start in range(0, len(pcm) - frame_size + 1, frame_size):  # every full read
        read = pcm[start:start + frame_size]
        if writer == "dump_data":
            x, tmp = tmp, read  # the frame read one iteration before
        else:
            x = read
        rows.append(np.concatenate([analysis_mem, x]))
        analysis_mem = x[frame_size - overlap_size:]
    return np.array(rows)


@pytest.mark.parametrize(("writer", "delay"), [("dump_data", 240), ("lpcnet_demo", 80)])
def test_xiph_feature_delay_follows_xiphs_window_positions(writer, delay):
    """Our analysis of the recording delayed by the documented delay windows exactly xiph's samples."""
    from vocoder.data import xiph_feature_delay
    from vocoder.dsp._bark import _frames, analysis_window

    assert xiph_feature_delay(writer) == delay
    pcm = np.random.default_rng(3).standard_normal(160 * 12 + 37)  # not a whole number of frames
    xiph = _xiph_analysis_windows(pcm, writer)
    assert xiph.shape == (12, 320)  # both programs write one row per full 10 ms frame read
    ours = _frames(np.concatenate([np.zeros(delay), pcm]), len(xiph))
    np.testing.assert_array_equal(ours, xiph * analysis_window())
    # any other delay windows other samples
    for other in (delay - 160, delay - 80, delay + 80):
        shifted = _frames(np.concatenate([np.zeros(max(other, 0)), pcm[max(-other, 0):]]), len(xiph))
        assert not np.allclose(shifted, xiph * analysis_window())
    assert xiph_feature_delay("vocoder") == 0
    with pytest.raises(ValueError, match="unknown xiph feature writer 'opus'"):
        xiph_feature_delay("opus")


class _FrameIndexVocoder:
    """A stand-in LPCNet vocoder: frame ``k`` of the output holds ``k`` (to see which samples are kept)."""

    conditioning_key = "features"
    batched = True
    sample_rate = 16000

    class features:  # noqa: N801 - the attribute the synthesis run reads
        hop_length = 160

    def synthesize(self, conditioning, seed=0):
        return [np.repeat(np.arange(len(c)), 160) / 1000.0 for c in conditioning]


@pytest.mark.parametrize("writer", ["dump_data", "lpcnet_demo", "vocoder"])
def test_xiph_files_are_synthesized_without_their_delay(tmp_path, writer):
    import soundfile as sf

    from vocoder.data import write_xiph_features, xiph_feature_delay
    from vocoder.inference import SynthesisError, collect_inputs, synthesize_inputs

    frames = 7
    features = np.zeros((frames, 20), np.float32)
    (tmp_path / "in").mkdir()
    write_xiph_features(tmp_path / "in" / "utt.f32", features, np.zeros((frames, 16), np.float32))
    report = synthesize_inputs(_FrameIndexVocoder(), collect_inputs(tmp_path / "in"), tmp_path / "out",
                               xiph_writer=writer)
    assert report.failed == []
    audio, _ = sf.read(tmp_path / "out" / "utt.wav")
    delay = xiph_feature_delay(writer)
    expected = (np.repeat(np.arange(frames), 160) / 1000.0)[delay:]
    assert len(audio) == frames * 160 - delay
    np.testing.assert_allclose(audio, expected, atol=1 / 32768)
    with pytest.raises(SynthesisError, match="xiph_writer: expected one of dump_data, lpcnet_demo, vocoder"):
        synthesize_inputs(_FrameIndexVocoder(), [], tmp_path / "out", xiph_writer="opus")


def test_earlier_pitch_correlation_stays_selectable(slt_root):
    import soundfile as sf

    from vocoder.data import FeatureSettings
    from vocoder.dsp import lpcnet_features, pitch_track

    audio, _ = sf.read(sorted((slt_root / "wav").glob("*.wav"))[0])
    audio = audio[:16000].astype(np.float32)
    xiph, _ = lpcnet_features(audio)
    ncc, _ = lpcnet_features(audio, pitch_correlation="ncc")
    np.testing.assert_array_equal(xiph[:, :19], ncc[:, :19])
    np.testing.assert_allclose(ncc[:, 19], pitch_track(audio)[1] - 0.5, atol=1e-6)
    assert ncc[:, 19].mean() > xiph[:, 19].mean()  # the NCC runs higher in voiced speech
    # a cache made with the other statistic is stale; the default keeps existing caches fresh
    assert FeatureSettings(pitch_correlation="ncc").fingerprint() != FeatureSettings().fingerprint()
    with pytest.raises(ValueError, match="pitch_correlation"):
        lpcnet_features(audio, pitch_correlation="yin")


# ---------------------------------------------------------------------------------------- μ-law convention
def test_checkpoints_from_before_the_quantizer_setting_are_read_as_mid_rise(tmp_path):
    old = {"model": {"_target_": "vocoder.models.LPCNet", "gru_a_size": 8}}
    assert upgrade_config(old)["model"]["mulaw_quantizer"] == "mid_rise"
    new = {"model": {"_target_": "vocoder.models.LPCNet", "mulaw_quantizer": "mid_tread"}}
    assert upgrade_config(new)["model"]["mulaw_quantizer"] == "mid_tread"
    other = {"model": {"_target_": "vocoder.models.WaveNetTeacher"}}
    assert "mulaw_quantizer" not in upgrade_config(other)["model"]
    assert LPCNet(gru_a_size=16).mulaw_quantizer == "mid_tread"  # xiph's is the default for new models
    from vocoder.inference import load

    assert load("pretrained:kathleen_lpcnet").model.mulaw_quantizer == "mid_rise"  # as it was trained


def test_resume_with_another_quantizer_is_one_line(tmp_path):
    first = make_trainer(tmp_path / "run", max_steps=2)
    first.config = {"model": {"_target_": "vocoder.models.LPCNet"}}  # written before the setting existed
    first.fit()
    again = make_trainer(tmp_path / "run", max_steps=4)
    again.config = {"model": {"_target_": "vocoder.models.LPCNet", "mulaw_quantizer": "mid_tread"}}
    with pytest.raises(CheckpointError) as info:
        again.fit()
    message = str(info.value)
    assert "\n" not in message and "last.pt" in message
    assert "model.mulaw_quantizer=mid_rise in the checkpoint, mid_tread now" in message
    same = make_trainer(tmp_path / "run", max_steps=4)
    same.config = {"model": {"_target_": "vocoder.models.LPCNet", "mulaw_quantizer": "mid_rise"}}
    same.fit()  # the setting it was trained with resumes
    assert same.step == 4
