"""Other sample rates: the analysis follows data.features.sample_rate, the mel models train and synthesize
at 24 kHz, LPCNet stays at 16 kHz (one line), the feature converter needs 10 ms frames, and vocoder-eval
scores each metric at its own rate and says so."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch
from hydra import compose, initialize_config_dir

from vocoder.config import CONFIG_DIR, register_resolvers, validate_data
from vocoder.data import (
    FeatureSettings,
    list_utterances,
    load_stats,
    load_utterance,
    prepare_corpus,
    read_split,
)
from vocoder.dsp import lpcnet_features
from vocoder.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "vocoder" / "data" / "sample" / "kathleen"
AT_24K = FeatureSettings(sample_rate=24000, hop_length=256, n_fft=1024, win_length=1024, fmax=12000.0)
TINY_STUDENT = [
    "model.flow_layers=[2,2]",
    "model.dilation_cycle=2",
    "model.residual_channels=8",
    "model.gate_channels=16",
]
TINY_TEACHER = [
    "model.layers=4",
    "model.dilation_cycle=4",
    "model.kernel_size=2",
    "model.residual_channels=8",
    "model.gate_channels=16",
    "model.skip_channels=8",
    "model.mixture_components=2",
]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _compose(config: str, *overrides: str):
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        return compose(config_name=config, overrides=list(overrides))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Three sample utterances cut to 1 s, as a folder at 22.05 kHz, 44.1 kHz stereo and 16 kHz FLAC."""
    root = tmp_path_factory.mktemp("recordings")
    for (rate, channels, suffix), utterance in zip(
        [(22050, 1, "wav"), (44100, 2, "wav"), (16000, 1, "flac")], list_utterances(SAMPLE)[:3], strict=True
    ):
        audio, _ = sf.read(utterance.wav, dtype="float32")
        audio = soxr.resample(audio[:16000], 16000, rate, quality="HQ") if rate != 16000 else audio[:16000]
        data = np.stack([audio] * channels, axis=1) if channels > 1 else audio
        sf.write(root / f"{utterance.id}.{suffix}", data, rate)
    return root


# ------------------------------------------------------------------------------------------ configs
@pytest.mark.parametrize(
    "rate, expected",
    [
        (16000, (160, 640, 1024, 8000.0, "cache/sample")),
        (22050, (256, 1024, 1024, 11025.0, "cache/sample_22050hz")),
        (24000, (256, 1024, 1024, 12000.0, "cache/sample_24000hz")),
        (48000, (480, 1920, 2048, 24000.0, "cache/sample_48000hz")),
    ],
)
def test_the_analysis_follows_the_sample_rate(rate, expected):
    data = validate_data(_compose("prepare", "data=sample", f"data.features.sample_rate={rate}").data)
    features = data.feature_settings()
    found = (features.hop_length, features.win_length, features.n_fft, features.fmax, data.cache_dir)
    assert found == expected
    if rate == 16000:  # the 16 kHz default is exactly the settings (and fingerprint) caches were made with
        assert features == FeatureSettings() and features.fingerprint() == FeatureSettings().fingerprint()
    # one setting set explicitly is kept
    data = validate_data(
        _compose(
            "prepare", "data=sample", f"data.features.sample_rate={rate}", "data.features.hop_length=128"
        ).data
    )
    assert data.feature_settings().hop_length == 128


def test_local_data_is_named_after_its_folder_and_needs_a_root(corpus):
    data = validate_data(_compose("prepare", "data=local", f"data.root={corpus}").data)
    assert data.name == corpus.name and data.cache_dir == f"cache/{corpus.name}" and data.layout == "auto"
    with pytest.raises(ConfigError, match=r"^data\.root: not set; give data\.root=DIR"):
        validate_data(_compose("prepare", "data=local").data)


def test_lpcnet_at_another_rate_is_one_line():
    from vocoder.config import validate_train_config

    cfg = _compose("train", "recipe=demo", "data.features.sample_rate=24000")
    with pytest.raises(ConfigError) as error:
        validate_train_config(cfg)
    assert str(error.value).startswith(
        "data.features.sample_rate=24000, hop_length=256: LPCNet is xiph's 16 kHz model"
    ) and "\n" not in str(error.value)


# ------------------------------------------------------------------------------------------ preparation
def test_a_24k_cache_holds_the_24k_audio_and_mel_without_lpcnet_features(corpus, tmp_path):
    result = prepare_corpus(corpus, tmp_path / "cache", AT_24K, n_eval=1, n_dev=1, num_workers=0,
                            progress=False)
    assert "resampled to 24000 Hz (soxr HQ): 1 at 16000 Hz, 1 at 22050 Hz, 1 at 44100 Hz" in result.summary()
    for uid in result.splits["train"] + result.splits["eval"]:
        with np.load(tmp_path / "cache" / "features" / f"{uid}.npz") as entry:
            assert set(entry.files) == {"audio", "mel", "fingerprint"}
            frames = entry["mel"].shape[0]
            assert frames == 24000 // 256 and entry["audio"].shape == (frames * 256,)
    assert set(load_stats(tmp_path / "cache")) == {"mel_mean", "mel_std"}
    assert load_utterance(tmp_path / "cache", result.splits["train"][0]).features is None


def test_10ms_frames_at_24k_carry_lpcnet_features_of_a_16k_copy(corpus, tmp_path):
    settings = FeatureSettings(sample_rate=24000, hop_length=240, n_fft=1024, win_length=960, fmax=12000.0)
    assert settings.lpcnet_frames and not settings.lpcnet_native
    result = prepare_corpus(corpus, tmp_path / "cache", settings, n_eval=1, n_dev=1, num_workers=0,
                            progress=False)
    uid = result.splits["train"][0]
    utterance = load_utterance(tmp_path / "cache", uid)
    frames = utterance.mel.shape[0]
    assert utterance.audio.shape == (frames * 240,) and utterance.features.shape == (frames, 20)
    at_16k = soxr.resample(utterance.audio, 24000, 16000, quality="HQ").astype(np.float32)
    assert at_16k.shape == (frames * 160,)
    features, lpc = lpcnet_features(at_16k, 16000, settings.preemphasis, settings.lpc_order)
    np.testing.assert_array_equal(utterance.features, features)
    np.testing.assert_array_equal(utterance.lpc, lpc)
    # the feature converter trains on them; on hop 256 (no LPCNet features) it is refused in one line
    from vocoder.models import FeatureConverter
    from vocoder.training import MGEFeatureTask

    converter = FeatureConverter(in_dim=20, out_dim=80, channels=8, kernel_size=3, layers=2)
    task = MGEFeatureTask(converter, str(tmp_path / "cache"), settings, frames=20)
    batch = task.collate([task.train_dataset("train")[(0, 1)]])
    assert torch.isfinite(task.training_step(batch, 1)["mge"])
    with pytest.raises(ConfigError, match=r"^data\.features\.hop_length=256: the feature converter needs "
                                          r"LPCNet's features, .* set data\.features\.hop_length=240"):
        MGEFeatureTask(converter, str(tmp_path / "cache"), AT_24K)


# ------------------------------------------------------------------------------------------ models at 24 kHz
def _train(recipe: str, corpus: Path, work: Path, *overrides: str) -> Path:
    from vocoder.config import build_trainer

    cfg = _compose(
        "train",
        f"recipe={recipe}",
        "data=local",
        f"data.root={corpus}",
        f"data.cache_dir={work / 'cache'}",
        "data.features.sample_rate=24000",
        "data.num_workers=0",
        "data.splits.n_eval=1",
        "data.splits.n_dev=1",
        f"trainer.out_dir={work / 'exp'}",
        "trainer.max_steps=2",
        "trainer.batch_size=2",
        "trainer.log_every=1",
        "trainer.valid_every=0",
        "trainer.audio_every=0",
        "trainer.checkpoint_every=2",
        "trainer.progress=log",
        *overrides,
    )
    assert cfg.data.features.hop_length == 256 and cfg.model.hop_length == 256
    trainer = build_trainer(cfg, log=lambda _line: None, progress=False)
    trainer.fit()
    return work / "exp" / "checkpoints" / "last.pt"


def test_the_iaf_student_trains_and_synthesizes_at_24k(corpus, tmp_path):
    from vocoder.inference import collect_inputs, load, synthesize_inputs

    checkpoint = _train(
        "iaf_24k", corpus, tmp_path, *TINY_STUDENT, "loss.frames=8", "loss.grad_share_every=0"
    )
    vocoder = load(checkpoint)
    assert vocoder.sample_rate == 24000 and vocoder.features.hop_length == 256
    assert vocoder.model.upsampler.hop_length == 256
    cache = tmp_path / "cache"
    mel = load_utterance(cache, read_split(cache, "eval")[0]).mel
    wave = vocoder.synthesize([mel], seed=0)[0]
    assert wave.shape == (mel.shape[0] * 256,) and np.isfinite(wave).all()
    # through the synthesis command's path: the wav is written at 24 kHz, frames × the 24 kHz hop long
    report = synthesize_inputs(vocoder, collect_inputs(cache, "eval"), tmp_path / "synth")
    info = sf.info(report.written[0])
    assert info.samplerate == 24000 and info.frames == mel.shape[0] * 256


def test_the_wavenet_teacher_trains_and_synthesizes_at_24k(corpus, tmp_path):
    from vocoder.inference import load

    checkpoint = _train(
        "slt_wavenet", corpus, tmp_path, *TINY_TEACHER, "loss.frames=4", "loss.example_seconds=0"
    )
    vocoder = load(checkpoint)
    assert vocoder.sample_rate == 24000 and vocoder.model.hop_length == 256
    mel = load_utterance(tmp_path / "cache", read_split(tmp_path / "cache", "eval")[0]).mel[:3]
    wave = vocoder.synthesize([mel], seed=0)[0]
    assert wave.shape == (3 * 256,) and np.isfinite(wave).all()


# ------------------------------------------------------------------------------------------ evaluation
def test_eval_at_24k_states_its_rates_and_scores_pesq_on_16k_copies(tmp_path, capsys):
    from vocoder.cli.evaluate import run, validate
    from vocoder.evaluation import evaluate_folders, mcep_alpha

    folders = {name: tmp_path / name for name in ("ref", "hyp", "ref16", "hyp16")}
    for folder in folders.values():
        folder.mkdir()
    rng = np.random.default_rng(0)
    for utterance in list_utterances(SAMPLE)[:1]:
        clean, _ = sf.read(utterance.wav, dtype="float64")
        clean = soxr.resample(clean[3000 : 3000 + 24000], 16000, 24000, quality="HQ")
        noisy = clean + 0.01 * rng.standard_normal(clean.shape)
        for name, signal in (("ref", clean), ("hyp", noisy)):
            sf.write(folders[name] / f"{utterance.id}.wav", signal, 24000, subtype="FLOAT")
            copy = soxr.resample(signal, 24000, 16000, quality="HQ")
            sf.write(folders[f"{name}16"] / f"{utterance.id}.wav", copy, 16000, subtype="FLOAT")
    # what vocoder-eval runs, on its own config: sample_rate unset = the references' 24 kHz
    cfg = _compose(
        "eval", f"ref={folders['ref']}", f"hyp={folders['hyp']}", f"output_dir={tmp_path / 'report'}",
        "plots=0", "workers=1", "cache=false",
    )
    cfg = {key: value for key, value in cfg.items() if key != "hydra"}
    from omegaconf import OmegaConf

    run(validate(OmegaConf.create(cfg)))
    stdout = capsys.readouterr().out
    line = (
        f"Scored at 24000 Hz: PESQ-WB on 16 kHz copies (P.862.2 is defined at 16 kHz), STOI at 10 kHz "
        f"(its definition), MCD (α = {mcep_alpha(24000):g}) and pitch at 24000 Hz."
    )
    assert line in stdout and line in (tmp_path / "report" / "summary.md").read_text()
    assert mcep_alpha(24000) == 0.466 and mcep_alpha(16000) == 0.42
    evaluate_folders(folders["ref16"], folders["hyp16"], tmp_path / "report16", plots=0, workers=1)
    assert "Scored at 16000 Hz: PESQ-WB at 16 kHz" in (tmp_path / "report16" / "summary.md").read_text()

    def pesq(report: str) -> dict[str, float]:
        with open(tmp_path / report / "scores.csv", newline="") as handle:
            return {row["utterance"]: float(row["pesq_wb"]) for row in csv.DictReader(handle)}

    native, copies = pesq("report"), pesq("report16")
    assert native.keys() == copies.keys() and all(1.0 < value < 4.5 for value in native.values())
    for uid, value in native.items():  # the same resampler, in float64 here and before writing there
        assert value == pytest.approx(copies[uid], abs=1e-3)
