"""ONNX export (``vocoder-synth checkpoint=… export=FILE.onnx``): onnxruntime (CPU) equals eager PyTorch.

Stated tolerances: the IAF student's waveform within 1e-5 of its peak (the graph is the parallel pass,
eager synthesis the blockwise one: float32 sums in other orders through every flow), LPCNet's frame
terms within 1e-5 absolute (values of order 1 through two convolutions and two dense layers).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from vocoder.data import FeatureSettings
from vocoder.inference import IAFVocoder, LPCNetVocoder, SynthesisError, export_onnx, load
from vocoder.models import IAFStudent, LPCNet, WaveNetTeacher

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N_MELS = 80
STUDENT = dict(n_mels=N_MELS, hop_length=160, flow_layers=[2, 2], dilation_cycle=2, residual_channels=8,
               gate_channels=8, upsample="centred", upsample_context=1)
LPCNET = dict(frame_channels=16, pitch_embedding_size=8, sample_embedding_size=8, gru_a_size=16, gru_b_size=8)


def _save(path: Path, model: torch.nn.Module, kwargs: dict, module: dict | None = None) -> Path:
    target = f"vocoder.models.{type(model).__name__}"
    config = {"model": {"_target_": target, **kwargs},
              "data": {"features": dataclasses.asdict(FeatureSettings())}}
    state = {"model": model.state_dict(), "ema": model.state_dict(), "optimizer": {}, "step": 1,
             "config": config}
    if module is not None:
        state["module"] = module
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def student_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = IAFStudent(**STUDENT)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.1)
    module = {"mel_mean": torch.linspace(-8.0, -2.0, N_MELS), "mel_std": torch.linspace(1.0, 3.0, N_MELS)}
    return _save(tmp_path_factory.mktemp("ckpt") / "student.pt", model, STUDENT, module)


@pytest.fixture(scope="module")
def lpcnet_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = LPCNet(**LPCNET)
    with torch.no_grad():
        model.pitch_embedding.weight.normal_()
        model.set_normalization(torch.linspace(-1.0, 1.0, 20), torch.linspace(0.5, 2.0, 20))
    return _save(tmp_path_factory.mktemp("ckpt") / "lpcnet.pt", model, LPCNET)


def _session(path: Path) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_iaf_student_onnx_equals_eager_synthesis(tmp_path, student_checkpoint):
    path = export_onnx(student_checkpoint, tmp_path / "student.onnx")
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta == {"family": "IAFStudent", "sample_rate": "16000", "hop_length": "160"}
    session = _session(path)
    vocoder = load(student_checkpoint)
    assert isinstance(vocoder, IAFVocoder)
    rng = np.random.default_rng(0)
    for frames in (5, 17):  # the time axis is dynamic
        mel = (rng.standard_normal((2, frames, N_MELS)) * 2.0 - 5.0).astype(np.float32)
        net_input = torch.cat([vocoder._network_input(m) for m in mel])
        noise = vocoder.model.sample_noise(net_input, seed=frames)
        (wave,) = session.run(None, {"mel": mel, "noise": noise.numpy()})
        with torch.no_grad():
            eager = vocoder.model.synthesize_from_noise(noise, net_input).numpy()
        assert wave.shape == (2, frames * 160) and np.abs(eager).max() > 1e-3
        np.testing.assert_allclose(wave, eager, rtol=0, atol=1e-5 * float(np.abs(eager).max()))


def test_lpcnet_frame_network_onnx_equals_eager(tmp_path, lpcnet_checkpoint):
    path = export_onnx(lpcnet_checkpoint, tmp_path / "frames.onnx")
    session = _session(path)
    assert [o.name for o in session.get_outputs()] == ["conditioning", "gru_a_frame", "gru_b_frame"]
    model = load(lpcnet_checkpoint).model
    rng = np.random.default_rng(1)
    for frames in (6, 23):
        features = rng.normal(size=(2, frames, 20)).astype(np.float32)
        features[..., 18] = rng.uniform(-1.5, 2.5, size=(2, frames))  # periods across the embedding
        outputs = session.run(None, {"features": features})
        with torch.no_grad():
            conditioning = model.frame_rate_network(torch.from_numpy(features))
            expected = (conditioning, *model.frame_projections(conditioning))
        for got, want in zip(outputs, expected, strict=True):
            assert got.shape == (2, frames - 4, want.shape[-1])
            np.testing.assert_allclose(got, want.numpy(), rtol=0, atol=1e-5)


def test_export_refuses_other_models_in_one_line(tmp_path):
    kwargs = dict(n_mels=N_MELS, layers=2, dilation_cycle=2, residual_channels=4, gate_channels=8,
                  skip_channels=4, mixture_components=2)
    teacher = _save(tmp_path / "teacher.pt", WaveNetTeacher(**kwargs), kwargs,
                    {"mel_mean": torch.zeros(N_MELS), "mel_std": torch.ones(N_MELS)})
    with pytest.raises(SynthesisError, match="supports the IAF student and LPCNet") as error:
        export_onnx(teacher, tmp_path / "teacher.onnx")
    assert "\n" not in str(error.value) and not (tmp_path / "teacher.onnx").exists()


def test_cli_export_onnx(tmp_path, lpcnet_checkpoint):
    out = tmp_path / "sub" / "model.onnx"
    done = subprocess.run([sys.executable, "-m", "vocoder.synth", f"checkpoint={lpcnet_checkpoint}",
                           f"export={out}"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "wrote ONNX graph" in done.stdout and out.is_file()
    features = np.zeros((1, 9, 20), np.float32)
    assert _session(out).run(["gru_a_frame"], {"features": features})[0].shape == (1, 5, 48)
    assert isinstance(load(lpcnet_checkpoint), LPCNetVocoder)
