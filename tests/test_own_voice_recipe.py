"""recipes/own_voice/run.sh end to end on a folder of a few short recordings (22.05 kHz, nested folders):
prepare (resampled to 16 kHz), fine-tune pretrained:kathleen_lpcnet for 2 steps, synthesize, report."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from vocoder.data import list_utterances

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "recipes" / "own_voice" / "run.sh"
SAMPLE = REPO / "vocoder" / "data" / "sample" / "kathleen"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        VOCODER_NO_SETUP="1",
        OMP_NUM_THREADS="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    return subprocess.run(["bash", str(RUN), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def test_own_voice_recipe_runs_every_stage(tmp_path):
    recordings = tmp_path / "my voice"
    for index, utterance in enumerate(list_utterances(SAMPLE)[:5]):
        audio, _ = sf.read(utterance.wav, dtype="float32")
        audio = soxr.resample(audio[: 3 * 16000 // 2], 16000, 22050, quality="HQ")
        folder = recordings / f"day{index % 2 + 1}"
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"take{index}.wav", audio, 22050)
    proc = _run(
        "--root", str(recordings), "--steps", "2", "--no-anchors", "--exp", str(tmp_path / "exp"),
        "--cache", str(tmp_path / "cache"), "trainer.batch_size=2", "trainer.valid_every=0",
        "trainer.audio_every=0", "trainer.checkpoint_every=2", "trainer.log_every=1", "trainer.progress=log",
        "data.splits.n_eval=1", "data.splits.n_dev=1", "data.num_workers=0",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    for stage in ("stage 1: prepare", "stage 2: fine-tune", "stage 3: synthesize", "stage 4: report"):
        assert stage in out
    assert "resampled to 16 kHz" in out  # the recipe says so before preparing
    assert f"corpus: folder layout (found by data.layout=auto) at {recordings}: 5 utterances" in out
    assert "files: resampled to 16000 Hz (soxr HQ): 5 at 22050 Hz" in out
    assert "initialized from pretrained:kathleen_lpcnet" in out
    exp = tmp_path / "exp"
    assert (exp / "checkpoints" / "last.pt").is_file()
    synthesized = sorted((exp / "synth").glob("*.wav"))
    assert len(synthesized) == 1 and sf.info(synthesized[0]).samplerate == 16000
    natural, _ = sf.read(exp / "natural" / synthesized[0].name)
    audio, _ = sf.read(synthesized[0])
    assert len(audio) == len(natural) and np.isfinite(audio).all()
    summary = (exp / "report" / "summary.md").read_text()
    assert "| vocoder |" in summary and "Scored at 16000 Hz" in summary
    # run again: every stage finds its work done
    again = _run(
        "--root", str(recordings), "--steps", "2", "--no-anchors", "--exp", str(exp),
        "--cache", str(tmp_path / "cache"), "data.splits.n_eval=1", "data.splits.n_dev=1",
        "data.num_workers=0", "--stage", "3", cwd=tmp_path,
    )
    assert again.returncode == 0 and again.stdout.count("up to date") == 2, again.stdout[-2000:]


def test_own_voice_recipe_needs_a_root(tmp_path):
    proc = _run(cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "run.sh: error: --root DIR is needed (a folder of your recordings, or a file list)"
    )
