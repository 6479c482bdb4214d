"""TorchScript export of the IAF student (``vocoder-synth checkpoint=… export=FILE``)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vocoder.checkpoints import save_atomic
from vocoder.data import FeatureSettings
from vocoder.inference import IAFVocoder, SynthesisError, export_torchscript, load
from vocoder.models import IAFStudent, LPCNet

N_MELS = 80
STUDENT = dict(
    n_mels=N_MELS, hop_length=160, flow_layers=[2, 2], dilation_cycle=2, residual_channels=8, gate_channels=8
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(target: str, kwargs: dict) -> dict:
    return {
        "model": {"_target_": target, **kwargs},
        "data": {"features": dataclasses.asdict(FeatureSettings())},
    }


@pytest.fixture(scope="module")
def student_checkpoint(tmp_path_factory) -> Path:
    """A small IAF student with random (non-identity) weights and non-trivial mel statistics."""
    torch.manual_seed(0)
    model = IAFStudent(**STUDENT)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.1)
    ema = {k: v + 0.01 for k, v in model.state_dict().items()}  # EMA differs from the raw weights
    module = {"mel_mean": torch.linspace(-8.0, -2.0, N_MELS), "mel_std": torch.linspace(1.0, 3.0, N_MELS)}
    state = {
        "model": model.state_dict(),
        "ema": ema,
        "optimizer": {},
        "step": 1,
        "config": _config("vocoder.models.IAFStudent", STUDENT),
        "module": module,
    }
    return save_atomic(state, tmp_path_factory.mktemp("ckpt") / "student.pt")


def _mel(frames: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((frames, N_MELS)) * 2.0 - 5.0).astype(np.float32)


@pytest.mark.parametrize("use_ema", [True, False])
def test_exported_module_matches_eager_synthesis(tmp_path, student_checkpoint, use_ema):
    path = export_torchscript(student_checkpoint, tmp_path / "student.pt", use_ema=use_ema)
    scripted = torch.jit.load(str(path))
    vocoder = load(student_checkpoint, use_ema=use_ema)
    assert isinstance(vocoder, IAFVocoder)
    mel = _mel(23)
    expected = vocoder.synthesize([mel], seed=5)[0]
    got = scripted(torch.from_numpy(mel)[None], 5)[0].numpy()
    assert got.shape == (23 * 160,) and scripted.sample_rate == 16000 and scripted.hop_length == 160
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    assert np.abs(got).max() > 1e-3  # not a trivially silent output
    # the other seed gives other noise, hence another waveform
    assert not np.allclose(scripted(torch.from_numpy(mel)[None], 6)[0].numpy(), got)
    # given noise: equals the eager training path (the student's forward) on the normalized mel
    noise = vocoder.model.sample_noise(torch.zeros(1, N_MELS, 23), seed=9)
    normalized = (torch.from_numpy(mel).T - vocoder.mel_mean[:, None]) / vocoder.mel_std[:, None]
    with torch.no_grad():
        reference = vocoder.model(noise, normalized[None])[0]
    torch.testing.assert_close(
        scripted.synthesize_from_noise(torch.from_numpy(mel)[None], noise), reference, rtol=0, atol=1e-5
    )


def test_raw_and_ema_exports_differ(tmp_path, student_checkpoint):
    mel = torch.from_numpy(_mel(9))[None]
    ema = torch.jit.load(str(export_torchscript(student_checkpoint, tmp_path / "a.pt")))(mel, 1)
    raw = torch.jit.load(str(export_torchscript(student_checkpoint, tmp_path / "b.pt", use_ema=False)))(
        mel, 1
    )
    assert (ema - raw).abs().max().item() > 1e-4


def test_segmented_export_equals_one_segment(tmp_path, student_checkpoint):
    one = torch.jit.load(str(export_torchscript(student_checkpoint, tmp_path / "one.pt")))
    three = torch.jit.load(str(export_torchscript(student_checkpoint, tmp_path / "three.pt", segments=3)))
    assert three.segments == 3
    frames = 3 * load(student_checkpoint).model.lead_in_frames() + 4
    mel = torch.from_numpy(_mel(frames, seed=2))[None]
    torch.testing.assert_close(three(mel, 2), one(mel, 2), rtol=0, atol=1e-5)


def test_export_command(tmp_path, student_checkpoint):
    target = tmp_path / "out" / "student.pt"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vocoder.synth",
            f"checkpoint={student_checkpoint}",
            f"export={target}",
            "segments=2",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert str(target) in proc.stdout
    scripted = torch.jit.load(str(target))
    assert scripted.segments == 2
    mel = _mel(12)
    np.testing.assert_allclose(
        scripted(torch.from_numpy(mel)[None], 0)[0].numpy(),
        load(student_checkpoint).synthesize([mel], seed=0)[0],
        rtol=0,
        atol=1e-5,
    )
    assert not list((tmp_path / "out").glob(".*.tmp"))  # written atomically, no leftovers


def test_export_rejects_other_models_in_one_line(tmp_path):
    kwargs = dict(
        frame_channels=16, pitch_embedding_size=8, sample_embedding_size=8, gru_a_size=16, gru_b_size=8
    )
    model = LPCNet(**kwargs)
    path = save_atomic(
        {
            "model": model.state_dict(),
            "ema": model.state_dict(),
            "optimizer": {},
            "step": 1,
            "config": _config("vocoder.models.LPCNet", kwargs),
        },
        tmp_path / "lpcnet.pt",
    )
    with pytest.raises(SynthesisError, match="IAF student only"):
        export_torchscript(path, tmp_path / "x.pt")
    proc = subprocess.run(
        [sys.executable, "-m", "vocoder.synth", f"checkpoint={path}", f"export={tmp_path / 'x.pt'}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "IAF student only" in lines[0]
    assert not (tmp_path / "x.pt").exists()


def test_synthesis_without_input_is_one_line(tmp_path, student_checkpoint):
    proc = subprocess.run(
        [sys.executable, "-m", "vocoder.synth", f"checkpoint={student_checkpoint}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "input: missing" in lines[0]
