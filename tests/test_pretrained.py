"""Packaged pretrained models: format, loading everywhere a checkpoint is accepted, warm starts."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from vocoder.pretrained import available, model_card, resolve

PRETRAINED = "pretrained:kathleen_lpcnet"


def test_packaged_lpcnet_is_a_small_plain_tensor_weights_file():
    assert "kathleen_lpcnet" in available()
    path = resolve(PRETRAINED)
    assert path.stat().st_size <= 5 * 1024 * 1024
    state = torch.load(path, weights_only=True)  # no pickled objects
    assert state["format"] == "vocoder-weights-1"
    assert not {"optimizer", "model", "rng", "scheduler"} & set(state)  # EMA weights only
    floating = [v for k, v in state["ema"].items() if v.is_floating_point() and not k.startswith("feature_")]
    assert floating and all(v.dtype == torch.float16 for v in floating)
    card = model_card(PRETRAINED)
    for section in ("Data", "Recipe", "Training", "Dev scores", "Licence"):
        assert f"## {section}" in card, section


@pytest.mark.parametrize("name", available())
def test_every_packaged_model_is_a_small_weights_file_with_a_card_and_loads(name):
    """Each ``vocoder/pretrained/NAME.pt``: ≤ 5 MB of float16 EMA weights, a model card with its
    sections and a version, and a network that rebuilds and synthesizes through ``vocoder.inference.load``."""
    from vocoder.inference import load

    spec = f"pretrained:{name}"
    path = resolve(spec)
    assert path.stat().st_size <= 5 * 1024 * 1024
    state = torch.load(path, weights_only=True)
    assert state["format"] == "vocoder-weights-1" and not {"optimizer", "model", "rng"} & set(state)
    card = model_card(spec)
    for section in ("Data", "Recipe", "Training", "Dev scores", "Licence"):
        assert f"## {section}" in card, (name, section)
    assert re.search(r"\*\*Version \d+\*\*, \d{4}-\d{2}-\d{2}", card), name
    vocoder = load(spec)
    channels = 20 if vocoder.conditioning_key == "features" else vocoder.features.n_mels
    frames = np.zeros((6, channels), np.float32)
    if vocoder.conditioning_key == "mel":
        frames[:] = -5.0
    wave = vocoder.synthesize([frames], seed=0)[0]
    assert wave.shape == (6 * vocoder.features.hop_length,) and np.isfinite(wave).all()


def test_packaged_lpcnet_synthesizes_speech_like_audio(sample_root):
    import soundfile as sf

    from vocoder.inference import load

    vocoder = load(PRETRAINED)
    wav = sorted((sample_root / "wav").glob("*.wav"))[-1]  # held out from the model's training split
    audio, _ = sf.read(wav)
    audio = audio[16000:16000 + 80 * 160].astype(np.float32)
    features = vocoder.analyze(audio)
    out = vocoder.synthesize([features], seed=0)[0]
    assert out.shape == audio.shape and np.isfinite(out).all()
    # a trained vocoder reproduces the level of the recording (an untrained one is silent or loud)
    level = 20 * np.log10(np.sqrt(np.mean(out**2)) / np.sqrt(np.mean(audio**2)))
    assert abs(level) < 6.0


def _first_loss(tmp_path, name, *extra):
    args = [sys.executable, "-m", "vocoder.train", "recipe=slt_lpcnet_small", "data=sample",
            f"data.cache_dir={tmp_path / 'cache'}", f"trainer.out_dir={tmp_path / name}", "trainer.max_steps=1",
            "trainer.batch_size=4", "trainer.log_every=1", "trainer.valid_every=0", "trainer.audio_every=0",
            "trainer.progress=log", "data.augment.enabled=false", *extra]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return float(re.search(r"step 1/1 loss ([0-9.]+)", proc.stdout).group(1)), proc.stdout


@pytest.mark.slow
def test_init_from_pretrained_starts_far_below_a_fresh_model(tmp_path):
    fresh, _ = _first_loss(tmp_path, "fresh")
    warm, out = _first_loss(tmp_path, "warm", f"trainer.init_from={PRETRAINED}")
    assert "initialized from pretrained:kathleen_lpcnet" in out
    assert warm < fresh - 1.0  # nats per sample: a trained excitation model vs ln(256) = 5.5
