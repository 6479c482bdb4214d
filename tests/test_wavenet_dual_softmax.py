"""WaveNet teacher with the categorical dual-softmax output head (output_head=dual_softmax)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import torch

from vocoder.layers import shift_right
from vocoder.models import WaveNetTeacher
from vocoder.models._wavenet import levels_to_waveform, waveform_to_levels

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_teacher(bits: int = 16, **overrides) -> WaveNetTeacher:
    options = dict(n_mels=4, hop_length=8, layers=4, dilation_cycle=2, kernel_size=3, residual_channels=6,
                   gate_channels=8, skip_channels=5, bits=bits, output_head="dual_softmax", head_size=7)
    options.update(overrides)
    torch.manual_seed(0)
    return WaveNetTeacher(**options)


def test_levels_round_trip():
    levels = torch.arange(2**16)
    assert torch.equal(waveform_to_levels(levels_to_waveform(levels, 16), 16), levels)


def test_teacher_forced_distribution_is_normalized_and_causal():
    teacher = make_teacher(bits=6)
    mel = torch.randn(1, 4, 3)
    x = levels_to_waveform(torch.randint(0, 64, (1, 24)), 6)
    outputs = teacher(shift_right(x), mel)
    assert outputs.shape == (1, 7, 24)
    # every level at position 10, given the same past: probabilities sum to 1
    column = outputs[:, :, 10:11].expand(64, 7, 1)
    all_levels = levels_to_waveform(torch.arange(64), 6)[:, None]
    total = teacher.log_prob(column, all_levels).detach().double().exp().sum()
    assert float(total) == pytest.approx(1.0, abs=1e-5)
    # causal: changing x[10:] leaves the distributions of samples 0..10 unchanged
    changed = x.clone()
    changed[:, 10:] = -changed[:, 10:]
    torch.testing.assert_close(teacher(shift_right(changed), mel)[:, :, :11], outputs[:, :, :11])


def test_generation_is_on_the_grid_and_seeded():
    teacher = make_teacher().eval()
    mel = torch.randn(2, 4, 2)
    first = teacher.generate(mel, generator=torch.Generator().manual_seed(1))
    second = teacher.generate(mel, generator=torch.Generator().manual_seed(1))
    assert first.shape == (2, 16) and torch.equal(first, second)
    torch.testing.assert_close(levels_to_waveform(waveform_to_levels(first, 16), 16), first)
    with pytest.raises(ValueError, match="logistic"):
        teacher.generate(mel, return_params=True)
    with pytest.raises(ValueError, match="logistic"):
        teacher.mixture_params(first, mel)


def test_logistic_head_is_unchanged():
    logistic = make_teacher(output_head="logistic")
    assert logistic.dual_softmax is None
    assert not any(key.startswith("dual_softmax") for key in logistic.state_dict())
    assert logistic(torch.zeros(1, 16), torch.zeros(1, 4, 2)).shape == (1, 30, 16)
    with pytest.raises(ValueError, match="output_head"):
        make_teacher(output_head="mulaw")


@pytest.mark.slow
def test_vocoder_train_runs_the_dual_softmax_recipe_on_the_sample_corpus(tmp_path):
    overrides = [
        "recipe=slt_wavenet_dual_softmax", "data=sample", f"data.cache_dir={tmp_path / 'cache'}",
        "data.limit=6", "data.splits.n_eval=1", "data.splits.n_dev=1", "data.num_workers=0",
        f"trainer.out_dir={tmp_path / 'exp'}", "trainer.max_steps=2", "trainer.valid_every=2",
        "trainer.valid_batches=1", "trainer.log_every=1", "trainer.batch_size=2", "trainer.progress=log",
        "trainer.audio_every=2", "loss.example_seconds=0.01", "model.layers=4", "loss.frames=2",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "vocoder.train", *overrides], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    match = re.search(r"validation: nll ([0-9.]+)", proc.stdout)
    assert match and 5.0 < float(match.group(1)) < 12.0  # ~ln(65536) = 11.1 nats untrained
