"""Feature preparation: cache layout, numbers against references, freshness, errors, and the CLI."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from vocoder.data import (
    BadAudioError,
    CorpusError,
    FeatureSettings,
    ensure_prepared,
    list_utterances,
    load_audio,
    prepare_corpus,
)
from vocoder.dsp import lpcnet_features

REPO_ROOT = Path(__file__).resolve().parents[1]
SETTINGS = FeatureSettings()
LIMIT, N_EVAL, N_DEV = 10, 2, 2


def _copy_corpus(source: Path, target: Path, count: int) -> Path:
    """The first ``count`` utterances of an ARCTIC corpus, copied (so tests may modify them)."""
    (target / "wav").mkdir(parents=True)
    (target / "etc").mkdir()
    for utterance in list_utterances(source)[:count]:
        shutil.copy2(utterance.wav, target / "wav" / utterance.wav.name)
    shutil.copy2(source / "etc" / "txt.done.data", target / "etc" / "txt.done.data")
    return target


def _entry_mtimes(cache: Path) -> dict[str, int]:
    return {p.stem: p.stat().st_mtime_ns for p in (cache / "features").glob("*.npz")}


def _load(cache: Path, utterance_id: str) -> dict[str, np.ndarray]:
    with np.load(cache / "features" / f"{utterance_id}.npz") as entry:
        return {key: entry[key] for key in entry.files}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """The first 10 sample utterances prepared in-process: ``(result, cache_dir, root)``."""
    root = Path(__file__).resolve().parents[1] / "vocoder" / "data" / "sample" / "kathleen"
    cache = tmp_path_factory.mktemp("cache")
    result = prepare_corpus(
        root, cache, SETTINGS, n_eval=N_EVAL, n_dev=N_DEV, num_workers=0, limit=LIMIT, progress=False
    )
    return result, cache, root


def test_cache_layout_and_shapes(prepared):
    result, cache, root = prepared
    ids = [u.id for u in list_utterances(root)[:LIMIT]]
    assert sorted(p.stem for p in (cache / "features").glob("*.npz")) == ids
    assert not [p for p in (cache / "features").iterdir() if p.suffix != ".npz"]
    for utterance_id in ids:
        entry = _load(cache, utterance_id)
        assert set(entry) == {"audio", "mel", "features", "lpc", "fingerprint"}
        frames = entry["mel"].shape[0]
        assert entry["audio"].shape == (frames * SETTINGS.hop_length,)
        assert entry["mel"].shape == (frames, SETTINGS.n_mels)
        assert entry["features"].shape == (frames, 20)
        assert entry["lpc"].shape == (frames, SETTINGS.lpc_order)
        assert all(entry[key].dtype == np.float32 for key in ("audio", "mel", "features", "lpc"))
        assert str(entry["fingerprint"]) == SETTINGS.fingerprint()
    splits = {
        name: (cache / "splits" / f"{name}.txt").read_text().split() for name in ("train", "dev", "eval")
    }
    assert splits == {"train": ids[:6], "dev": ids[6:8], "eval": ids[8:]}
    assert dict(result.splits) == {name: tuple(value) for name, value in splits.items()}
    assert (result.computed, result.up_to_date, result.skipped) == (LIMIT, 0, ())
    assert result.cache_dir == cache and result.root == root


def test_manifest(prepared):
    result, cache, root = prepared
    manifest = json.loads((cache / "manifest.json").read_text())
    assert manifest["fingerprint"] == SETTINGS.fingerprint()
    assert manifest["settings"] == dataclasses.asdict(SETTINGS)
    assert manifest["root"] == str(root) and manifest["skipped"] == []
    utterances = list_utterances(root)[:LIMIT]
    assert [r["id"] for r in manifest["utterances"]] == [u.id for u in utterances]
    for record, utterance in zip(manifest["utterances"], utterances, strict=True):
        entry = _load(cache, utterance.id)
        assert record["wav"] == str(utterance.wav) and record["text"] == utterance.text
        assert (
            record["frames"] == entry["mel"].shape[0] == sf.info(utterance.wav).frames // SETTINGS.hop_length
        )
        assert record["samples"] == entry["audio"].shape[0]
    assert result.audio_seconds == pytest.approx(sum(r["samples"] for r in manifest["utterances"]) / 16000)


def test_entry_matches_references(prepared):
    """Audio = the wav trimmed; mel = librosa in float64; features/LPC = vocoder.dsp on the cached audio."""
    _, cache, root = prepared
    utterance = list_utterances(root)[0]
    entry = _load(cache, utterance.id)
    frames = entry["mel"].shape[0]
    wav = load_audio(utterance.wav, 16000)
    np.testing.assert_array_equal(entry["audio"], wav[: frames * 160])
    reference = librosa.feature.melspectrogram(
        y=entry["audio"].astype(np.float64),
        sr=16000,
        n_fft=SETTINGS.n_fft,
        hop_length=SETTINGS.hop_length,
        win_length=SETTINGS.win_length,
        window="hann",
        center=True,
        pad_mode="constant",
        power=1.0,
        n_mels=SETTINGS.n_mels,
        fmin=SETTINGS.fmin,
        fmax=SETTINGS.fmax,
        htk=False,
        norm="slaney",
        dtype=np.float64,
    )
    assert reference.shape[1] == frames + 1  # centred framing: the last frame is dropped
    expected_mel = np.log(np.maximum(reference, SETTINGS.mel_floor))[:, :frames].T
    np.testing.assert_allclose(entry["mel"], expected_mel, rtol=0, atol=2e-4)
    features, lpc = lpcnet_features(entry["audio"], 16000, SETTINGS.preemphasis, SETTINGS.lpc_order)
    np.testing.assert_array_equal(entry["features"], features)
    np.testing.assert_array_equal(entry["lpc"], lpc)


def test_mel_floor_is_applied(tmp_path):
    root = tmp_path / "corpus"
    rng = np.random.default_rng(0)
    # a click in silence: most mel bins are far below a floor of 1e-2
    signal = np.zeros(16000)
    signal[8000] = 0.5
    signal += 1e-7 * rng.standard_normal(16000)
    (root / "wav").mkdir(parents=True)
    for index in range(3):
        sf.write(root / "wav" / f"u{index}.wav", signal, 16000, subtype="FLOAT")
    settings = dataclasses.replace(SETTINGS, mel_floor=1e-2)
    prepare_corpus(root, tmp_path / "cache", settings, n_eval=1, n_dev=1, num_workers=0, progress=False)
    mel = _load(tmp_path / "cache", "u0")["mel"]
    assert mel.min() == pytest.approx(np.log(1e-2)) and (mel > np.log(1e-2) + 1).any()


def test_stats_equal_numpy_over_the_train_split(prepared):
    _, cache, _ = prepared
    train = (cache / "splits" / "train.txt").read_text().split()
    entries = [_load(cache, i) for i in train]
    with np.load(cache / "stats.npz") as stats:
        assert sorted(stats.files) == ["features_mean", "features_std", "mel_mean", "mel_std"]
        for name, width in (("mel", SETTINGS.n_mels), ("features", 20)):
            frames = np.concatenate([e[name] for e in entries]).astype(np.float64)
            assert stats[f"{name}_mean"].shape == stats[f"{name}_std"].shape == (width,)
            np.testing.assert_allclose(stats[f"{name}_mean"], frames.mean(axis=0), rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(stats[f"{name}_std"], np.maximum(frames.std(axis=0), 1e-3), rtol=1e-5)
    # dev/eval frames are not in the statistics
    everything = np.concatenate([_load(cache, p.stem)["mel"] for p in (cache / "features").glob("*.npz")])
    with np.load(cache / "stats.npz") as stats:
        assert not np.allclose(stats["mel_mean"], everything.mean(axis=0), rtol=0, atol=1e-4)


def test_rerun_reuses_fresh_entries(sample_root, tmp_path):
    root = _copy_corpus(sample_root, tmp_path / "corpus", 5)
    cache = tmp_path / "cache"

    def run(settings=SETTINGS, corpus=root):
        return prepare_corpus(corpus, cache, settings, n_eval=1, n_dev=1, num_workers=0, progress=False)

    assert run().computed == 5
    mtimes = _entry_mtimes(cache)
    with np.load(cache / "stats.npz") as stats:
        stats_before = {key: stats[key] for key in stats.files}
    again = run()  # the whole cache is current: nothing is opened or rewritten
    assert (again.computed, again.up_to_date) == (0, 5) and _entry_mtimes(cache) == mtimes
    (cache / "manifest.json").unlink()  # as after an interrupted run: entries are checked one by one
    again = run()
    assert (again.computed, again.up_to_date) == (0, 5) and _entry_mtimes(cache) == mtimes
    with np.load(cache / "stats.npz") as stats:  # recomputed from the reused entries: the same numbers
        for key, before in stats_before.items():
            np.testing.assert_array_equal(stats[key], before)
    # a wav newer than its entry is recomputed, and only that one
    touched = root / "wav" / "arctic_a0057.wav"
    later = _entry_mtimes(cache)["arctic_a0057"] + 10**9
    os.utime(touched, ns=(later, later))
    again = run()
    assert (again.computed, again.up_to_date) == (1, 4)
    changed = {k for k, v in _entry_mtimes(cache).items() if v != mtimes[k]}
    assert changed == {"arctic_a0057"}
    # other settings: a new fingerprint, every entry is stale
    settings = dataclasses.replace(SETTINGS, n_mels=40)
    again = run(settings)
    assert (again.computed, again.up_to_date) == (5, 0)
    assert _load(cache, "arctic_a0001")["mel"].shape[1] == 40
    # the same ids under another corpus directory are not trusted either
    moved = shutil.copytree(root, tmp_path / "moved")
    again = run(settings, moved)
    assert again.computed == 5 and json.loads((cache / "manifest.json").read_text())["root"] == str(moved)


def test_two_workers_give_the_same_cache(sample_root, tmp_path):
    kwargs = dict(n_eval=2, n_dev=2, limit=12, progress=False)
    serial = prepare_corpus(sample_root, tmp_path / "serial", SETTINGS, num_workers=0, **kwargs)
    parallel = prepare_corpus(sample_root, tmp_path / "parallel", SETTINGS, num_workers=2, **kwargs)
    assert serial.splits == parallel.splits and parallel.computed == 12
    # The audio is copied, so it is exact. The analysis is not bit-reproducible between the in-process
    # pass and the workers: they run different torch thread counts, and the float32 STFT/mel products
    # then round differently in the last bit on some vector paths (34 of 30,160 mel values, 1 ulp, under
    # ATEN_CPU_CAPABILITY=avx2 on an AVX-512 Xeon): equal to float32 rounding.
    for utterance_id in serial.splits["train"] + serial.splits["eval"]:
        a, b = _load(tmp_path / "serial", utterance_id), _load(tmp_path / "parallel", utterance_id)
        np.testing.assert_array_equal(a["audio"], b["audio"])
        for key in ("mel", "features", "lpc"):
            np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-5, err_msg=key)
    with np.load(tmp_path / "serial" / "stats.npz") as a, np.load(tmp_path / "parallel" / "stats.npz") as b:
        for key in a.files:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6, err_msg=key)


def _corpus_with_bad_files(sample_root: Path, target: Path) -> tuple[Path, dict[str, str]]:
    root = _copy_corpus(sample_root, target, 8)
    # ids chosen so that one bad file falls in train and one in eval
    sf.write(root / "wav" / "arctic_a0000.wav", np.zeros(16000), 16000)
    (root / "wav" / "arctic_b9999.wav").write_text("not audio at all\n")
    return root, {
        "arctic_a0000": "all samples are zero (silent file)",
        "arctic_b9999": "not a readable audio file (Format not recognised.)",
    }


@pytest.mark.parametrize("num_workers", [0, 2])
def test_on_error_skip_lists_bad_files(sample_root, tmp_path, num_workers):
    root, reasons = _corpus_with_bad_files(sample_root, tmp_path / "corpus")
    cache = tmp_path / "cache"
    result = prepare_corpus(root, cache, SETTINGS, n_eval=2, n_dev=2, num_workers=num_workers, progress=False)
    assert {s.id: s.reason for s in result.skipped} == reasons
    assert {s.id: s.wav for s in result.skipped} == {i: root / "wav" / f"{i}.wav" for i in reasons}
    ids = [u.id for u in list_utterances(root)]  # 10 ids: bad ones at both ends
    # the split is decided over the 8 usable utterances: no split loses one to a broken file
    assert dict(result.splits) == {"train": tuple(ids[1:5]), "dev": tuple(ids[5:7]), "eval": tuple(ids[7:9])}
    assert result.split == "split: train 4, dev 2, eval 2 (data.splits.n_eval=2, n_dev=2 as set)"
    summary = result.summary()
    for utterance_id, reason in reasons.items():
        assert f"skipped {utterance_id}: {reason} ({root / 'wav' / utterance_id}.wav)" in summary
    assert "skipped 2" in summary
    manifest = json.loads((cache / "manifest.json").read_text())
    assert {r["id"]: r["reason"] for r in manifest["skipped"]} == reasons
    assert not (cache / "features" / "arctic_a0000.npz").exists()
    assert "arctic_b9999" not in (cache / "splits" / "eval.txt").read_text()
    # unchanged bad files do not make the next run redo anything
    again = prepare_corpus(root, cache, SETTINGS, n_eval=2, n_dev=2, num_workers=0, progress=False)
    assert (again.computed, again.up_to_date, len(again.skipped)) == (0, 8, 2)


def test_on_error_fail_names_the_file(sample_root, tmp_path):
    root, reasons = _corpus_with_bad_files(sample_root, tmp_path / "corpus")
    cache = tmp_path / "cache"
    with pytest.raises(BadAudioError) as error:
        prepare_corpus(
            root, cache, SETTINGS, n_eval=2, n_dev=2, num_workers=0, on_error="fail", progress=False
        )
    assert str(error.value) == f"{root / 'wav' / 'arctic_a0000.wav'}: {reasons['arctic_a0000']}"
    assert not (cache / "manifest.json").exists()


def test_no_usable_training_utterance(tmp_path):
    root = tmp_path / "corpus"
    (root / "wav").mkdir(parents=True)
    for index in range(4):
        sf.write(root / "wav" / f"u{index}.wav", np.zeros(3200) if index < 2 else 0.1 * np.ones(3200), 16000)
    too_few = "2 usable utterances are too few for n_eval=1 \\+ n_dev=1"
    with pytest.raises(CorpusError, match=too_few) as error:
        prepare_corpus(root, tmp_path / "cache", SETTINGS, n_eval=1, n_dev=1, num_workers=0, progress=False)
    message = str(error.value)
    assert "\n" not in message and "2 unusable files were left out" in message
    assert all(f"{root / 'wav' / f'u{index}.wav'} (all samples are zero" in message for index in (0, 1))


def test_too_small_for_the_splits(sample_root, tmp_path):
    with pytest.raises(CorpusError, match="6 usable utterances are too few for n_eval=4 \\+ n_dev=4"):
        prepare_corpus(sample_root, tmp_path / "cache", SETTINGS, n_eval=4, n_dev=4, limit=6, num_workers=0)


def test_default_split_sizes_adapt_to_a_small_corpus_with_broken_files(sample_root, tmp_path):
    """Unset sizes on 8 good + 3 broken files: the broken ones are named, the split fits the 8."""
    root = _copy_corpus(sample_root, tmp_path / "corpus", 8)
    (root / "wav" / "arctic_a0000.wav").write_bytes(b"")  # empty
    (root / "wav" / "arctic_b0001.wav").write_text("not audio\n")  # not audio
    good = next(iter(sorted((root / "wav").glob("arctic_a*.wav"))[1:]))
    (root / "wav" / "arctic_b9999.wav").write_bytes(good.read_bytes()[:60])  # truncated in its header
    cache = tmp_path / "cache"
    result = prepare_corpus(root, cache, SETTINGS, num_workers=0, progress=False)
    assert sorted(s.id for s in result.skipped) == ["arctic_a0000", "arctic_b0001", "arctic_b9999"]
    assert {name: len(ids) for name, ids in result.splits.items()} == {"train": 6, "dev": 1, "eval": 1}
    assert result.split.startswith("split: train 6, dev 1, eval 1 (a small corpus of 8 usable utterances")
    assert result.summary().splitlines()[0].startswith("corpus: arctic layout (found by data.layout=auto)")
    assert result.split in result.summary().splitlines()[3]
    manifest = json.loads((cache / "manifest.json").read_text())
    assert manifest["splits"] == {
        "n_eval": 1,
        "n_dev": 1,
        "requested": {"n_eval": None, "n_dev": None, "held_out_speakers": None},
        "held_out_speakers": [],
        "unused": 0,
        "adapted": True,
        "line": result.split,
    }
    again = prepare_corpus(root, cache, SETTINGS, num_workers=0, progress=False)
    assert (again.computed, again.up_to_date, again.split) == (0, 8, result.split)
    # an explicit size the corpus cannot hold is one line that also names every broken file
    with pytest.raises(CorpusError) as error:
        prepare_corpus(root, tmp_path / "cache2", SETTINGS, n_eval=4, n_dev=4, num_workers=0, progress=False)
    message = str(error.value)
    assert "8 usable utterances are too few for n_eval=4 + n_dev=4" in message and "\n" not in message
    for name in ("arctic_a0000", "arctic_b0001", "arctic_b9999"):
        assert f"{root / 'wav' / name}.wav (" in message


def test_interruption_leaves_only_complete_entries(sample_root, tmp_path, monkeypatch):
    import vocoder.data._prepare as prepare_module

    cache = tmp_path / "cache"
    real_savez = np.savez
    calls = {"count": 0}

    def savez_interrupted_on_the_fourth(stream, **arrays):
        calls["count"] += 1
        if calls["count"] == 4:
            stream.write(b"PK\x03\x04 half an entry")
            raise KeyboardInterrupt
        real_savez(stream, **arrays)

    monkeypatch.setattr(prepare_module.np, "savez", savez_interrupted_on_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        prepare_corpus(
            sample_root, cache, SETTINGS, n_eval=2, n_dev=2, limit=8, num_workers=0, progress=False
        )
    monkeypatch.setattr(prepare_module.np, "savez", real_savez)
    assert sorted(p.name for p in (cache / "features").iterdir()) == [
        f"{u.id}.npz" for u in list_utterances(sample_root)[:3]
    ]
    assert not (cache / "manifest.json").exists()
    for path in (cache / "features").iterdir():
        assert set(_load(cache, path.stem)) == {"audio", "mel", "features", "lpc", "fingerprint"}
    resumed = prepare_corpus(
        sample_root, cache, SETTINGS, n_eval=2, n_dev=2, limit=8, num_workers=0, progress=False
    )
    assert (resumed.computed, resumed.up_to_date) == (5, 3)


def test_ensure_prepared_from_a_data_config(sample_root, tmp_path):
    from vocoder.config import DataConfig, SplitsConfig

    data = DataConfig(
        root=str(sample_root),
        cache_dir=str(tmp_path / "cache"),
        splits=SplitsConfig(2, 2),
        num_workers=0,
        limit=6,
    )
    assert ensure_prepared(data, progress=False) == tmp_path / "cache"
    mtimes = _entry_mtimes(tmp_path / "cache")
    assert len(mtimes) == 6
    assert ensure_prepared(data, progress=False) == tmp_path / "cache"
    assert _entry_mtimes(tmp_path / "cache") == mtimes


# ---------------------------------------------------------------- command line


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", "vocoder.prepare", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_prepares_the_sample(tmp_path):
    cache = tmp_path / "cache"
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    run = _cli(
        "data=sample",
        f"data.cache_dir={cache}",
        f"data.limit={LIMIT}",
        "data.splits.n_eval=2",
        "data.splits.n_dev=2",
        "data.num_workers=0",
        cwd=workdir,
    )
    assert run.returncode == 0, run.stderr
    assert f"cache: {cache}" in run.stdout
    assert "utterances: 10 (train 6, dev 2, eval 2); computed 10" in run.stdout
    assert "x real time" in run.stdout
    assert list(workdir.iterdir()) == []  # Hydra wrote nothing into the working directory
    assert len(list((cache / "features").glob("*.npz"))) == LIMIT
    assert (cache / "stats.npz").is_file() and (cache / "manifest.json").is_file()


@pytest.mark.parametrize(
    "override, expected",
    [
        ("data.nonsense=1", "vocoder-prepare: error: data.nonsense: unknown setting"),
        (
            "data.features.sample_rate=4000",
            "vocoder-prepare: error: data.features.sample_rate: must be in [8000, 192000] Hz, got 4000",
        ),
    ],
)
def test_cli_config_errors_are_one_line(tmp_path, override, expected):
    run = _cli("data=sample", f"data.cache_dir={tmp_path / 'cache'}", override, cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.strip() == expected  # one line, no traceback
    assert not (tmp_path / "cache").exists()  # rejected before any work


def _compose(*overrides: str):
    from hydra import compose, initialize_config_dir

    from vocoder.config import CONFIG_DIR, register_resolvers

    register_resolvers()
    with initialize_config_dir(str(CONFIG_DIR), version_base=None):
        return compose("prepare", overrides=list(overrides))


@pytest.mark.parametrize(
    "override, message",
    [
        ("+data.nonsense=1", "data.nonsense: unknown setting"),
        ("+data.features.hop=80", "data.features.hop: Key 'hop' not in 'FeaturesConfig'"),
        ("data.limit=many", "data.limit: Value 'many' of type 'str' could not be converted to Integer"),
        (
            "data.features.n_fft=1.5",
            "data.features.n_fft: Value '1.5' of type 'float' could not be converted",
        ),
        ("data.features.sample_rate=4000", "data.features.sample_rate: must be in [8000, 192000] Hz"),
        ("data.features.hop_length=2048", "data.features.hop_length: must be in [1, n_fft=1024], got 2048"),
        ("data.splits.held_out_speakers=-1", "data.splits.held_out_speakers: expected null, a number of"),
        ("data.splits.held_out_speakers=true", "data.splits.held_out_speakers: expected null, a number of"),
        ("data.layout=filelist", "data.root: "),
        ("data.layout=arctik", "data.layout: expected one of auto, arctic, folder, ljspeech, vctk, libritts"),
        ("data.features.win_length=2048", "data.features.win_length: must be in [1, n_fft=1024], got 2048"),
        (
            "data.features.fmax=9000",
            "data.features.fmax: must be at most the Nyquist frequency 8000 Hz, got 9000.0",
        ),
        ("data.features.fmin=8000", "data.features.fmin: must be >= 0 and below fmax=8000.0, got 8000.0"),
        ("data.features.mel_floor=0", "data.features.mel_floor: must be > 0"),
        ("data.features.preemphasis=1.0", "data.features.preemphasis: must be in [0, 1), got 1.0"),
        ("data.features.lpc_order=0", "data.features.lpc_order: must be in [1, 159], got 0"),
        ("data.splits.n_dev=0", "data.splits.n_dev: must be >= 1, got 0"),
        ("data.num_workers=-1", "data.num_workers: must be >= 0, got -1"),
        ("data.on_error=ignore", "data.on_error: expected skip or fail, got 'ignore'"),
        ("data.limit=0", "data.limit: must be >= 1 or null, got 0"),
        ("data.root=/nonexistent/corpus", "data.root: /nonexistent/corpus is not a directory"),
        ("data.root=null", "data.speaker: unknown CMU ARCTIC speaker 'kathleen'"),
        ("data.cache_dir=${data.nowhere}", "data.cache_dir: Interpolation key 'data.nowhere' not found"),
        (
            "data.base_url=ftp://mirror",
            "data.base_url: expected an http:// or https:// URL, got 'ftp://mirror'",
        ),
    ],
)
def test_data_config_validation(override, message):
    from vocoder.config import validate_data
    from vocoder.errors import ConfigError

    overrides = ["data=sample", override] + (
        ["data.speaker=kathleen"] if override == "data.root=null" else []
    )
    with pytest.raises(ConfigError) as error:
        validate_data(_compose(*overrides).data)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


@pytest.mark.parametrize("data", ["slt", "sample"])
def test_shipped_data_configs_are_valid(data):
    from vocoder.config import validate_data

    config = validate_data(_compose(f"data={data}").data)
    assert config.feature_settings() == FeatureSettings()
    if data == "sample":
        assert Path(config.root) == REPO_ROOT / "vocoder" / "data" / "sample" / "kathleen"
        assert (config.splits.n_eval, config.splits.n_dev) == (4, 4) and config.cache_dir == "cache/sample"
    else:
        assert config.root is None and config.speaker == "slt" and config.cache_dir == "cache/slt"
        assert config.base_url == "http://festvox.org/cmu_arctic/cmu_arctic/packed"
