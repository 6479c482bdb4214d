"""recipes/arctic_slt/run.sh end to end on a few utterances of the embedded sample corpus (tiny model)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "recipes" / "arctic_slt" / "run.sh"
SAMPLE = REPO / "vocoder" / "data" / "sample" / "kathleen"
TINY = [
    "model=lpcnet_tiny",
    "trainer.max_steps=4",
    "trainer.batch_size=2",
    "trainer.log_every=2",
    "trainer.valid_every=0",
    "trainer.checkpoint_every=2",
    "trainer.audio_every=0",
    "trainer.progress=log",
    "loss.sparsify.start=1",
    "loss.sparsify.end=3",
    "loss.sparsify.interval=1",
    "data.splits.n_eval=2",
    "data.splits.n_dev=2",
    "data.limit=8",
    "data.num_workers=0",
]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        VOCODER_NO_SETUP="1",
        OMP_NUM_THREADS="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    return subprocess.run(
        ["bash", str(RUN), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def _run_tiny(work: Path) -> subprocess.CompletedProcess:
    """Stages 1-4 on the sample corpus with the tiny settings, outputs under ``work``."""
    return _run(
        "--stage",
        "1",
        "--root",
        str(SAMPLE),
        "--model",
        "lpcnet",
        "--exp",
        str(work / "exp"),
        "--cache",
        str(work / "cache"),
        *TINY,
        cwd=work,
    )


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    work = tmp_path_factory.mktemp("recipe")
    proc = _run_tiny(work)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return work, proc


def test_stages_one_to_four_write_every_output(finished):
    work, proc = finished
    exp = work / "exp"
    for stage in ("stage 1: prepare", "stage 2: train", "stage 3: synthesize", "stage 4: evaluate"):
        assert stage in proc.stdout
    assert "stage 0" not in proc.stdout  # --stage 1 starts after the download
    assert (work / "cache" / "manifest.json").is_file()
    assert (exp / "checkpoints" / "last.pt").is_file()
    synthesized = sorted(p.name for p in (exp / "synth").glob("*.wav"))
    assert len(synthesized) == 2 and synthesized == sorted(p.name for p in (exp / "natural").glob("*.wav"))
    with open(exp / "report" / "scores.csv", newline="") as stream:
        systems = {row["system"] for row in csv.DictReader(stream)}
    assert {"world", "griffin_lim", "mulaw8"} <= {s.lower() for s in systems}  # anchors scored too
    assert "PESQ" in (exp / "report" / "summary.md").read_text()
    page = exp / "report" / "index.html"
    assert page.is_file()
    assert proc.stdout.strip().splitlines()[-1] == f"listening page (open it in a browser): {page}"


def test_second_run_skips_finished_stages(finished):
    work, _ = finished
    proc = _run_tiny(work)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("up to date") >= 2  # synthesis and report
    assert "already up to date 8" in proc.stdout  # the cache
    assert "step 1/" not in proc.stdout  # training resumed at max_steps: no new steps
    assert proc.stdout.strip().splitlines()[-1].startswith("listening page (open it in a browser): ")


@pytest.mark.parametrize(
    "args,message",
    [(["--model", "hifigan"], "--model must be"), (["--recipe", "nope"], "no recipe nope")],
)
def test_bad_arguments_are_one_line(tmp_path, args, message):
    proc = _run("--stage", "1", "--root", str(SAMPLE), *args, cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and message in lines[0]
