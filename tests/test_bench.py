"""vocoder-bench and the scripts/bench_*.py wrappers: JSON document, table, --only, errors, last lines.

Speed is never asserted (the machine is shared): the tests check that every figure is present, finite and
positive, that the figures agree with each other and with values computed here independently (audio
durations from the wav headers, parameter counts, banded vs dense MLPG agreement), and that the scripts'
output keeps its exact format.
"""

from __future__ import annotations

import json
import math
import os
import re
import runpy
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import soundfile as sf

from vocoder.bench import (
    BENCHMARKS,
    FeaturesResult,
    IAFSettings,
    IAFSynthesisResult,
    LPCNetResult,
    LPCNetSettings,
    LPCNetSynthesisResult,
    LPCNetTrainingResult,
    Metric,
    MLPGResult,
    MLPGSettings,
    SuiteResult,
    Target,
    TimingRow,
    format_value,
    parse_only,
    run_worker,
)
from vocoder.bench._common import BenchmarkError
from vocoder.bench._suite import result_from_dict

REPO = Path(__file__).resolve().parents[1]
KATHLEEN = REPO / "vocoder" / "data" / "sample" / "kathleen"
ENV = dict(os.environ, OMP_NUM_THREADS="1")

EXPECTED_METRICS = {
    "features": ["features_xrt", "peak_rss_mb"],
    "lpcnet": [
        "fast_rtf",
        "fast_batch_rtf",
        "torch_rtf",
        "speedup",
        "synth_peak_rss_mb",
        "train_samples_per_s",
        "train_peak_rss_mb",
    ],
    "iaf": [
        "student_rtf",
        "student_script_rtf",
        "student_rtf_1thr",
        "teacher_rtf",
        "teacher_rtf_1thr",
        "speedup",
        "synth_peak_rss_mb",
        "wavenet_train_samples_per_s",
        "wavenet_train_peak_rss_mb",
        "iaf_train_samples_per_s",
        "iaf_train_peak_rss_mb",
        "iaf_distill_train_samples_per_s",
        "iaf_distill_train_peak_rss_mb",
    ],
    "mlpg": ["mlpg_ms", "dense_ms", "speedup", "peak_rss_mb"],
}
LAST_LINES = {
    "features": r"features_xrt=\d+\.\d{2} peak_rss_mb=\d+\.\d",
    "lpcnet": r"fast_rtf=\d+\.\d{4} torch_rtf=\d+\.\d{4} "
    r"train_samples_per_s=\d+\.\d train_peak_rss_mb=\d+\.\d",
    "iaf": r"student_rtf=\d+\.\d{4} teacher_rtf=\d+\.\d{4}",
    "mlpg": r"mlpg_ms=\d+\.\d{3} dense_ms=\d+\.\d{3}",
}


def _bench(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vocoder.bench", *args],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=REPO,
        timeout=timeout,
    )


def _key_values(line: str) -> dict[str, float]:
    return {key: float(value) for key, value in (item.split("=") for item in line.split())}


@pytest.fixture(scope="module")
def quick_json() -> dict:
    """One whole quick run of the suite (every benchmark), as its --json document."""
    proc = _bench("--quick", "--json", "--root", str(KATHLEEN))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # the whole of stdout is the document


# ------------------------------------------------------------------------------------------ the whole suite
def test_quick_json_has_every_metric_finite_and_positive(quick_json):
    found = {(m["benchmark"], m["key"]): m for m in quick_json["metrics"]}
    expected = {(bench, key) for bench, keys in EXPECTED_METRICS.items() for key in keys}
    assert set(found) == expected
    for metric in found.values():
        assert (
            isinstance(metric["value"], float) and math.isfinite(metric["value"]) and metric["value"] > 0
        ), metric
        assert metric["ok"] is None  # quick: targets not applicable
        assert metric["unit"] and metric["label"]
    assert quick_json["quick"] is True and "NOT comparable" in quick_json["note"]
    assert quick_json["errors"] == {}
    assert list(quick_json["benchmarks"]) == list(BENCHMARKS)
    # the targets of the issues travel with their metrics
    assert found[("lpcnet", "fast_rtf")]["target"] == "<= 0.15"
    assert found[("lpcnet", "train_samples_per_s")]["target"] == ">= 22,000"
    assert found[("features", "features_xrt")]["target"] == ">= 100"
    assert found[("iaf", "speedup")]["target"] == ">= 20"


def test_quick_json_summary_lines_have_the_scripts_format_and_values(quick_json):
    metrics = {(m["benchmark"], m["key"]): m["value"] for m in quick_json["metrics"]}
    for name, pattern in LAST_LINES.items():
        line = quick_json["benchmarks"][name]["summary_line"]
        assert re.fullmatch(pattern, line), line
    lpcnet = _key_values(quick_json["benchmarks"]["lpcnet"]["summary_line"])
    assert lpcnet["fast_rtf"] == pytest.approx(metrics[("lpcnet", "fast_rtf")], abs=5e-5)
    assert lpcnet["train_samples_per_s"] == pytest.approx(
        metrics[("lpcnet", "train_samples_per_s")], abs=0.05
    )
    iaf = _key_values(quick_json["benchmarks"]["iaf"]["summary_line"])
    assert iaf["teacher_rtf"] == pytest.approx(metrics[("iaf", "teacher_rtf")], abs=5e-5)
    mlpg = _key_values(quick_json["benchmarks"]["mlpg"]["summary_line"])
    assert mlpg["mlpg_ms"] == pytest.approx(metrics[("mlpg", "mlpg_ms")], abs=5e-4)


def test_quick_json_figures_agree_with_independent_references(quick_json):
    import torch

    from vocoder.models import IAFStudent, LPCNet

    benchmarks = quick_json["benchmarks"]
    metrics = {(m["benchmark"], m["key"]): m["value"] for m in quick_json["metrics"]}
    # features: the first 4 utterances (sorted ids) trimmed to whole 160-sample frames
    features = benchmarks["features"]["result"]
    wavs = sorted((KATHLEEN / "wav").glob("*.wav"))[:4]
    expected_seconds = sum(sf.info(str(w)).frames // 160 * 160 for w in wavs) / 16000
    assert features["utterances"] == 4 and features["skipped"] == 0
    assert features["audio_seconds"] == pytest.approx(expected_seconds, rel=1e-12)
    assert metrics[("features", "features_xrt")] == pytest.approx(expected_seconds / features["wall_seconds"])
    assert features["root"] == str(KATHLEEN.resolve()) and features["fallback"] is False
    # lpcnet: 25 frames of fast synthesis, 2 frames of torch loop, pruned to ~0.05 / 0.05 / 0.2 of the blocks
    synthesis = benchmarks["lpcnet"]["result"]["synthesis"]
    assert synthesis["seconds"] == pytest.approx(0.25) and synthesis["torch_seconds"] == pytest.approx(0.02)
    assert metrics[("lpcnet", "speedup")] == pytest.approx(synthesis["torch_rtf"] / synthesis["fast_rtf"])
    for gate, target in (("update", 0.05), ("reset", 0.05), ("candidate", 0.2)):
        assert abs(synthesis[f"density_{gate}"] - target) < 0.02
    lpcnet_settings = benchmarks["lpcnet"]["result"]["settings"]
    torch.manual_seed(0)
    lpcnet_params = sum(p.numel() for p in LPCNet(**lpcnet_settings["model"]).parameters())
    assert lpcnet_params < sum(p.numel() for p in LPCNet().parameters())  # quick really is tiny
    # iaf: the student's size line counts the parameters of the quick configuration
    iaf = benchmarks["iaf"]["result"]
    student = IAFStudent(**IAFSettings.quick_settings().student)
    assert (
        f"{sum(p.numel() for p in student.parameters()) / 1e6:.2f}M params"
        in iaf["synthesis"]["student_config"]
    )
    assert iaf["synthesis"]["seconds"] == pytest.approx(25 * 160 / 16000)
    assert [run["recipe"] for run in iaf["training"]] == ["slt_wavenet", "slt_iaf", "slt_iaf_distill"]
    assert [run["model"] for run in iaf["training"]] == ["WaveNetTeacher", "IAFStudent", "IAFStudent"]
    assert all(run["batch_size"] == 2 and run["steps"] == 1 for run in iaf["training"])
    assert metrics[("iaf", "speedup")] == pytest.approx(
        metrics[("iaf", "teacher_rtf")] / metrics[("iaf", "student_rtf")]
    )
    # mlpg: the banded solver agrees with the dense reference the benchmark times it against
    mlpg = benchmarks["mlpg"]["result"]
    assert mlpg["windows"] == 3
    assert max(mlpg["max_diff_y"], mlpg["max_diff_means"], mlpg["max_diff_variances"]) < 1e-4


def test_table_rebuilt_from_the_json_lists_every_metric(quick_json):
    suite = SuiteResult(quick=True, machine=quick_json["machine"])
    for name, entry in quick_json["benchmarks"].items():
        suite.results[name] = result_from_dict(name, entry["result"])
    lines = suite.table_lines()
    assert lines[0].startswith("QUICK MODE") and "NOT comparable" in lines[0]
    header = lines[2].split()
    assert header == ["benchmark", "metric", "value", "unit", "target", "ok"]
    for metric in quick_json["metrics"]:
        row = next(line for line in lines if f"  {metric['label']}  " in line)
        assert row.startswith(metric["benchmark"]) and format_value(metric["value"]) in row
        assert row.rstrip().endswith("n/a" if metric["target"] else "-")
    for name in BENCHMARKS:
        assert f"  {name}: {quick_json['benchmarks'][name]['summary_line']}" in lines


# ------------------------------------------------------------------------------------------ the command line
def test_only_filters_table_mode_prints_every_row_and_failures_exit_1(tmp_path):
    # mlpg runs; features fails on a folder without wav/ (and lpcnet, iaf are filtered out)
    proc = _bench("--quick", "--only", "mlpg,features", "--root", str(tmp_path))
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("QUICK MODE")
    assert lines[2].split() == ["benchmark", "metric", "value", "unit", "target", "ok"]
    rows = [line for line in lines if re.match(r"^(features|lpcnet|iaf|mlpg)\s{2,}", line)]
    assert [row.split()[0] for row in rows] == ["mlpg"] * len(EXPECTED_METRICS["mlpg"]) + ["features"]
    labels = [
        "MLPG banded forward+backward",
        "MLPG dense solve forward+backward",
        "MLPG banded vs dense",
        "MLPG benchmark peak RSS",
    ]
    for row, label in zip(rows, labels, strict=False):
        assert label in row and re.search(r"\s\d[\d,]*\.?\d*\s", row)
    assert "FAILED: CorpusError" in rows[-1] and "not an ARCTIC-layout corpus" in rows[-1]
    assert re.fullmatch(r"  mlpg: " + LAST_LINES["mlpg"], lines[-1])
    assert "running features" in proc.stderr and "running mlpg" in proc.stderr
    assert "lpcnet" not in proc.stderr and "iaf" not in proc.stderr


def test_json_document_lists_errors():
    suite = SuiteResult(quick=False, machine={"cpus": 2}, errors={"lpcnet": "RuntimeError: boom"})
    document = json.loads(json.dumps(suite.to_json()))
    assert document["errors"] == {"lpcnet": "RuntimeError: boom"} and document["metrics"] == []
    assert document["quick"] is False and "targets apply" in document["note"]
    failed = [line for line in suite.table_lines() if "FAILED: RuntimeError: boom" in line]
    assert len(failed) == 1 and failed[0].startswith("lpcnet")


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["--only", "lpcnet,bogus"],
            "--only: unknown benchmark 'bogus' (choose from features, lpcnet, iaf, mlpg)",
        ),
        (["--only", ""], "--only: unknown benchmark an empty name"),
        (["--threads", "0"], "argument --threads: expected a positive integer, got 0"),
        (["--quick", "--root", "/nonexistent/corpus"], "--root: /nonexistent/corpus is not a directory"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_usage_errors_are_one_line_with_status_2(args, message):
    proc = _bench(*args, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("vocoder-bench: error: ") and message in proc.stderr


def test_failed_worker_is_one_line_benchmark_error():
    with pytest.raises(BenchmarkError) as info:
        run_worker("no-such-worker", {})
    assert str(info.value) == "no-such-worker: vocoder-bench: error: unknown worker 'no-such-worker'"


def test_console_script_is_registered():
    scripts = {ep.name: ep.value for ep in metadata.entry_points(group="console_scripts")}
    assert scripts["vocoder-bench"] == "vocoder.cli.bench:main"


@pytest.mark.parametrize(
    "text,expected",
    [
        (None, list(BENCHMARKS)),
        ("mlpg,features", ["features", "mlpg"]),
        ("iaf, iaf", ["iaf"]),
        (" lpcnet", ["lpcnet"]),
    ],
)
def test_parse_only_keeps_run_order(text, expected):
    assert parse_only(text) == expected


# ------------------------------------------------------------------------------------------ scripts
@pytest.mark.parametrize(
    "script,args,n_lines",
    [
        ("bench_features.py", ["--quick", "--root", str(KATHLEEN)], 11),
        ("bench_lpcnet.py", ["--quick"], 11),
        ("bench_iaf.py", ["--quick"], 13),
        ("bench_mlpg.py", ["--quick"], 7),
    ],
)
def test_script_wrappers_keep_their_last_line(script, args, n_lines, monkeypatch, capsys):
    # in this process (torch is loaded once for all four); the iaf script sets OMP_WAIT_POLICY
    monkeypatch.setenv("OMP_WAIT_POLICY", os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    monkeypatch.setattr(sys, "argv", [script, *args])
    affinity = os.sched_getaffinity(0)
    try:
        runpy.run_path(str(REPO / "scripts" / script), run_name="__main__")
    except SystemExit as exc:
        assert exc.code in (0, None)
    assert os.sched_getaffinity(0) == affinity  # the LPCNet synthesis pins one core and gives it back
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == n_lines
    name = script.removeprefix("bench_").removesuffix(".py")
    assert re.fullmatch(LAST_LINES[name], lines[-1]), lines[-1]


# ------------------------------------------------------------------------------------------ exact formats
def test_features_lines_are_the_scripts_format():
    result = FeaturesResult(
        root="/c",
        workers=2,
        limit=None,
        utterances=12,
        skipped=1,
        audio_seconds=600.0,
        wall_seconds=4.0,
        cache_mb=12.34,
        parent_rss_mb=300.4,
        worker_rss_mb=200.2,
    )
    assert result.lines() == [
        "corpus                   /c",
        "utterances               12 (1 skipped)",
        "audio                    10.00 min",
        "workers                  2",
        "wall                     4.00 s",
        "speed                    150.0x real time",
        "cache size               12.3 MB",
        "peak RSS parent          300 MB",
        "peak RSS largest worker  200 MB",
        "peak RSS total (bound)   701 MB",
        "features_xrt=150.00 peak_rss_mb=700.8",
    ]
    metrics = {m.key: m for m in result.metrics()}
    assert metrics["features_xrt"].ok(quick=False) is True and metrics["peak_rss_mb"].ok(quick=False) is True
    assert metrics["features_xrt"].ok(quick=True) is None


def test_lpcnet_lines_are_the_scripts_format():
    synthesis = LPCNetSynthesisResult(
        core=0,
        density=0.1,
        density_update=0.05,
        density_reset=0.05,
        density_candidate=0.2,
        seconds=2.0,
        fast_rtf=0.1,
        fast_cpu_rtf=0.09,
        batch=4,
        fast_batch_rtf=0.07,
        torch_seconds=0.1,
        torch_rtf=7.5,
        torch_cpu_rtf=7.0,
        peak_rss_mb=400.0,
    )
    training = LPCNetTrainingResult(samples_per_s=29400.0, peak_rss_mb=1900.0, step_s=2.61, step_cpu_s=5.2)
    result = LPCNetResult(LPCNetSettings(), synthesis, training, load_before=1.0, load_after=1.5, cpu_count=2)
    assert result.lines() == [
        "machine load average (1 min) before / after   1.00 / 1.50 on 2 CPUs",
        "GRU_A block density (reset/update/candidate)  0.050 / 0.050 / 0.200 (all 0.100)",
        "fast RTF, 1 utterance, 1 core (wall)          0.1000  (2.00 s audio)",
        "fast RTF, 1 utterance, 1 core (CPU time)      0.0900",
        "fast RTF per utterance, batch 4 (wall)        0.0700",
        "torch loop RTF (wall, extrapolated)           7.500  (timed on 0.10 s)",
        "fast vs torch speed-up                        75.0x",
        "training samples/s (B=32 x 2400, 2 threads)   29400  (median step 2.61 s)",
        "training CPU time per step (all threads)      5.20 s",
        "training peak RSS (fresh process)             1900 MB",
        "fast_rtf=0.1000 torch_rtf=7.5000 train_samples_per_s=29400.0 train_peak_rss_mb=1900.0",
    ]
    oks = {m.key: m.ok(quick=False) for m in result.metrics()}
    assert oks["fast_rtf"] is True and oks["speedup"] is True and oks["train_samples_per_s"] is True
    assert oks["train_peak_rss_mb"] is True and oks["torch_rtf"] is None
    assert LPCNetResult.from_dict(result.to_dict()) == result


def test_iaf_lines_are_the_scripts_format():
    rows = [
        TimingRow("IAF student eager, 2 thr", 3.0, [0.9, 0.6, 0.75], [1.2, 1.0, 1.1]),
        TimingRow("IAF student TorchScript, 2 thr", 3.0, [0.5], [0.9]),
        TimingRow("IAF student eager, 1 thr", 3.0, [0.8], [0.8]),
        TimingRow("WaveNet teacher, 0.10 s, 2 thr", 0.1, [2.0], [3.0]),
        TimingRow("WaveNet teacher, 0.10 s, 1 thr", 0.1, [1.6], [1.6]),
    ]
    result = IAFSynthesisResult(
        utterance="u.wav",
        seconds=3.0,
        segment_seconds=0.1,
        threads=2,
        repeats=3,
        teacher_frames=10,
        teacher_repeats=1,
        chunk_frames=8,
        torch_version="2.13.0",
        omp_wait_policy="PASSIVE",
        rows=rows,
        student_config="S",
        teacher_config="T",
        teacher_receptive_field=1531,
        peak_rss_mb=500.0,
    )
    assert result.lines() == [
        "utterance: u.wav, 3.00 s; torch 2.13.0; student block 8 frames; 3 student / 1 teacher repeats; "
        "OMP_WAIT_POLICY=PASSIVE",
        "model                                audio s   best s  median s  RTF best RTF median  CPU-RTF",
        "IAF student eager, 2 thr                3.00    0.600     0.750    0.2000     0.2500   0.3333",
        "IAF student TorchScript, 2 thr          3.00    0.500     0.500    0.1667     0.1667   0.3000",
        "IAF student eager, 1 thr                3.00    0.800     0.800    0.2667     0.2667   0.2667",
        "WaveNet teacher, 0.10 s, 2 thr          0.10    2.000     2.000   20.0000    20.0000  30.0000",
        "WaveNet teacher, 0.10 s, 1 thr          0.10    1.600     1.600   16.0000    16.0000  16.0000",
        "student: S",
        "teacher: T, receptive field 1531 samples",
        "teacher timed on the first 10 frames (0.10 s) and extrapolated: per-sample cost is "
        "position-independent, so the whole 3.00 s utterance would take ~60.0 s",
        "student speed-up over teacher: 100x at 2 threads, 60x at 1 thread "
        "(targets: student RTF <= 0.15, >= 20x)",
        "student_rtf=0.2000 teacher_rtf=20.0000",
    ]
    oks = {m.key: m.ok(quick=False) for m in result.metrics()}
    assert oks["student_rtf"] is False and oks["speedup"] is True


def test_mlpg_lines_are_the_scripts_format():
    result = MLPGResult(
        settings=MLPGSettings(),
        windows=3,
        banded_forward_ms=400.0,
        banded_backward_ms=256.4,
        banded_ms=656.432,
        dense_forward_ms=100000.0,
        dense_backward_ms=100137.2,
        dense_ms=200137.152,
        max_diff_y=1e-6,
        max_diff_means=2e-6,
        max_diff_variances=3e-6,
        peak_rss_mb=900.0,
    )
    assert result.lines() == [
        "MLPG forward+backward: B=8 T=2000 static_dim=60 windows=3 float32 CPU threads=2; "
        "median of 5 banded / 1 dense runs",
        "implementation                forward ms  backward ms    total ms",
        "banded Cholesky (mlpg)             400.0        256.4       656.4",
        "dense torch.linalg.solve        100000.0     100137.2    200137.2",
        "speed-up: 304.9x",
        "max |banded - dense|: y 1.00e-06, d/dmeans 2.00e-06, d/dvariances 3.00e-06",
        "mlpg_ms=656.432 dense_ms=200137.152",
    ]
    assert MLPGResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


@pytest.mark.parametrize(
    "target,value,met",
    [
        (Target("<=", 0.15), 0.15, True),
        (Target("<=", 0.15), 0.1500001, False),
        (Target(">=", 20.0), 20.0, True),
        (Target(">=", 20.0), 19.99, False),
        (Target(">=", 20.0), math.nan, False),
    ],
)
def test_target_boundaries(target, value, met):
    assert target.met(value) is met
    assert Metric("b", "k", "l", value, "x", target).ok(quick=False) is met


def test_target_rejects_unknown_operator_and_formats_values():
    with pytest.raises(ValueError):
        Target("<", 1.0)
    assert str(Target(">=", 22000.0)) == ">= 22,000" and str(Target("<=", 2.6 * 1024)) == "<= 2,662.4"
    assert [format_value(v) for v in (29400.4, 148.25, 3.14159, 0.012345)] == [
        "29,400",
        "148.2",
        "3.14",
        "0.0123",
    ]
