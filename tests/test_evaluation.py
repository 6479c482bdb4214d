"""Objective metrics, anchors, the report writer and the ``vocoder-eval`` command.

PESQ, MCD and harvest take about a second per second of audio, so every test works on one or two
short utterances (or one-second synthetic signals).
"""

import csv
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import soundfile as sf

from vocoder.cli.evaluate import main as eval_main
from vocoder.data import load_audio
from vocoder.dsp import mulaw_compress
from vocoder.evaluation import (
    ANCHORS,
    METRICS,
    ReferenceAnalysis,
    evaluate_folders,
    markdown_table,
    mel_cepstral_distortion,
    mulaw_8bit,
    pesq_wb,
    pitch_scores,
    score_pair,
    stoi,
    summarize,
)
from vocoder.evaluation._page import to_pcm16

SR = 16000
REPO_ROOT = Path(__file__).resolve().parents[1]
# the two shortest utterances of the embedded sample (1.84 s and 1.90 s)
SHORT_IDS = ("arctic_b0388", "arctic_b0276")
PESQ_WB_MAX = 4.644  # MOS-LQO of identical signals under P.862.2's mapping


def _speech(sample_root: Path, uid: str = SHORT_IDS[0], crop: slice = slice(None)) -> np.ndarray:
    return load_audio(sample_root / "wav" / f"{uid}.wav", SR)[crop].astype(np.float64)


def _short_speech(sample_root: Path) -> np.ndarray:
    """1.2 s of speech (the sample's utterances start with about 0.2 s of silence)."""
    return _speech(sample_root, crop=slice(2400, 2400 + 19200))


def _add_noise(x: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(len(x))
    return x + noise * math.sqrt(np.mean(x**2) / np.mean(noise**2) / 10 ** (snr_db / 10))


def _harmonic(f0: float, seconds: float = 1.0) -> np.ndarray:
    """A constant-F0 harmonic complex (1/k amplitudes up to 4 kHz) with 20 ms fades."""
    t = np.arange(int(seconds * SR)) / SR
    k = np.arange(1, int(4000 // f0) + 1)
    x = (np.sin(2 * np.pi * f0 * np.outer(t, k)) / k).sum(axis=1)
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)
    return 0.3 * x * fade / np.abs(x).max()


def _is_png_file(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(8) == b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    with open(path, "rb") as handle:
        if handle.read(8) != b"\x89PNG\r\n\x1a\n":
            return False
    image = matplotlib.image.imread(path)
    # a real figure: non-trivial size and not a single colour
    return image.ndim == 3 and min(image.shape[:2]) > 100 and float(image.std()) > 0.01


# ------------------------------------------------------------------------------------------ metrics


def test_identical_signals_score_perfectly(sample_root):
    x = _short_speech(sample_root)
    scores = score_pair(x, x, SR)
    assert set(scores) == set(METRICS)
    assert scores["pesq_wb"] == pytest.approx(PESQ_WB_MAX, abs=1e-3)
    assert scores["stoi"] == pytest.approx(1.0, abs=1e-9)
    assert scores["mcd_db"] == 0.0
    assert scores["vuv_error"] == 0.0 and scores["gpe"] == 0.0 and scores["fpe_cents"] == 0.0


def test_noise_degrades_every_spectral_score_monotonically(sample_root):
    x = _short_speech(sample_root)
    rows = [(pesq_wb(x, x, SR), stoi(x, x, SR), 0.0)]
    for snr in (30.0, 15.0, 0.0):
        y = _add_noise(x, snr)
        rows.append((pesq_wb(x, y, SR), stoi(x, y, SR), mel_cepstral_distortion(x, y, SR)))
    pesq_values, stoi_values, mcd_values = (np.array(column) for column in zip(*rows, strict=True))
    assert np.all(np.diff(pesq_values) < 0), pesq_values
    assert np.all(np.diff(stoi_values) < 0), stoi_values
    assert np.all(np.diff(mcd_values) > 0), mcd_values
    # 0 dB SNR white noise: PESQ at the bottom of the scale, intelligibility clearly lost
    assert pesq_values[-1] < 1.5 and stoi_values[-1] < 0.8 and mcd_values[-1] > 8.0


def test_mcd_ignores_gain_and_trims_to_the_shorter_signal(sample_root):
    x = _short_speech(sample_root)
    # c0 (the gain) is excluded; only the small eps of the periodogram breaks exact invariance
    assert mel_cepstral_distortion(x, 0.5 * x, SR) < 0.25
    assert mel_cepstral_distortion(x, np.concatenate([x, np.ones(4000)]), SR) == 0.0


@pytest.mark.parametrize("f0", [110.0, 220.0])
def test_pitch_scores_of_a_known_fine_shift(f0):
    reference = _harmonic(f0)
    for ratio in (1.05, 0.95):
        scores = pitch_scores(reference, _harmonic(f0 * ratio), SR)
        assert scores.vuv_error == 0.0
        assert scores.gross_pitch_error == 0.0
        # every frame is off by |1200 log2(ratio)|: 84.5 cents up, 88.8 cents down
        assert scores.fine_pitch_error_cents == pytest.approx(abs(1200 * math.log2(ratio)), abs=1.5)


def test_pitch_scores_of_a_gross_shift_and_of_lost_voicing():
    reference = _harmonic(150.0)
    gross = pitch_scores(reference, _harmonic(150.0 * 1.3), SR)  # 30 % > the 20 % GPE threshold
    assert gross.vuv_error == 0.0
    assert gross.gross_pitch_error == 1.0
    assert math.isnan(gross.fine_pitch_error_cents)  # no frame left for the fine error
    half_silent = reference.copy()
    half_silent[len(reference) // 2 :] = 0.0
    voicing = pitch_scores(reference, half_silent, SR)
    assert voicing.vuv_error == pytest.approx(0.5, abs=0.05)


def test_pesq_is_nan_for_silence_and_resamples_other_rates(sample_root):
    with np.errstate(all="raise"):  # no numpy warning escapes either
        assert math.isnan(pesq_wb(np.zeros(SR), np.zeros(SR), SR))
    x = _short_speech(sample_root)
    y = _add_noise(x, 20.0)
    import soxr

    x22, y22 = soxr.resample(x, SR, 22050), soxr.resample(y, SR, 22050)
    assert pesq_wb(x22, x22, 22050) == pytest.approx(PESQ_WB_MAX, abs=1e-3)
    # resampled to 16 kHz, the same degradation gets (nearly) the same score
    assert pesq_wb(x22, y22, 22050) == pytest.approx(pesq_wb(x, y, SR), abs=0.1)


# ------------------------------------------------------------------------------------------ anchors


def test_anchors_return_same_length_audio_close_to_the_input(sample_root):
    x = _speech(sample_root, crop=slice(4000, 4000 + 12345))  # an odd length, off every frame grid
    for name, anchor in ANCHORS.items():
        y = anchor(x, SR)
        assert y.shape == x.shape and y.dtype == np.float32 and np.all(np.isfinite(y)), name
        assert stoi(x, y, SR) > 0.85, name
        np.testing.assert_array_equal(anchor(x, SR), y, err_msg=f"{name} is not deterministic")
    # 8-bit μ-law: every sample within half a code step (1/255) in the companded domain
    error = np.abs(mulaw_compress(mulaw_8bit(x).astype(np.float64), 8) - mulaw_compress(x, 8))
    assert error.max() <= 1 / 255 + 1e-6


# ------------------------------------------------------------------------------------------- report


def test_summary_mean_and_confidence_interval():
    rows = [
        {"utterance": f"u{i}", "system": "vocoder", **{m: v for m in METRICS}}
        for i, v in enumerate([1.0, 2.0, 4.0, float("nan")])
    ]
    rows.append({"utterance": "u0", "system": "world", **{m: float("nan") for m in METRICS}})
    summary = summarize(rows)
    mean, half = summary["vocoder"]["stoi"]
    values = np.array([1.0, 2.0, 4.0])
    assert mean == pytest.approx(7 / 3)
    assert half == pytest.approx(1.96 * values.std(ddof=1) / math.sqrt(3))
    assert all(math.isnan(v) for v in summary["world"]["mcd_db"])
    table = markdown_table(summary, 4).splitlines()
    assert table[0] == "Scores over 4 utterances (mean ± 95 % CI)."
    assert table[4].startswith(f"| vocoder | {7 / 3:.2f} ± {half:.2f} |")
    assert f"| {700 / 3:.2f} ± {100 * half:.2f} % |" in table[4]  # V/UV and GPE in percent
    assert table[5] == "| world |" + " n/a |" * len(METRICS)


def _write_corpus(root: Path, sample_root: Path, ids, crop: slice, snr_db: float | None) -> Path:
    root.mkdir(parents=True)
    for seed, uid in enumerate(ids):
        x = _speech(sample_root, uid, crop)
        y = x if snr_db is None else _add_noise(x, snr_db, seed)
        sf.write(root / f"{uid}.wav", y, SR, subtype="FLOAT")
    return root


def test_report_writes_scores_summary_and_plots(sample_root, tmp_path, caplog):
    crop = slice(3000, 3000 + SR)
    ref = _write_corpus(tmp_path / "ref", sample_root, SHORT_IDS, crop, None)
    hyp = _write_corpus(tmp_path / "hyp", sample_root, SHORT_IDS, crop, 20.0)
    sf.write(hyp / "orphan.wav", np.full(SR, 0.1), SR)  # no reference: skipped with a warning
    out = tmp_path / "report"
    calls = []
    with caplog.at_level(logging.WARNING, logger="vocoder.evaluation"):
        means = evaluate_folders(ref, hyp, out, plots=2, workers=1, progress=lambda *a: calls.append(a))
    assert "orphan.wav" in caplog.text
    assert calls == [(1, 2), (2, 2)]
    with open(out / "scores.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["utterance"], r["system"]) for r in rows] == [(uid, "vocoder") for uid in sorted(SHORT_IDS)]
    assert list(rows[0]) == ["utterance", "system", *METRICS]
    for row in rows:  # the CSV holds the metrics of exactly these files
        x = load_audio(ref / f"{row['utterance']}.wav", SR)
        y = load_audio(hyp / f"{row['utterance']}.wav", SR)
        assert float(row["pesq_wb"]) == pytest.approx(pesq_wb(x, y, SR), rel=1e-9)
        assert float(row["stoi"]) == pytest.approx(stoi(x, y, SR), rel=1e-9)
        assert float(row["pesq_wb"]) < 3.5 and float(row["mcd_db"]) > 1.0
    for metric in METRICS:
        assert means["vocoder"][metric] == pytest.approx(np.mean([float(r[metric]) for r in rows]))
    summary = (out / "summary.md").read_text()
    assert "Scores over 2 utterances" in summary and "| vocoder |" in summary
    pngs = sorted(p.name for p in (out / "plots").iterdir())
    assert pngs == sorted(["distributions.png", *(f"{uid}_spectrogram.png" for uid in SHORT_IDS),
                           *(f"{uid}_ltas_f0.png" for uid in SHORT_IDS)])
    assert all(_is_png(out / "plots" / name) for name in pngs)
    # the listening page plays what was scored: natural and vocoder wav of each utterance, as 16-bit PCM
    assert (out / "index.html").is_file()
    for uid in SHORT_IDS:
        for system, folder in (("natural", ref), ("vocoder", hyp)):
            page_wav = out / "audio" / system / f"{uid}.wav"
            played, rate = sf.read(page_wav, dtype="int16")
            assert rate == SR and sf.info(page_wav).subtype == "PCM_16"
            np.testing.assert_array_equal(played, to_pcm16(load_audio(folder / f"{uid}.wav", SR)))
            assert _is_png_file(out / "spectrograms" / system / f"{uid}.png")
    assert not (out / "audio" / "vocoder" / "orphan.wav").exists()


def test_report_with_anchors_and_without_plots(sample_root, tmp_path):
    crop = slice(3000, 3000 + SR // 2)
    ref = _write_corpus(tmp_path / "ref", sample_root, SHORT_IDS[:1], crop, None)
    out = tmp_path / "report"
    means = evaluate_folders(ref, ref, out, anchors=True, plots=0, workers=1)
    assert list(means) == ["vocoder", *ANCHORS]
    assert means["vocoder"]["pesq_wb"] == pytest.approx(PESQ_WB_MAX, abs=1e-3)
    assert means["vocoder"]["mcd_db"] == 0.0
    for name in ANCHORS:  # every anchor is an imperfect copy
        assert 1.0 <= means[name]["pesq_wb"] < PESQ_WB_MAX - 0.1 and means[name]["mcd_db"] > 0.5
    with open(out / "scores.csv", newline="") as handle:
        assert [r["system"] for r in csv.DictReader(handle)] == ["vocoder", *ANCHORS]
    assert not (out / "plots").exists()
    # the anchors' audio is kept for the listening page: exactly the signal that was scored, in 16 bits
    natural = load_audio(ref / f"{SHORT_IDS[0]}.wav", SR)
    for name, anchor in ANCHORS.items():
        played, rate = sf.read(out / "audio" / name / f"{SHORT_IDS[0]}.wav", dtype="int16")
        assert rate == SR
        np.testing.assert_array_equal(played, to_pcm16(anchor(natural, SR)), err_msg=name)
    assert sorted(p.name for p in (out / "audio").iterdir()) == sorted(["natural", "vocoder", *ANCHORS])


# ---------------------------------------------------------------------------------------------- CLI


def _eval_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "vocoder.evaluate", *args]


def _subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def test_cli_scores_a_degraded_copy(sample_root, tmp_path):
    ref = sample_root / "wav"
    hyp = tmp_path / "hyp"
    hyp.mkdir()
    for seed, uid in enumerate(SHORT_IDS):  # 2 of the 40 utterances: only these are scored
        sf.write(hyp / f"{uid}.wav", _add_noise(_speech(sample_root, uid), 20.0, seed), SR, subtype="FLOAT")
    out = tmp_path / "out"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    result = subprocess.run(
        _eval_command(f"ref={ref}", f"hyp={hyp}", f"output_dir={out}", "plots=1", "workers=2"),
        cwd=cwd, env=_subprocess_env(), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "pkg_resources" not in result.stderr
    assert "| system | PESQ-WB ↑ | STOI ↑ |" in result.stdout and "| vocoder |" in result.stdout
    assert str(out / "scores.csv") in result.stdout and str(out / "summary.md") in result.stdout
    assert str(out / "plots") in result.stdout
    last_line = result.stdout.strip().splitlines()[-1]
    assert last_line.startswith(f"page:    {out / 'index.html'} (open it in a browser")
    assert (out / "index.html").is_file()
    assert list(cwd.iterdir()) == []  # Hydra left nothing (no outputs/) in the working directory
    with open(out / "scores.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["utterance"] for r in rows) == sorted(SHORT_IDS)
    assert all(1.0 <= float(r["pesq_wb"]) < 3.5 and 0.5 < float(r["stoi"]) < 1.0 for r in rows)
    assert (out / "summary.md").read_text() in result.stdout
    assert _is_png(out / "plots" / "distributions.png")
    assert len(list((out / "plots").glob("*_spectrogram.png"))) == 1


@pytest.fixture
def run_eval(monkeypatch, capsys):
    """Run ``vocoder-eval`` in this process; give (exit status, stdout, stderr), status 0 for a finished run.

    Hydra reconfigures the root logger for its job: restore it so later tests are unaffected.
    """
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["vocoder-eval", *args])
        monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
        try:
            eval_main()
            status = 0  # a finished run returns; errors exit
        except SystemExit as exit_info:
            status = exit_info.code
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    yield run
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def _bad_inputs(tmp_path: Path, sample_root: Path) -> dict[str, tuple[list[str], str]]:
    good = sample_root / "wav"
    empty = tmp_path / "empty"
    empty.mkdir()
    other = tmp_path / "other"
    other.mkdir()
    sf.write(other / "not_in_ref.wav", np.full(800, 0.1), SR)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / f"{SHORT_IDS[0]}.wav").write_bytes(b"RIFF....WAVEfmt definitely not audio")
    out = f"output_dir={tmp_path / 'out'}"
    unreadable = f"{SHORT_IDS[0]}.wav: not a readable audio"
    disjoint = []
    for uid in SHORT_IDS:  # two systems with one utterance each, not the same one
        folder = tmp_path / f"only_{uid}"
        folder.mkdir()
        (folder / f"{uid}.wav").write_bytes((good / f"{uid}.wav").read_bytes())
        disjoint.append(folder)
    return {
        "missing folder": ([f"ref={tmp_path / 'nope'}", f"hyp={good}", out], "nope: not a folder"),
        "empty folder": ([f"ref={good}", f"hyp={empty}", out], "empty: no .wav files"),
        "no matching names": ([f"ref={good}", f"hyp={other}", out], "not_in_ref.wav) has a reference"),
        "unreadable wav": ([f"ref={broken}", f"hyp={good}", out], unreadable),
        "ref not given": ([f"hyp={good}", out], "ref: not set"),
        "bad number": ([f"ref={good}", f"hyp={good}", out, "plots=many"], "plots:"),
        "negative workers": ([f"ref={good}", f"hyp={good}", out, "workers=0"], "workers: must be >= 1"),
        "unknown key": ([f"ref={good}", f"hyp={good}", out, "+anchor=true"], "anchor: unknown setting"),
        "negative page": ([f"ref={good}", f"hyp={good}", out, "page=-1"], "page: must be >= 0"),
        "hyp= and hyp.NAME=": ([f"ref={good}", f"hyp={good}", f"hyp.b={good}", out], "hyp: give one folder"),
        "reserved name": ([f"ref={good}", f"hyp.world={good}", out], "hyp.world: 'world' names the anchor"),
        "natural": ([f"ref={good}", f"hyp.natural={good}", out], "hyp.natural: 'natural' names the natural"),
        "names by case": ([f"ref={good}", f"hyp.Fast={good}", f"hyp.fast={good}", out],
                          "hyp.fast: differs from hyp.Fast only in case"),
        "list of same names": ([f"ref={good}", f"hyp=[{good},{good}]", out],
                               "hyp: two folders are named wav"),
        "empty named folder": ([f"ref={good}", f"hyp.a={empty}", f"hyp.b={good}", out], "hyp.a="),
        "no common utterance": ([f"ref={good}", f"hyp.a={disjoint[0]}", f"hyp.b={disjoint[1]}", out],
                                "have no utterance (wav name with a reference) in common"),
    }


def test_cli_bad_inputs_are_one_line_errors(run_eval, tmp_path, sample_root):
    for case, (args, expected) in _bad_inputs(tmp_path, sample_root).items():
        status, out, err = run_eval(*args)
        assert status not in (0, None), case
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("vocoder-eval: error: "), (case, err)
        assert expected in lines[0], (case, lines[0])
        assert "Traceback" not in out, case
    assert not (tmp_path / "out" / "scores.csv").exists()


def test_cli_compares_several_systems_on_their_common_utterances(run_eval, tmp_path, sample_root):
    crop = slice(3000, 3000 + SR // 2)
    ref = _write_corpus(tmp_path / "ref", sample_root, SHORT_IDS, crop, None)
    fast = _write_corpus(tmp_path / "fast", sample_root, SHORT_IDS, crop, 20.0)
    int8 = _write_corpus(tmp_path / "int8", sample_root, SHORT_IDS[:1], crop, 5.0)  # one utterance only
    out = tmp_path / "report"
    status, stdout, stderr = run_eval(f"ref={ref}", f"hyp.fast={fast}", f"hyp.int8={int8}",
                                      f"output_dir={out}", "plots=1", "workers=1", "cache=false")
    assert status == 0, stderr
    assert ("are not in every hyp folder and are skipped (the systems are compared on the same "
            f"utterances): {SHORT_IDS[1]}") in stdout
    with open(out / "scores.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["utterance"], r["system"]) for r in rows] == [(SHORT_IDS[0], "fast"), (SHORT_IDS[0], "int8")]
    pesq = {r["system"]: float(r["pesq_wb"]) for r in rows}
    assert pesq["fast"] > pesq["int8"] + 0.3  # 20 dB vs 5 dB SNR
    summary = (out / "summary.md").read_text()
    assert "Scores over 1 utterances" in summary and "| fast |" in summary and "| int8 |" in summary
    assert sorted(p.name for p in (out / "plots").glob("*_spectrogram.png")) == [
        f"{SHORT_IDS[0]}_fast_spectrogram.png", f"{SHORT_IDS[0]}_int8_spectrogram.png"]
    assert sorted(p.name for p in (out / "audio").iterdir()) == ["fast", "int8", "natural"]
    assert stdout.strip().splitlines()[-1].startswith(f"page:    {out / 'index.html'}")
    # a list of folders: the systems are named after them
    status, stdout, stderr = run_eval(f"ref={ref}", f"hyp=[{int8},{fast}]",
                                      f"output_dir={tmp_path / 'listed'}", "plots=0", "workers=1",
                                      "cache=false")
    assert status == 0, stderr
    with open(tmp_path / "listed" / "scores.csv", newline="") as handle:
        listed = list(csv.DictReader(handle))
    assert [r["system"] for r in listed] == ["int8", "fast"]
    assert {r["system"]: float(r["pesq_wb"]) for r in listed} == pytest.approx(pesq, rel=1e-12)


def test_reference_analysis_is_shared_and_changes_no_score(sample_root, monkeypatch):
    import vocoder.evaluation._metrics as metrics

    x = _short_speech(sample_root)
    rng = np.random.default_rng(3)
    systems = [x + 0.01 * rng.standard_normal(len(x)), 0.7 * x, x[: len(x) - 800]]  # last one shorter
    expected = [score_pair(x, y, SR) for y in systems]
    calls = {"harvest": 0, "cepstra": 0}
    harvest, cepstra = metrics.harvest_f0, metrics.mel_cepstra

    def counting_harvest(*args, **kwargs):
        calls["harvest"] += 1
        return harvest(*args, **kwargs)

    def counting_cepstra(*args, **kwargs):
        calls["cepstra"] += 1
        return cepstra(*args, **kwargs)

    monkeypatch.setattr(metrics, "harvest_f0", counting_harvest)
    monkeypatch.setattr(metrics, "mel_cepstra", counting_cepstra)
    analysis = ReferenceAnalysis(x, SR)
    shared = [score_pair(x, y, SR, analysis) for y in systems]
    for got, want in zip(shared, expected, strict=True):
        assert got.keys() == want.keys()
        for key in want:
            assert got[key] == want[key] or (math.isnan(got[key]) and math.isnan(want[key])), key
    # one analysis of the reference per trimmed length (2 lengths) plus one per system
    assert calls == {"harvest": 2 + 3, "cepstra": 2 + 3}


def test_reference_cache_reuses_analysis_and_anchor_scores(sample_root, tmp_path, monkeypatch):
    import vocoder.evaluation._metrics as metrics
    import vocoder.evaluation._report as report

    crop = slice(3000, 3000 + SR // 2)
    ref = _write_corpus(tmp_path / "ref", sample_root, SHORT_IDS[:2], crop, None)
    hyp = tmp_path / "hyp"
    hyp.mkdir()
    for seed, path in enumerate(sorted(ref.glob("*.wav"))):
        sf.write(hyp / path.name, _add_noise(sf.read(path)[0], 15.0, seed), SR, subtype="FLOAT")
    cache = tmp_path / "cache"
    plain = evaluate_folders(ref, hyp, tmp_path / "plain", anchors=True, plots=0, workers=1, page=0)
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == ["scores.csv", "summary.md"]  # no page
    first = evaluate_folders(ref, hyp, tmp_path / "first", anchors=True, plots=0, workers=1, cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 2 and not list(cache.glob("*.tmp"))
    calls = {"harvest": 0, "anchors": 0}
    harvest = metrics.harvest_f0

    def counting_harvest(*args, **kwargs):
        calls["harvest"] += 1
        return harvest(*args, **kwargs)

    def no_anchor(*args, **kwargs):
        calls["anchors"] += 1
        raise AssertionError("an anchor was recomputed")

    monkeypatch.setattr(metrics, "harvest_f0", counting_harvest)
    monkeypatch.setattr(report, "ANCHORS", {name: no_anchor for name in ANCHORS})
    again = evaluate_folders(ref, hyp, tmp_path / "again", anchors=True, plots=0, workers=1, cache_dir=cache)
    assert calls == {"harvest": 2, "anchors": 0}  # the two synthesized files only
    # the page's anchor audio came from the cache, sample for sample what the first run computed
    for wav in sorted((tmp_path / "first" / "audio").rglob("*.wav")):
        again_wav = tmp_path / "again" / wav.relative_to(tmp_path / "first")
        np.testing.assert_array_equal(sf.read(again_wav, dtype="int16")[0], sf.read(wav, dtype="int16")[0])
    assert len(list((tmp_path / "again" / "audio").rglob("*.wav"))) == 2 * (2 + len(ANCHORS))
    for means in (first, again):
        assert means.keys() == plain.keys()
        for system in plain:
            for metric, value in plain[system].items():
                assert means[system][metric] == pytest.approx(value, rel=1e-12, abs=1e-12), (system, metric)
    # another recording (or rate) is another entry; a torn entry is recomputed, not an error
    entry = sorted(cache.glob("*.npz"))[0]
    entry.write_bytes(b"torn")
    monkeypatch.undo()
    healed = evaluate_folders(ref, hyp, tmp_path / "healed", anchors=True, plots=0, workers=1,
                              cache_dir=cache)
    assert healed["vocoder"]["mcd_db"] == pytest.approx(plain["vocoder"]["mcd_db"], rel=1e-12)
    assert entry.stat().st_size > 100
