"""What a new user runs into: a second training into one run folder, a full disk, a damaged cache entry."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.trainer_toy import make_trainer
from vocoder.checkpoints import load_checkpoint
from vocoder.training import TrainingError
from vocoder.training._run_lock import LOCK_NAME, RunDirectoryBusy, RunLock

REPO = Path(__file__).resolve().parents[1]
QUIET = {"valid_every": 0, "audio_every": 0, "log_every": 1000}


def _enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _FillsUp:
    """A binary file whose disk is full after ``room`` bytes: later writes raise ENOSPC, as a real one."""

    def __init__(self, handle, room: int) -> None:
        self.handle, self.room = handle, room

    def write(self, data) -> int:
        if len(data) > self.room:
            _enospc()
        self.room -= len(data)
        return self.handle.write(data)

    def flush(self) -> None:
        self.handle.flush()


def _disk_full_at_step(step: int, room: int = 4096):
    """A ``torch.save`` whose file fills the disk when it saves ``step`` (torch's own writer runs into it)."""
    real_save = torch.save

    def save(state, handle, *args, **kwargs):
        if isinstance(state, dict) and state.get("step") == step:
            handle = _FillsUp(handle, room)
        return real_save(state, handle, *args, **kwargs)

    return save


# ---------------------------------------------------------------- one training per run folder


def test_run_lock_is_exclusive_and_released(tmp_path):
    first = RunLock(tmp_path / "run")
    first.acquire()
    holder = json.loads((tmp_path / "run" / LOCK_NAME).read_text())
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    # flock belongs to the open file: a second open, even in this process, is refused
    with pytest.raises(RunDirectoryBusy) as refused:
        RunLock(tmp_path / "run").acquire()
    message = str(refused.value)
    assert "\n" not in message and f"pid {os.getpid()} on {socket.gethostname()}" in message
    assert message.startswith(f"trainer.out_dir={tmp_path / 'run'} is in use by another training")
    first.release()
    with RunLock(tmp_path / "run") as second:  # released: the file left behind blocks nobody
        assert second.held


def test_second_training_into_the_same_folder_is_refused_and_a_killed_one_blocks_nobody(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    settings = dict(QUIET, checkpoint_every=1_000_000)
    toy = str(REPO / "tests" / "trainer_toy.py")
    command = [sys.executable, toy, str(out), "100000000", json.dumps(settings)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (out / "tb").exists():  # it holds the lock from before tb/
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            time.sleep(0.2)
        second = make_trainer(out, max_steps=3, **QUIET)
        with pytest.raises(TrainingError) as refused:
            second.fit()
        message = str(refused.value)
        assert "\n" not in message and f"pid {proc.pid} on {socket.gethostname()}" in message
        assert "trainer_toy.py" in message and "started " in message
        assert second.step == 0 and not (out / "checkpoints").exists()  # it wrote nothing, resumed nothing
    finally:
        proc.kill()  # SIGKILL: no handler runs, the lock file stays behind
        proc.wait(timeout=60)
    assert (out / LOCK_NAME).is_file()
    third = make_trainer(out, max_steps=3, **QUIET)
    third.fit()
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 3
    assert json.loads((out / LOCK_NAME).read_text())["pid"] == os.getpid()


# ---------------------------------------------------------------- a full disk


def test_full_disk_while_saving_a_checkpoint_names_the_last_good_one(tmp_path, monkeypatch):
    out = tmp_path / "run"
    make_trainer(out, max_steps=3, **QUIET).fit()  # checkpoint_every=3: step 3 is saved
    checkpoints = out / "checkpoints"
    good = checkpoints / "step_00000003.pt"
    before = good.read_bytes()
    monkeypatch.setattr(torch, "save", _disk_full_at_step(6))
    trainer = make_trainer(out, max_steps=9, **QUIET)
    with pytest.raises(TrainingError) as failed:
        trainer.fit()
    message = str(failed.value)
    assert "\n" not in message
    assert message == (f"cannot write {checkpoints / 'step_00000006.pt'}: no space left on device; the "
                       f"last good checkpoint is {checkpoints / 'last.pt'} (step 3); free some space and "
                       "rerun the same command to resume from it")
    # the previous checkpoint is untouched, no temporary file is left, the lock is released
    assert good.read_bytes() == before and (checkpoints / "last.pt").read_bytes() == before
    assert sorted(p.name for p in checkpoints.iterdir()) == ["last.pt", "step_00000003.pt"]
    with RunLock(out) as lock:
        assert lock.held


def test_full_disk_after_a_save_of_this_run_names_that_one(tmp_path, monkeypatch):
    out = tmp_path / "run"
    monkeypatch.setattr(torch, "save", _disk_full_at_step(6, room=0))
    with pytest.raises(TrainingError) as failed:  # resume=never: a plain rerun would not pick it up
        make_trainer(out, max_steps=9, resume="never", **QUIET).fit()
    good = out / "checkpoints" / "step_00000003.pt"
    assert str(failed.value).endswith(f"the last good checkpoint is {good} (step 3); free some space and "
                                      f"rerun with trainer.resume={good} to resume from it")
    assert load_checkpoint(good)["step"] == 3


def test_full_disk_before_any_checkpoint_and_for_config_yaml(tmp_path, monkeypatch):
    real_write_text = Path.write_text

    def write_text(path, *args, **kwargs):
        if path.name.startswith("config.yaml"):
            real_write_text(path, "partial: ")
            _enospc()
        return real_write_text(path, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    out = tmp_path / "run"
    with pytest.raises(TrainingError) as failed:
        make_trainer(out, max_steps=3, **QUIET).fit()
    assert str(failed.value) == (f"cannot write {out / 'config.yaml'}: no space left on device; no "
                                 "checkpoint of this run was saved yet; free some space and rerun the same "
                                 "command")
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]


def test_full_disk_for_tensorboard_events_warns_once_and_training_goes_on(tmp_path, monkeypatch, capfd):
    from tensorboard.summary.writer import record_writer

    real_write, writes = record_writer.RecordWriter.write, []

    def write(self, data):  # the writer's first events (file version, config text) go through
        writes.append(len(data))
        if len(writes) > 2:
            _enospc()
        return real_write(self, data)

    monkeypatch.setattr(record_writer.RecordWriter, "write", write)
    lines: list[str] = []
    trainer = make_trainer(tmp_path / "run", max_steps=6, valid_every=2, audio_every=2, log_every=1)
    trainer.log = lines.append
    trainer.fit()
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 6
    warnings = [line for line in lines if "TensorBoard" in line]
    assert len(warnings) == 1 and warnings[0].startswith(
        f"warning: cannot write TensorBoard events to {tmp_path / 'run' / 'tb'} (no space left on device)")
    assert "Traceback" not in capfd.readouterr().err  # nor from TensorBoard's writer thread


def test_cli_full_disk_and_damaged_cache_are_one_line_each(tmp_path, monkeypatch, capsys):
    """``vocoder-train`` hitting ENOSPC on its second save, a rerun, a damaged entry, ``vocoder-prepare``."""
    from vocoder.cli.train import main

    checkpoints = tmp_path / "exp" / "checkpoints"
    argv = ["vocoder-train", "recipe=demo", f"trainer.out_dir={tmp_path / 'exp'}",
            f"data.cache_dir={tmp_path / 'cache'}", "data.limit=6", "data.splits.n_eval=1",
            "data.splits.n_dev=1", "data.num_workers=0", "trainer.max_steps=2", "trainer.checkpoint_every=1",
            "trainer.valid_every=0", "trainer.audio_every=0", "trainer.batch_size=2", "trainer.progress=log"]
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    real_save = torch.save
    monkeypatch.setattr(torch, "save", _disk_full_at_step(2))
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"vocoder-train: error: cannot write {checkpoints / 'step_00000002.pt'}: no space left on device; "
        f"the last good checkpoint is {checkpoints / 'step_00000001.pt'} (step 1); free some space and rerun "
        "the same command to resume from it"]
    monkeypatch.setattr(torch, "save", real_save)
    main()  # the same command again
    assert f"resumed from {checkpoints / 'last.pt'} at step 1" in capsys.readouterr().out
    assert load_checkpoint(checkpoints / "last.pt")["step"] == 2

    # a damaged cache entry of the same size (vocoder-train checks sizes only): one line naming it
    first = (tmp_path / "cache" / "splits" / "train.txt").read_text().split()[0]
    entry = tmp_path / "cache" / "features" / f"{first}.npz"
    _flip_a_byte(entry)
    monkeypatch.setattr(sys, "argv", [*argv, "trainer.max_steps=3"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"vocoder-train: error: {entry}: damaged cache entry (Bad CRC-32 for file 'audio.npy'); rerun "
        "vocoder-prepare with the same data settings to recompute it"]
    from vocoder.cli.prepare import main as prepare_main

    data_settings = [a for a in argv if a.startswith("data.")]
    monkeypatch.setattr(sys, "argv", ["vocoder-prepare", "data=sample", *data_settings])
    prepare_main()
    assert f"  recomputed 1 damaged cache entry: {first}.npz" in capsys.readouterr().out.splitlines()


# ---------------------------------------------------------------- a damaged cache entry


def _flip_a_byte(path: Path) -> None:
    """Change one byte inside the stored audio, keeping the size and the modification time."""
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _truncate(path: Path) -> None:
    """Cut the file in half, as an interrupted copy does, keeping the modification time."""
    stat = path.stat()
    path.write_bytes(path.read_bytes()[: stat.st_size // 2])
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _mtimes(cache: Path) -> dict[str, int]:
    return {p.stem: p.stat().st_mtime_ns for p in (cache / "features").glob("*.npz")}


def test_damaged_cache_entries_are_named_by_training_and_recomputed_by_prepare(sample_root, tmp_path):
    from vocoder.data import CacheError, FeatureSettings, load_utterance, prepare_corpus

    cache = tmp_path / "cache"

    def prepare(verify="checksum"):
        return prepare_corpus(sample_root, cache, FeatureSettings(), n_eval=1, n_dev=1, limit=5,
                              num_workers=0, progress=False, verify=verify)

    first = prepare()
    ids = sorted(_mtimes(cache))
    originals = {uid: load_utterance(cache, uid) for uid in ids}
    manifest = json.loads((cache / "manifest.json").read_text())
    for record in manifest["utterances"]:
        entry = cache / "features" / f"{record['id']}.npz"
        assert (record["bytes"], record["crc32"]) == _file_checksum(entry)
    assert first.repaired == ()

    # truncated: the size alone shows it, so even the stat-only check of vocoder-train recomputes it
    truncated = cache / "features" / f"{ids[1]}.npz"
    _truncate(truncated)
    with pytest.raises(CacheError) as damaged:
        load_utterance(cache, ids[1])
    assert str(damaged.value) == (f"{truncated}: damaged cache entry (File is not a zip file); rerun "
                                  "vocoder-prepare with the same data settings to recompute it")
    before = _mtimes(cache)
    again = prepare(verify="size")
    assert (again.computed, again.up_to_date, again.repaired) == (1, 4, (ids[1],))
    assert f"  recomputed 1 damaged cache entry: {ids[1]}.npz" in again.summary().splitlines()
    assert {uid for uid, t in _mtimes(cache).items() if t != before[uid]} == {ids[1]}
    np.testing.assert_array_equal(load_utterance(cache, ids[1]).audio, originals[ids[1]].audio)
    np.testing.assert_array_equal(load_utterance(cache, ids[1]).features, originals[ids[1]].features)

    # a changed byte keeps the size: training names the file, vocoder-prepare's checksum finds it
    flipped = cache / "features" / f"{ids[2]}.npz"
    _flip_a_byte(flipped)
    assert prepare(verify="size").computed == 0
    with pytest.raises(CacheError) as damaged:
        load_utterance(cache, ids[2])
    assert str(damaged.value) == (f"{flipped}: damaged cache entry (Bad CRC-32 for file 'audio.npy'); rerun "
                                  "vocoder-prepare with the same data settings to recompute it")
    assert prepare().repaired == (ids[2],)
    np.testing.assert_array_equal(load_utterance(cache, ids[2]).audio, originals[ids[2]].audio)
    assert prepare().computed == 0  # intact again: the whole cache is current

    # a manifest written before sizes were recorded: every entry is verified by reading it, and kept
    manifest = json.loads((cache / "manifest.json").read_text())
    for record in manifest["utterances"]:
        del record["bytes"], record["crc32"]
    del manifest["stats"]
    (cache / "manifest.json").write_text(json.dumps(manifest))
    _flip_a_byte(cache / "features" / f"{ids[3]}.npz")
    before = _mtimes(cache)
    old = prepare()
    assert (old.computed, old.up_to_date, old.repaired) == (1, 4, (ids[3],))
    assert {uid for uid, t in _mtimes(cache).items() if t != before[uid]} == {ids[3]}
    rewritten = json.loads((cache / "manifest.json").read_text())
    assert all("crc32" in record for record in rewritten["utterances"]) and "stats" in rewritten


def _file_checksum(path: Path) -> tuple[int, int]:
    import zlib

    data = path.read_bytes()
    return len(data), zlib.crc32(data)
