"""Every config group rejects impossible values before any work: one line naming the key, exit 2.

The commands run in this process (``main()`` with ``sys.argv``); validation comes before data
preparation, so each case takes well under a second once torch is imported.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from vocoder.cli.prepare import main as prepare_main
from vocoder.cli.train import main as train_main

# (override, key the one-line message must start with); types, ranges and choices of each group
TRAIN_CASES = {
    "data": [
        ("data.num_workers=two", "data.num_workers"),
        ("data.num_workers=-1", "data.num_workers"),
        ("data.on_error=ignore", "data.on_error"),
        ("data.splits.n_eval=0", "data.splits.n_eval"),
        ("data.features.n_mels=0", "data.features.n_mels"),
        ("data.features.preemphasis=1.5", "data.features.preemphasis"),
    ],
    "model": [
        ("model.gru_a_size=big", "model.gru_a_size"),
        ("model.gru_a_size=-3", "model.gru_a_size"),
        ("model.conv_kernel_size=4", "model.conv_kernel_size"),
        ("+model.init=magic", "model.init"),
        ("model.frame_channels=[1,2]", "model.frame_channels"),
    ],
    "loss": [
        ("loss.frames=many", "loss.frames"),
        ("loss.noise=5", "loss.noise"),
        ("loss.noise.distribution=cauchy", "loss.noise.distribution"),
        ("loss.noise.domain=air", "loss.noise.domain"),
        ("loss.noise.schedule=weekly", "loss.noise.schedule"),
        ("loss.sparsify.start=-5", "loss.sparsify.start"),
        ("loss.sparsify.targets.update=2.0", "loss.sparsify.targets"),
        ("loss.sparsify.block=[16,0]", "loss.sparsify.block"),
        ("loss.sparsify.block=[16,5]", "loss.sparsify.block"),  # does not tile GRU_A's columns
        ("loss.weights.excitation_ce=heavy", "loss.weights.excitation_ce"),
    ],
    "optim": [
        ("optim.lr=abc", "optim.lr"),
        ("optim.lr=-1", "optim.lr"),
        ("optim.betas=[0.9,2]", "optim.betas"),
        ("optim.betas=[0.9]", "optim.betas"),
        ("optim.eps=-1e-8", "optim.eps"),
        ("optim.amsgrad=maybe", "optim.amsgrad"),
        ("optim.weight_decay=-0.1", "optim.weight_decay"),
        ("optim.scheduler.decay=-1", "optim.scheduler.decay"),
        ("optim.scheduler.warmup_steps=soon", "optim.scheduler.warmup_steps"),
    ],
    "trainer": [
        ("trainer.precision=fp64x", "trainer.precision"),
        ("trainer.device=gpu", "trainer.device"),
        ("trainer.resume=sometimes", "trainer.resume"),
        ("trainer.progress=fancy", "trainer.progress"),
        ("trainer.ema_decay=1.5", "trainer.ema_decay"),
        ("trainer.batch_size=0", "trainer.batch_size"),
        ("trainer.max_steps=abc", "trainer.max_steps"),
        ("trainer.grad_clip=-1", "trainer.grad_clip"),
    ],
}

PREPARE_CASES = [
    ("data.splits.n_dev=-2", "data.splits.n_dev"),
    ("data.limit=many", "data.limit"),
    ("data.on_error=retry", "data.on_error"),
    ("data.features.sample_rate=4000", "data.features.sample_rate"),
]


@pytest.fixture
def run_command(monkeypatch, capsys):
    """Run a command's ``main()`` in this process; give (exit status, stderr)."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)

    def run(main, prog: str, *args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", [prog, *args])
        monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
        with pytest.raises(SystemExit) as exit_info:
            main()
        return exit_info.value.code, capsys.readouterr().err

    yield run
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def _assert_one_line(status: int, err: str, prog: str, key: str) -> None:
    assert status == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{prog}: error: {key}"), lines[0]


@pytest.mark.parametrize(
    "override, key", [case for cases in TRAIN_CASES.values() for case in cases], ids=lambda v: str(v)
)
def test_train_rejects_before_any_work(run_command, tmp_path: Path, override: str, key: str):
    cache = tmp_path / "cache"
    status, err = run_command(
        train_main,
        "vocoder-train",
        "recipe=demo",
        f"data.cache_dir={cache}",
        f"trainer.out_dir={tmp_path / 'exp'}",
        override,
    )
    _assert_one_line(status, err, "vocoder-train", key)
    assert not cache.exists()  # stopped before the corpus was prepared
    assert not (tmp_path / "exp" / "checkpoints").exists()


@pytest.mark.parametrize("override, key", PREPARE_CASES)
def test_prepare_rejects_before_any_work(run_command, tmp_path: Path, override: str, key: str):
    cache = tmp_path / "cache"
    status, err = run_command(
        prepare_main, "vocoder-prepare", "data=sample", f"data.cache_dir={cache}", override
    )
    _assert_one_line(status, err, "vocoder-prepare", key)
    assert not cache.exists()


def test_every_group_is_swept():
    """A config group added to ``configs/train.yaml`` gets its impossible values here too."""
    from omegaconf import OmegaConf

    from vocoder.config import CONFIG_DIR

    entries = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "train.yaml").defaults)
    groups = {key for entry in entries if isinstance(entry, dict) for key in entry} - {"recipe"}
    assert groups == set(TRAIN_CASES)
