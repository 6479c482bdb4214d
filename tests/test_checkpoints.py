"""vocoder.checkpoints: the one model rebuild, and pretrained:NAME in every loader that takes a checkpoint."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

import vocoder.pretrained as pretrained_package
from vocoder.checkpoints import (
    WEIGHTS_FORMAT,
    CheckpointError,
    export_weights,
    load_weights,
    rebuild_model,
    save_atomic,
)
from vocoder.data import FeatureSettings
from vocoder.models import FeatureConverter, LPCNet
from vocoder.training import load_feature_converter, load_teacher, lpcnet_frame_embedding

PACKAGE = Path(__file__).resolve().parents[1] / "vocoder"
LPCNET = "pretrained:kathleen_lpcnet"

CONVERTER = {"_target_": "vocoder.models.FeatureConverter", "in_dim": 20, "out_dim": 8, "channels": 16,
             "kernel_size": 3, "layers": 2, "dropout": 0.0}


def _training_checkpoint(path: Path, model: torch.nn.Module, model_cfg: dict) -> Path:
    """A minimal trainer-format checkpoint of ``model`` (raw weights ≠ EMA weights)."""
    ema = {k: v.clone() for k, v in model.state_dict().items()}
    raw = {k: (v + 1.0 if v.is_floating_point() else v.clone()) for k, v in ema.items()}
    state = {"model": raw, "ema": ema, "optimizer": {}, "step": 7, "module": {},
             "config": {"model": dict(model_cfg), "data": {"features": {}}}}
    return save_atomic(state, path)


@pytest.fixture
def converter_file(tmp_path):
    torch.manual_seed(0)
    model = FeatureConverter(**{k: v for k, v in CONVERTER.items() if k != "_target_"})
    return _training_checkpoint(tmp_path / "conv.pt", model, CONVERTER), model


def test_rebuild_model_of_the_packaged_lpcnet_holds_its_weights():
    model, state = rebuild_model(LPCNET)
    assert isinstance(model, LPCNet) and not model.training
    assert state["config"]["model"]["mulaw_quantizer"] == model.mulaw_quantizer == "mid_rise"
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, state["ema"][name].to(tensor.dtype), rtol=0, atol=0)


def test_rebuild_model_raw_and_ema_weights(converter_file):
    path, model = converter_file
    ema_model, _ = rebuild_model(path, expect="FeatureConverter")
    raw_model, _ = rebuild_model(path, use_ema=False)
    name = "output.weight" if "output.weight" in model.state_dict() else next(iter(model.state_dict()))
    torch.testing.assert_close(ema_model.state_dict()[name], model.state_dict()[name])
    torch.testing.assert_close(raw_model.state_dict()[name], model.state_dict()[name] + 1.0)


def test_rebuild_model_errors_are_one_line(converter_file, tmp_path):
    path, _ = converter_file
    with pytest.raises(CheckpointError, match=r"holds a vocoder\.models\.FeatureConverter, not an LPCNet$"):
        rebuild_model(path, expect="LPCNet")
    export_weights(path, tmp_path / "w.pt")
    with pytest.raises(CheckpointError, match="EMA weights only"):
        rebuild_model(tmp_path / "w.pt", use_ema=False)
    other = dict(CONVERTER, channels=24)
    state = torch.load(path, weights_only=True)
    state["config"]["model"] = other
    save_atomic(state, tmp_path / "misfit.pt")
    with pytest.raises(CheckpointError, match=r"misfit\.pt: weights do not fit vocoder\.models\.FeatureConverter \("):
        rebuild_model(tmp_path / "misfit.pt")
    state["config"] = {"data": {}}
    save_atomic(state, tmp_path / "nomodel.pt")
    with pytest.raises(CheckpointError, match="no model config"):
        rebuild_model(tmp_path / "nomodel.pt", label="checkpoint=x")
    with pytest.raises(CheckpointError, match="no such pretrained model"):
        rebuild_model("pretrained:no_such_model")
    for error in (CheckpointError,):
        assert issubclass(error, RuntimeError)


def test_an_old_lpcnet_file_is_rebuilt_with_the_quantizer_it_was_trained_with(tmp_path):
    """upgrade_config: a config without model.mulaw_quantizer predates it (mid-rise codes)."""
    state = load_weights(LPCNET)
    assert state["format"] == WEIGHTS_FORMAT
    del state["config"]["model"]["mulaw_quantizer"]
    save_atomic(state, tmp_path / "old.pt")
    model, _ = rebuild_model(tmp_path / "old.pt")
    assert model.mulaw_quantizer == "mid_rise"


@pytest.fixture
def packaged(tmp_path, monkeypatch):
    """A pretrained folder of the test's own (``pretrained:NAME`` resolves there)."""
    folder = tmp_path / "pretrained"
    folder.mkdir()
    for name in ("kathleen_lpcnet", "kathleen_iaf"):
        (folder / f"{name}.pt").write_bytes((PACKAGE / "pretrained" / f"{name}.pt").read_bytes())
    monkeypatch.setattr(pretrained_package, "_HERE", folder)
    return folder


def test_feature_converter_loader_takes_pretrained_names(converter_file, packaged):
    path, model = converter_file
    export_weights(path, packaged / "tiny_converter.pt", half=False)
    converter = load_feature_converter("pretrained:tiny_converter")
    assert isinstance(converter, FeatureConverter) and not converter.training
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(converter.state_dict()[name], tensor)
    with pytest.raises(CheckpointError, match="pretrained:kathleen_lpcnet: holds a vocoder.models.LPCNet, not a FeatureConverter"):
        load_feature_converter(LPCNET)


def test_frozen_frame_embedding_takes_pretrained_names(packaged):
    frozen = lpcnet_frame_embedding(LPCNET)
    features = torch.randn(2, 9, 20)
    with torch.no_grad():
        out = frozen(features)
    assert out.shape == (2, 9 - frozen.module.frames_trimmed, 128) and torch.isfinite(out).all()
    with pytest.raises(CheckpointError, match="pretrained:kathleen_iaf: holds a vocoder.models.IAFStudent, not an LPCNet"):
        lpcnet_frame_embedding("pretrained:kathleen_iaf")


def test_distillation_teacher_loader_takes_pretrained_names(packaged):
    with pytest.raises(CheckpointError, match="loss.teacher_checkpoint: pretrained:kathleen_iaf holds a model "
                                              "of class IAFStudent, not a WaveNet teacher"):
        load_teacher("pretrained:kathleen_iaf", FeatureSettings())


def test_only_the_checkpoints_package_turns_checkpoints_into_modules():
    """The weights-into-rebuilt-network step (describe_mismatch + load_state_dict of a file's weights)
    lives in vocoder.checkpoints alone; the trainer compares its own module with a resumed state."""
    callers = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "describe_mismatch":
                callers.add(path.relative_to(PACKAGE).as_posix())
    assert callers == {"checkpoints/_rebuild.py", "training/_trainer.py"}
