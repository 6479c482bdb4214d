"""vocoder-train: config validation (one-line errors), recipes compose, a real 2-step demo run, synthesis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from vocoder.config import CONFIG_DIR, register_resolvers, validate_train_config
from vocoder.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted(p.stem for p in (CONFIG_DIR / "recipe").glob("*.yaml"))


def _compose(*overrides: str):
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        return compose(config_name="train", overrides=list(overrides))


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_composes_and_validates(recipe):
    cfg = _compose(f"recipe={recipe}")
    if OmegaConf.to_container(cfg.loss).get("teacher_checkpoint", "") in (None, "???"):
        # the dry run builds the training module: a missing teacher is found before any work
        with pytest.raises(ConfigError, match="^loss.teacher_checkpoint: not set"):
            validate_train_config(cfg)
        return
    validate_train_config(cfg)
    assert cfg.name == recipe
    assert cfg.trainer.out_dir == f"exp/{recipe}"


@pytest.mark.parametrize(
    "override,message",
    [
        ("+trainer.max_stepz=5", "trainer.max_stepz: unknown setting (did you mean max_steps?)"),
        ("trainer.max_steps=abc", "trainer.max_steps"),
        ("+model.gru_a_sise=8", "model.gru_a_sise: unknown setting for vocoder.models.LPCNet (did you mean gru_a_size?)"),
        ("model.gru_a_size=big", "model.gru_a_size: expected int, got 'big'"),
        ("model.hop_length=200", "model.hop_length=200 differs from data.features.hop_length=160"),
        ("+optim.lrr=0.1", "optim.lrr: unknown setting for torch.optim.Adam"),
        ("trainer.batch_size=0", "trainer.batch_size: must be >= 1, got 0"),
        ("trainer.resume=sometimes", "trainer.resume: expected auto, never or a .pt path"),
        ("loss.noise=5", "loss.noise: expected"),
    ],
)
def test_config_errors_are_one_line_naming_the_key(override, message):
    cfg = _compose("recipe=demo", override)
    with pytest.raises(ConfigError) as info:
        validate_train_config(cfg)
    text = str(info.value)
    assert "\n" not in text and message in text


def _run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "vocoder.train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_cli_unknown_override_is_one_line(tmp_path):
    proc = _run_cli("recipe=demo", "trainer.max_stepz=3", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vocoder-train: error: trainer.max_stepz")


def test_cli_prints_resolved_config(tmp_path):
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-m", "vocoder.train", "recipe=demo", "optim.lr=5e-4", "--cfg", "job"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "lr: 0.0005" in proc.stdout and "gru_a_size: 64" in proc.stdout


@pytest.mark.slow
def test_demo_recipe_trains_resumes_and_synthesizes(tmp_path):
    """The real demo config for 2 steps on the embedded sample, a resume to 3, then synthesis."""
    common = [f"trainer.out_dir={tmp_path / 'exp'}", f"data.cache_dir={tmp_path / 'cache'}",
              "trainer.valid_every=2", "trainer.audio_every=2", "trainer.log_every=1", "data.splits.n_eval=2"]
    proc = _run_cli("recipe=demo", "trainer.max_steps=2", *common, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = tmp_path / "exp" / "checkpoints" / "last.pt"
    assert ckpt.is_file() and (tmp_path / "exp" / "config.yaml").is_file()
    proc = _run_cli("recipe=demo", "trainer.max_steps=3", *common, cwd=tmp_path)
    assert proc.returncode == 0 and "resumed from" in proc.stdout, proc.stderr[-3000:]
    assert not (tmp_path / "outputs").exists()  # Hydra does not litter the working directory

    import numpy as np
    import soundfile as sf

    from vocoder.inference import load

    vocoder = load(ckpt)
    wav = sorted((REPO / "vocoder" / "data" / "sample" / "slt" / "wav").glob("*.wav"))[0]
    out = tmp_path / "synth"
    proc = subprocess.run([sys.executable, "-m", "vocoder.synth", f"checkpoint={ckpt}", f"input={wav}",
                           f"output_dir={out}"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    audio, rate = sf.read(out / wav.name)
    reference, _ = sf.read(wav)
    assert rate == vocoder.sample_rate == 16000
    assert len(audio) == len(reference) // 160 * 160 and np.isfinite(audio).all() and np.abs(audio).max() > 0


@pytest.mark.slow
def test_multirun_sweep_gives_each_job_its_own_folder(tmp_path):
    proc = _run_cli("--multirun", "recipe=demo", "optim.lr=1e-3,5e-4", "trainer.max_steps=1",
                    f"trainer.out_dir={tmp_path / 'exp'}", f"data.cache_dir={tmp_path / 'cache'}",
                    "trainer.valid_every=0", "trainer.audio_every=0", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    folders = sorted(p.name for p in (tmp_path / "exp").iterdir() if (p / "checkpoints").is_dir())
    assert len(folders) == 2
    assert folders[0].startswith("optim.lr=0.0005,") and folders[1].startswith("optim.lr=0.001,")
