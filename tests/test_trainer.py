"""The trainer: exact resume, atomic checkpoints, signals, NaN guard, TensorBoard, DDP."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.trainer_toy import make_trainer
from vocoder.checkpoints import CheckpointError, load_checkpoint, save_atomic
from vocoder.training import TrainingError, find_resumable

REPO = Path(__file__).resolve().parents[1]


def _flat_state(trainer):
    model = {k: v.clone() for k, v in trainer.module.model.state_dict().items()}
    ema = {k: v.clone() for k, v in trainer.ema.state_dict().items()}
    return model, ema, trainer.optimizer.state_dict()


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_resume_is_bit_identical(tmp_path):
    # Bit-identical per machine: both runs take the same vector paths and thread count in one process.
    # A checkpoint resumed on another CPU (AVX2 vs AVX-512) continues equally well, but not bit for bit.
    straight = make_trainer(tmp_path / "straight", max_steps=10)
    straight.fit()
    first = make_trainer(tmp_path / "resumed", max_steps=5)
    first.fit()
    # a fresh process-like trainer continues from last.pt
    torch.manual_seed(999)  # the resumed run must not depend on the RNG state it starts with
    second = make_trainer(tmp_path / "resumed", max_steps=10)
    second.fit()
    assert second.step == 10
    model_a, ema_a, opt_a = _flat_state(straight)
    model_b, ema_b, opt_b = _flat_state(second)
    _assert_same(model_a, model_b)
    _assert_same(ema_a, ema_b)
    for pid, state in opt_a["state"].items():
        for key, value in state.items():
            other = opt_b["state"][pid][key]
            assert torch.equal(value, other) if torch.is_tensor(value) else value == other
    # and the run changed something: the weights are not the initial ones
    fresh = make_trainer(tmp_path / "fresh", max_steps=0)
    fresh._setup()
    assert not torch.equal(next(iter(model_a.values())), next(iter(fresh.module.model.state_dict().values())))


def test_checkpoint_layout_and_weights_only(tmp_path):
    trainer = make_trainer(tmp_path, max_steps=7)
    trainer.fit()
    ckpt_dir = tmp_path / "checkpoints"
    names = sorted(p.name for p in ckpt_dir.iterdir())
    # every 3 steps + the final one, keep_last=2, plus last.pt and best.pt
    assert names == ["best.pt", "last.pt", "step_00000006.pt", "step_00000007.pt"]
    state = torch.load(ckpt_dir / "last.pt", weights_only=True)
    for key in ("model", "ema", "optimizer", "step", "config", "rng", "scheduler"):
        assert key in state
    assert state["step"] == 7 and state["config"]["recipe"] == "toy"
    assert (tmp_path / "config.yaml").read_text().startswith("recipe: toy")


class _Crafted:
    """Unpickling this runs code (it would create ``marker``): what a malicious checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def test_pickled_object_is_refused_without_the_unpickling_advice(tmp_path):
    from vocoder.inference import load

    marker = tmp_path / "code_ran"
    path = tmp_path / "crafted.pt"
    torch.save({"model": _Crafted(marker), "ema": {}, "step": 1}, path)
    for loader in (load_checkpoint, load):
        with pytest.raises(CheckpointError) as error:
            loader(path)
        message = str(error.value)
        assert message.startswith(f"{path}: not a plain-tensor vocoder checkpoint")
        assert "\n" not in message and "weights_only" not in message and "False" not in message
    assert not marker.exists()


def test_crash_between_write_and_rename_keeps_last_loadable(tmp_path, monkeypatch):
    trainer = make_trainer(tmp_path, max_steps=3)
    trainer.fit()
    last = tmp_path / "checkpoints" / "last.pt"
    before = load_checkpoint(last)["step"]

    def crash(src, dst):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        save_atomic({"model": {}, "ema": {}, "optimizer": {}, "step": 99, "config": {}}, last)
    monkeypatch.undo()
    assert load_checkpoint(last)["step"] == before
    assert not [p for p in last.parent.iterdir() if p.name.endswith(".tmp")]


def test_truncated_checkpoint_one_line_error_and_fallback(tmp_path, capsys):
    trainer = make_trainer(tmp_path, max_steps=6)
    trainer.fit()
    ckpt_dir = tmp_path / "checkpoints"
    (ckpt_dir / "last.pt").unlink()
    newest = ckpt_dir / "step_00000006.pt"
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(newest)
    message = str(info.value)
    assert "\n" not in message and "step_00000006.pt" in message
    warnings = []
    path, state = find_resumable(ckpt_dir, warn=warnings.append)
    assert path.name == "step_00000003.pt" and state["step"] == 3
    assert len(warnings) == 1 and "step_00000006.pt" in warnings[0]
    resumed = make_trainer(tmp_path, max_steps=6)
    resumed.fit()
    assert resumed.step == 6


def test_resume_other_model_names_keys(tmp_path):
    trainer = make_trainer(tmp_path, max_steps=2)
    trainer.fit()
    other = make_trainer(tmp_path, max_steps=4)
    other.module.model[0] = torch.nn.Linear(4, 8)
    other.module.model[2] = torch.nn.Linear(8, 1)
    with pytest.raises(CheckpointError, match="shape differs: 0.bias, 0.weight"):
        other.fit()


def test_nan_guard_skips_then_stops_with_last_good_checkpoint(tmp_path):
    trainer = make_trainer(tmp_path, max_steps=50, nan_after=4, max_bad_steps=3)
    with pytest.raises(TrainingError, match="3 consecutive non-finite") as info:
        trainer.fit()
    assert "\n" not in str(info.value)
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["step"] == 7 and state["skipped_total"] == 3
    good = make_trainer(tmp_path / "good", max_steps=4)
    good.fit()
    _assert_same(state["model"], good.module.model.state_dict())


def test_sigterm_saves_checkpoint_and_exits_zero(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "trainer_toy.py"), str(out), "100000",
         json.dumps({"checkpoint_every": 1000000, "valid_every": 0, "audio_every": 0, "log_every": 50})],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline and not (out / "tb").exists():
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    result = json.loads(stdout.strip().splitlines()[-1])
    state = load_checkpoint(out / "checkpoints" / "last.pt")
    assert state["step"] == result["step"] > 0
    assert "received SIGTERM" in stdout


def test_tensorboard_tags(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer = make_trainer(tmp_path, max_steps=8)
    trainer.fit()
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"audio": 0, "images": 0, "scalars": 0})
    acc.Reload()
    tags = acc.Tags()
    for scalar in ("loss/mse", "loss/l1", "loss/total", "lr", "grad_norm", "samples_per_s", "skipped_steps",
                   "valid/mse", "valid/total"):
        assert scalar in tags["scalars"], scalar
    assert "audio/utt0" in tags["audio"] and "audio/utt0_natural" in tags["audio"]
    assert "mel/utt0" in tags["images"]
    assert any(t.startswith("config") for t in tags["tensors"])
    lrs = [event.value for event in acc.Scalars("lr")]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] < 1e-2


@pytest.mark.slow
def test_torchrun_two_ranks_identical_params(tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    # --standalone: a rendezvous on a free local port (a fixed port may be taken on a shared CI host)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    proc = subprocess.run(
        torchrun + [str(REPO / "tests" / "trainer_toy.py"), str(out), "6", json.dumps({"audio_every": 0})],
        env=env, capture_output=True, text=True, timeout=240,
    )
    # the ranks' own messages come first, torchrun's summary last: keep both ends
    assert proc.returncode == 0, proc.stderr[:3000] + "\n[...]\n" + proc.stderr[-1500:]
    # both ranks print to the same pipe: their lines may interleave, so decode every object in it
    decoder = json.JSONDecoder()
    starts = [m.start() for m in re.finditer(r'\{"step"', proc.stdout)]
    results = [decoder.raw_decode(proc.stdout, start)[0] for start in starts]
    assert sorted(r["rank"] for r in results) == [0, 1]
    assert results[0]["params"] == results[1]["params"]
    # rank 0 alone writes: one event file, the expected checkpoints, nothing else
    assert len(list((out / "tb").glob("events.*"))) == 1
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "best.pt", "last.pt", "step_00000003.pt", "step_00000006.pt"]
    shutil.rmtree(out)
