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
    GEMM_SHAPES,
    FeaturesResult,
    GemmRate,
    IAFSettings,
    IAFSynthesisResult,
    LoadReport,
    LPCNetResult,
    LPCNetSettings,
    LPCNetSynthesisResult,
    LPCNetTrainingResult,
    MachineReport,
    Metric,
    MLPGResult,
    MLPGSettings,
    SuiteResult,
    Target,
    TimingRow,
    best_gemm_gflops,
    cpu_wall_warning,
    effective_isa,
    format_value,
    gemm_fraction,
    gemm_rate,
    gemm_reference,
    isa_from_flags,
    load_warnings,
    parse_only,
    run_worker,
)
from vocoder.bench._common import BenchmarkError
from vocoder.bench._gemm import gemm_lines
from vocoder.bench._load import LoadSample, busy_seconds
from vocoder.bench._machine import (
    ISA_LEVELS,
    cpu_flags,
    cpu_model,
    isa_by_library,
    parse_torch_config,
    summary_fields,
)
from vocoder.bench._suite import result_from_dict

REPO = Path(__file__).resolve().parents[1]
KATHLEEN = REPO / "vocoder" / "data" / "sample" / "kathleen"
ENV = dict(os.environ, OMP_NUM_THREADS="1")

EXPECTED_METRICS = {
    "features": ["features_xrt", "features_xrt_per_worker", "lpcnet_features_xrt", "peak_rss_mb"],
    "lpcnet": [
        "fast_rtf",
        "fast_batch_rtf",
        "torch_rtf",
        "speedup",
        "int8_rtf",
        "int8_vs_torch",
        "int8_16x4_rtf",
        "int8_tree_rtf",
        "fast_tree_rtf",
        "stream_rtf",
        "stream_first_audio_ms",
        "synth_peak_rss_mb",
        "train_samples_per_s",
        "train_sparse_speedup",
        "train_gemm_fraction",
        "train_peak_rss_mb",
    ],
    "iaf": [
        "student_rtf",
        "student_gemm_fraction",
        "student_script_rtf",
        "student_rtf_1thr",
        "teacher_rtf",
        "teacher_rtf_1thr",
        "speedup",
        "student_onnx_rtf",
        "stream_rtf",
        "stream_first_audio_ms",
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
#: what every last line ends with: where it ran, and whether the load makes its figures untrustworthy
MACHINE_FIELDS = r" cpu=\S+ isa=(?:default|avx2|avx512|amx) untrusted=[01]"
LAST_LINES = {
    "features": r"features_xrt=\d+\.\d{2} features_xrt_per_worker=\d+\.\d{2} lpcnet_features_xrt=\d+\.\d{2} "
    r"peak_rss_mb=\d+\.\d"
    + MACHINE_FIELDS,
    "lpcnet": r"fast_rtf=\d+\.\d{4} torch_rtf=\d+\.\d{4} int8_rtf=\d+\.\d{4} "
    r"fast_vs_torch=\d+\.\d int8_vs_torch=\d+\.\d int8_16x4_rtf=\d+\.\d{4} int8_16x4_vs_torch=\d+\.\d "
    r"train_samples_per_s=\d+\.\d train_sparse_samples_per_s=\d+\.\d train_sparse_speedup=\d+\.\d\d "
    r"train_gemm_fraction=\d+\.\d\d train_peak_rss_mb=\d+\.\d "
    r"stream_int8_rtf=\d+\.\d{4} stream_first_audio_ms=\d+\.\d\d stream_rtf=\d+\.\d{4} "
    r"int8_tree_rtf=\d+\.\d{4} fast_tree_rtf=\d+\.\d{4}" + MACHINE_FIELDS,
    "iaf": r"student_rtf=\d+\.\d{4} student_onnx_rtf=\d+\.\d{4} student_gemm_fraction=\d+\.\d\d "
    r"teacher_rtf=\d+\.\d{4} stream_first_audio_ms=\d+\.\d\d stream_rtf=\d+\.\d{4}" + MACHINE_FIELDS,
    "mlpg": r"mlpg_ms=\d+\.\d{3} dense_ms=\d+\.\d{3}" + MACHINE_FIELDS,
}
#: lines of a script's machine report besides its WARNING lines: machine, libraries, load, GEMM table
MACHINE_LINES = 3 + 1 + 2 * len(GEMM_SHAPES)


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
    """The numeric ``key=value`` figures of a last line (``cpu=`` and ``isa=`` left out)."""
    pairs = (item.split("=", 1) for item in line.split())
    return {key: float(value) for key, value in pairs if key not in ("cpu", "isa")}


@pytest.fixture(scope="module")
def quick_json() -> dict:
    """One whole quick run of the suite (every benchmark), as its --json document."""
    # generous: on a 2-core machine shared with other jobs the quick suite has taken 6.5 min
    proc = _bench("--quick", "--json", "--root", str(KATHLEEN), timeout=900)
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


def test_quick_json_describes_the_machine_and_its_gemm_rates(quick_json):
    machine = quick_json["machine"]
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    assert machine["cpu"] == cpu_model(cpuinfo)
    assert machine["cpu_isa"] == (isa_from_flags(cpu_flags(cpuinfo)) if cpuinfo else "default")
    assert machine["isa"] in ISA_LEVELS and machine["torch_capability"]
    assert ISA_LEVELS.index(machine["isa"]) <= ISA_LEVELS.index(machine["cpu_isa"])
    assert machine["blas"] and machine["numpy_blas"] and machine["threads"] >= 1
    assert set(machine["isa_by_library"]) == {"aten", "mkl", "onednn", "numba"}
    rates = quick_json["gemm_reference"]
    assert {(r["backend"], r["name"], r["threads"]) for r in rates} == {
        (backend, name, threads)
        for backend in ("torch", "numpy")
        for name in GEMM_SHAPES
        for threads in (1, 2)
    }
    for rate in rates:
        assert (rate["m"], rate["k"], rate["n"]) == GEMM_SHAPES[rate["name"]]
        assert math.isfinite(rate["gflops"]) and rate["gflops"] > 0
    # every benchmark says where it ran, in its result and at the end of its last line
    cpu_field = "cpu=" + "_".join(machine["cpu"].split())
    for name, entry in quick_json["benchmarks"].items():
        result = entry["result"]
        report = (result["synthesis"] if name == "iaf" else result)["machine"]
        assert report["description"]["cpu"] == machine["cpu"] and report["load"]["wall_s"] > 0
        assert f" {cpu_field} isa={report['description']['isa']} " in entry["summary_line"]
        warnings = MachineReport.from_dict(report).warnings
        assert entry["summary_line"].endswith(f" untrusted={int(bool(warnings))}")
        assert quick_json["warnings"].get(name, []) == warnings


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
    assert lines[1].startswith("machine: ")
    assert lines[2].startswith(f"cpu: {quick_json['machine']['cpu']}, isa ")
    header = lines[3].split()
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
    proc = _bench("--quick", "--only", "mlpg,features", "--root", str(tmp_path), timeout=900)  # loaded CI
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("QUICK MODE") and lines[2].startswith("cpu: ")
    assert lines[3].split() == ["benchmark", "metric", "value", "unit", "target", "ok"]
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
    assert "FAILED: CorpusError" in rows[-1] and "no corpus found" in rows[-1]
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
    assert scripts["vocoder-bench"] == "vocoder.bench:main"


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
        ("bench_features.py", ["--quick", "--root", str(KATHLEEN)], 13),
        ("bench_lpcnet.py", ["--quick"], 20),
        ("bench_iaf.py", ["--quick"], 17),
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
    warnings = [line for line in lines if line.startswith("WARNING: ")]
    assert len(lines) - len(warnings) == n_lines + MACHINE_LINES
    name = script.removeprefix("bench_").removesuffix(".py")
    assert re.fullmatch(LAST_LINES[name], lines[-1]), lines[-1]
    assert lines[-1].endswith(f"untrusted={int(bool(warnings))}")
    machine = next(i for i, line in enumerate(lines) if line.startswith("machine: "))
    assert lines[machine + 1].startswith("libraries: torch ") and lines[machine + 2].startswith("load: ")
    assert lines[machine + 3].startswith("float32 GEMM reference, GFLOP/s")


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
        "speed                    150.0x real time (75.0x per worker)",
        "cache size               12.3 MB",
        "peak RSS parent          300 MB",
        "peak RSS largest worker  200 MB",
        "peak RSS total (bound)   701 MB",
        "features_xrt=150.00 features_xrt_per_worker=75.00 peak_rss_mb=700.8",
    ]
    metrics = {m.key: m for m in result.metrics()}
    assert metrics["features_xrt"].ok(quick=False) is True and metrics["peak_rss_mb"].ok(quick=False) is True
    assert metrics["features_xrt"].ok(quick=True) is None
    # with the one-thread stage profile: two more rows and lpcnet_features_xrt on the last line
    result.stage_seconds = {"load": 0.5, "compute_features": 3.0, "lpcnet_features": 2.0, "serialize": 0.5}
    result.stage_audio_seconds = 300.0
    assert result.lines()[-3:] == [
        "profile, 1 thread        75.0x real time over 5.00 min: load 12 %, LPCNet features 50 %, log-mel 25 %, "
        "npz 12 %",
        "LPCNet features alone    150.0x real time (1 thread)",
        "features_xrt=150.00 features_xrt_per_worker=75.00 lpcnet_features_xrt=150.00 peak_rss_mb=700.8",
    ]
    assert {m.key: m.value for m in result.metrics()}["lpcnet_features_xrt"] == 150.0


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
        int8_rtf=0.05,
        int8_cpu_rtf=0.045,
        int8_product="avx512vnni",
        int8_16x4_rtf=0.04,
        int8_tree_rtf=0.032,
        fast_tree_rtf=0.08,
        stream_first_audio_ms=1.5,
        stream_rtf=0.12,
        stream_int8_rtf=0.06,
        stream_delay_ms=20.0,
    )
    training = LPCNetTrainingResult(samples_per_s=29400.0, peak_rss_mb=1900.0, step_s=2.61, step_cpu_s=5.2,
                                    sparse_samples_per_s=88200.0, sparse_step_s=0.87, sparse_density=0.1,
                                    step_gflop=216.0, gemm_gflops=120.0)
    result = LPCNetResult(LPCNetSettings(), synthesis, training, load_before=1.0, load_after=1.5, cpu_count=2)
    assert result.lines() == [
        "machine load average (1 min) before / after   1.00 / 1.50 on 2 CPUs",
        "GRU_A block density (reset/update/candidate)  0.050 / 0.050 / 0.200 (all 0.100)",
        "fast RTF, 1 utterance, 1 core (wall)          0.1000  (2.00 s audio)",
        "fast RTF, 1 utterance, 1 core (CPU time)      0.0900",
        "fast RTF per utterance, batch 4 (wall)        0.0700",
        "torch loop RTF (wall, extrapolated)           7.500  (timed on 0.10 s)",
        "fast vs torch speed-up                        75.0x",
        "int8 RTF, 1 utterance, 1 core (wall)          0.0500  (avx512vnni int8 product)",
        "int8 RTF, 1 utterance, 1 core (CPU time)      0.0450",
        "int8 vs torch speed-up                        150.0x",
        "int8 RTF, GRU_A in 16x4 blocks (wall)         0.0400  (187.5x the torch loop)",
        "int8 / fast RTF, 16x4, tree head (wall)       0.0320 / 0.0800  "
        "(int8: 1.25x the softmax head's speed)",
        "stream RTF, 1 frame/push, fast / int8 (wall)  0.1200 / 0.0600  (1.20x / 1.20x offline)",
        "stream time to first audio (fast, wall)       1.50 ms  (+ the stream's delay of 20 ms of frames)",
        "training samples/s (B=32 x 2400, 2 threads)   29400  (median step 2.61 s)",
        "training CPU time per step (all threads)      5.20 s",
        "training samples/s at GRU_A density 0.100     88200  (median step 0.87 s; 3.00x the dense phase)",
        "training GFLOP/s (dense) vs GEMM reference    82.8 of 120.0 (0.69; 216 GFLOP per step)",
        "training peak RSS (fresh process)             1900 MB",
        "fast_rtf=0.1000 torch_rtf=7.5000 int8_rtf=0.0500 fast_vs_torch=75.0 int8_vs_torch=150.0 "
        "int8_16x4_rtf=0.0400 int8_16x4_vs_torch=187.5 "
        "train_samples_per_s=29400.0 train_sparse_samples_per_s=88200.0 train_sparse_speedup=3.00 "
        "train_gemm_fraction=0.69 train_peak_rss_mb=1900.0 "
        "stream_int8_rtf=0.0600 stream_first_audio_ms=1.50 stream_rtf=0.1200 "
        "int8_tree_rtf=0.0320 fast_tree_rtf=0.0800",
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
        TimingRow("IAF student stream, 2 thr", 3.0, [0.9], [1.5]),
        TimingRow("IAF student onnxruntime, 2 thr", 3.0, [0.45], [0.9]),
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
        student_gflop_per_second=27.0,
        gemm_gflops=180.0,
        stream_first_audio_ms=4.25,
        stream_delay_ms=30.0,
        onnxruntime_version="1.32.0",
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
        "IAF student stream, 2 thr               3.00    0.900     0.900    0.3000     0.3000   0.5000",
        "IAF student onnxruntime, 2 thr          3.00    0.450     0.450    0.1500     0.1500   0.3000",
        "student: S",
        "teacher: T, receptive field 1531 samples",
        "teacher timed on the first 10 frames (0.10 s) and extrapolated: per-sample cost is "
        "position-independent, so the whole 3.00 s utterance would take ~60.0 s",
        "student speed-up over teacher: 100x at 2 threads, 60x at 1 thread "
        "(targets: student RTF <= 0.15, >= 20x)",
        "student stream: one frame per push, first audio 4.2 ms after creating it (+ its delay of 30 ms "
        "of frames), RTF 0.3000; onnxruntime 1.32.0 (the parallel pass over the whole utterance, 2 intra-op "
        "threads): RTF 0.1500 vs PyTorch 0.2000",
        "student arithmetic: 27.0 GFLOP per audio second, 135.0 GFLOP/s at 2 threads = 0.75 of the best "
        "GEMM rate (180.0 GFLOP/s)",
        "student_rtf=0.2000 student_onnx_rtf=0.1500 student_gemm_fraction=0.75 teacher_rtf=20.0000 "
        "stream_first_audio_ms=4.25 stream_rtf=0.3000",
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


# ------------------------------------------------------------------------------------------ machine report
ZEN3_FLAGS = "fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2 sha_ni vaes vpclmulqdq"
SAPPHIRE_FLAGS = "sse2 avx avx2 fma avx512f avx512dq avx512bw avx512vl avx512_bf16 amx_bf16 amx_tile amx_int8"
SKYLAKE_X_FLAGS = "sse2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl"


@pytest.mark.parametrize(
    "flags,isa",
    [
        (ZEN3_FLAGS, "avx2"),
        (SAPPHIRE_FLAGS, "amx"),
        (SKYLAKE_X_FLAGS, "avx512"),
        ("sse2 avx avx2 fma avx512f", "avx2"),  # AVX-512 F alone (Knights Landing): not torch's AVX512
        ("sse2 avx avx2", "default"),  # no FMA
        ("", "default"),
    ],
)
def test_isa_from_cpuinfo_flags(flags, isa):
    assert isa_from_flags(flags) == isa
    assert isa_from_flags(set(flags.split())) == isa


def test_cpu_model_and_summary_fields_from_cpuinfo():
    cpuinfo = (
        "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13 64-Core Processor\n"
        f"flags\t\t: {ZEN3_FLAGS}\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13 64-Core Processor\n"
    )
    assert cpu_model(cpuinfo) == "AMD EPYC 7B13 64-Core Processor"
    assert cpu_flags(cpuinfo) == frozenset(ZEN3_FLAGS.split())
    description = {"cpu": cpu_model(cpuinfo), "isa": isa_from_flags(cpu_flags(cpuinfo))}
    assert summary_fields(description) == "cpu=AMD_EPYC_7B13_64-Core_Processor isa=avx2"


@pytest.mark.parametrize(
    "cpu_isa,capability,environ,by_library,isa",
    [
        ("amx", "AVX512", {}, {"aten": "avx512", "mkl": "amx", "onednn": "amx", "numba": "avx512"}, "amx"),
        ("avx2", "AVX2", {}, {"aten": "avx2", "mkl": "avx2", "onednn": "avx2", "numba": "avx2"}, "avx2"),
        # ATEN_CPU_CAPABILITY alone leaves MKL and oneDNN at the CPU's width
        (
            "amx",
            "AVX2",
            {"ATEN_CPU_CAPABILITY": "avx2"},
            {"aten": "avx2", "mkl": "amx", "onednn": "amx", "numba": "avx512"},
            "amx",
        ),
        (
            "amx",
            "AVX2",
            {
                "ATEN_CPU_CAPABILITY": "avx2",
                "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                "ONEDNN_MAX_CPU_ISA": "AVX2",
                "NUMBA_CPU_NAME": "haswell",
            },
            {"aten": "avx2", "mkl": "avx2", "onednn": "avx2", "numba": "avx2"},
            "avx2",
        ),
        (
            "avx512",
            "DEFAULT",
            {
                "ATEN_CPU_CAPABILITY": "default",
                "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
                "ONEDNN_MAX_CPU_ISA": "SSE41",
                "NUMBA_CPU_NAME": "generic",
            },
            {"aten": "default", "mkl": "default", "onednn": "default", "numba": "default"},
            "default",
        ),
        # a limit above the CPU's width does not widen it
        (
            "avx2",
            "AVX2",
            {"MKL_ENABLE_INSTRUCTIONS": "AVX512", "NUMBA_CPU_NAME": "skylake-avx512"},
            {"aten": "avx2", "mkl": "avx2", "onednn": "avx2", "numba": "avx2"},
            "avx2",
        ),
    ],
)
def test_isa_in_use_follows_the_libraries_and_their_limits(cpu_isa, capability, environ, by_library, isa):
    assert isa_by_library(cpu_isa, capability, environ) == by_library
    assert effective_isa(cpu_isa, capability, environ) == isa


def test_torch_config_names_blas_and_onednn():
    text = (
        "PyTorch built with:\n  - Intel(R) oneAPI Math Kernel Library Version 2024.2-Product Build "
        "20240605 for Intel(R) 64 architecture applications\n"
        "  - Intel(R) MKL-DNN v3.12.0 (Git Hash 80afa71)\n"
        "  - Build settings: BLAS_INFO=mkl, BUILD_TYPE=Release, LAPACK_INFO=mkl, TORCH_VERSION=2.13.0\n"
    )
    assert parse_torch_config(text) == {"blas": "MKL 2024.2", "onednn": "oneDNN 3.12.0", "lapack": "mkl"}
    assert parse_torch_config("Build settings: BLAS_INFO=open, LAPACK_INFO=open")["blas"] == "open"
    assert parse_torch_config("") == {"blas": None, "onednn": None, "lapack": None}


def test_busy_seconds_from_proc_stat():
    stat = (
        "cpu  400 0 200 1000 10 0 0 0 0 0\n"
        "cpu0 100 50 100 500 5 1 2 3 0 0\n"  # busy: 100 + 50 + 100 + 1 + 2 + 3 = 256 ticks
        "cpu1 300 0 100 500 5 0 0 0 0 0\n"  # busy: 400 ticks
        "intr 12345\n"
    )
    assert busy_seconds(stat, [0], 100) == pytest.approx(2.56)
    assert busy_seconds(stat, [0, 1], 100) == pytest.approx(6.56)
    assert busy_seconds(stat, [0, 2], 100) is None


@pytest.mark.parametrize(
    "cpus,threads,before,after,other,flagged",
    [
        (2, 2, 0.1, 2.0, 0.5, False),  # 0.25 of each CPU used by others: tolerated
        (2, 2, 0.1, 2.0, 0.7, True),  # 0.35 per CPU
        (2, 1, 3.0, 3.0, 0.1, False),  # the measurement decides over a high (e.g. niced) load average
        (2, 2, 0.7, 2.0, None, True),  # unmeasured: the load average before the run
        (2, 2, 0.2, 2.5, None, False),  # after the run, less the benchmark's own 2 threads: 0.5
        (2, 2, 0.2, 2.7, None, True),
        (16, 1, 4.0, 4.5, None, False),  # 16 CPUs tolerate 4.8
    ],
)
def test_load_flagging(cpus, threads, before, after, other, flagged):
    reasons = load_warnings(cpus, threads, before, after, other)
    assert bool(reasons) is flagged
    if flagged:
        assert len(reasons) == 1 and "not to be trusted" in reasons[0] and "0.3 per CPU" in reasons[0]
    report = LoadReport(cpus, threads, before, after, 10.0, 10.0, other)
    assert report.warnings() == reasons


@pytest.mark.parametrize(
    "cpu,wall,threads,flagged",
    [
        (12.66, 11.82, 2, True),  # issue 11: a 2-thread training step that got one CPU
        (5.2, 2.61, 2, False),
        (0.95, 1.0, 1, False),
        (0.5, 1.0, 1, True),  # a single-thread figure that waited half of the time
        (3.0, 1.0, 2, True),  # more threads than it says
    ],
)
def test_cpu_wall_flagging(cpu, wall, threads, flagged):
    warning = cpu_wall_warning("figure", cpu, wall, threads)
    assert (warning is not None) is flagged
    if flagged:
        assert warning.startswith("figure: CPU time / wall time ") and f"{cpu / wall:.2f}" in warning


def test_load_report_between_two_samples():
    before = LoadSample(wall=100.0, own_cpu=5.0, busy=50.0, load1=0.5)
    after = LoadSample(wall=110.0, own_cpu=15.0, busy=66.0, load1=1.5)  # 16 busy s, 10 of them ours
    report = LoadReport.between(before, after, cpus=2, threads=1)
    assert (report.wall_s, report.own_cpu_s) == pytest.approx((10.0, 10.0))
    assert report.other_busy_cpus == pytest.approx(0.6) and (report.load_before, report.load_after) == (
        0.5,
        1.5,
    )
    assert report.warnings() == []  # 0.3 per CPU exactly
    unknown = LoadReport.between(before, LoadSample(110.0, 15.0, None, 1.5), cpus=2, threads=1)
    assert unknown.other_busy_cpus is None


def test_gemm_fraction_and_best_rate():
    rates = [
        GemmRate("torch", "a", 10, 10, 10, 1, 40.0),
        GemmRate("numpy", "a", 10, 10, 10, 1, 50.0),
        GemmRate("torch", "a", 10, 10, 10, 2, 80.0),
    ]
    assert rates[0].flops == 2000
    assert best_gemm_gflops(rates, 1) == 50.0 and best_gemm_gflops(rates, 1, "torch") == 40.0
    assert gemm_fraction(10e9, 1.0, rates, threads=1) == pytest.approx(0.2)
    assert gemm_fraction(10e9, 0.5, rates, threads=2, backend="torch") == pytest.approx(0.25)
    assert math.isnan(gemm_fraction(1e9, 1.0, rates, threads=4))
    lines = gemm_lines(rates)
    assert lines[0].split()[-4:] == ["1", "thr", "2", "thr"] and len(lines) == 3  # torch a, numpy a
    assert lines[1].startswith("torch a (10x10)·(10x10)") and lines[1].split()[-2:] == ["40.0", "80.0"]
    assert lines[2].split()[-2:] == ["50.0", "-"]


def test_gemm_reference_measures_every_backend_shape_and_thread_count():
    shapes = {"tiny": (8, 16, 4), "step": (4, 32, 96)}
    rates = gemm_reference(shapes, threads=(1, 2), min_seconds=0.001)
    assert [(r.backend, r.threads, r.name) for r in rates] == [
        (backend, threads, name) for backend in ("torch", "numpy") for threads in (1, 2) for name in shapes
    ]
    assert all((r.m, r.k, r.n) == shapes[r.name] and math.isfinite(r.gflops) and r.gflops > 0 for r in rates)
    with pytest.raises(ValueError, match="unknown GEMM backend"):
        gemm_rate(2, 2, 2, 1, backend="cublas")


def test_machine_report_round_trip_lines_and_suffix():
    description = {"cpu": "AMD EPYC 7B13 64-Core Processor", "isa": "avx2", "cpu_isa": "avx2", "threads": 2}
    report = MachineReport(
        description=description,
        load=LoadReport(2, 2, 0.1, 2.0, 10.0, 20.0, 0.9),
        gemm=[GemmRate("torch", "square_1024", 1024, 1024, 1024, 1, 60.0)],
        figure_warnings=["x: CPU time / wall time 1.07 on 2 thread(s)"],
    )
    assert report.summary_suffix() == " cpu=AMD_EPYC_7B13_64-Core_Processor isa=avx2 untrusted=1"
    assert len(report.warnings) == 2 and "0.90 of 2 CPUs" in report.warnings[0]
    lines = report.lines()
    assert lines[0].startswith("machine: AMD EPYC 7B13 64-Core Processor; isa avx2")
    assert lines[2].startswith(
        "load: average (1 min) 0.10 before / 2.00 after; other processes used 0.90 CPUs"
    )
    assert [line for line in lines if line.startswith("WARNING: ")] == [
        f"WARNING: {w}" for w in report.warnings
    ]
    assert MachineReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report
    quiet = MachineReport(description=description, load=LoadReport(2, 2, 0.1, 2.0, 10.0, 20.0, 0.1))
    assert quiet.summary_suffix().endswith(" untrusted=0") and quiet.warnings == []
    assert MachineReport().summary_suffix() == "" and MachineReport().lines() == []
    assert MachineReport.from_dict(None) == MachineReport()


def test_describe_machine_under_forced_isa_paths():
    # a fresh process, since torch reads ATEN_CPU_CAPABILITY when it loads
    code = "import json; from vocoder.bench import describe_machine; print(json.dumps(describe_machine(1)))"
    forced = {
        "ATEN_CPU_CAPABILITY": "default",
        "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
        "NUMBA_CPU_NAME": "generic",
    }
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**ENV, **forced}, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    description = json.loads(proc.stdout.strip().splitlines()[-1])
    assert description["torch_capability"] == "DEFAULT" and description["isa"] == "default"
    assert description["isa_limits"] == forced and description["numba_cpu"] == "generic"
    assert description["threads"] == 1 and description["cpus"] == len(os.sched_getaffinity(0))


def test_student_flop_count_includes_the_in_place_products():
    """The counter sees every product: the closed form of a WaveNet flow stack, per sample and layer,
    is 2·(kernel·R·G + G/2·R) (dilated conv, gate → residual), plus the small per-frame terms."""
    import torch

    from vocoder.bench._iaf import student_flops_per_audio_second
    from vocoder.data import FeatureSettings
    from vocoder.models import IAFStudent

    R, G, k, layers = 16, 32, 2, [3, 2]
    student = IAFStudent(n_mels=8, hop_length=40, flow_layers=layers, dilation_cycle=3, residual_channels=R,
                         gate_channels=G).eval()
    features = FeatureSettings(sample_rate=4000, hop_length=40, n_mels=8, n_fft=128, win_length=128, fmax=2000.0)
    mel = torch.randn(1, 8, 12)
    flops = student_flops_per_audio_second(student, mel, features, chunk_frames=4, frames=12)
    closed_form = 2 * (k * R * G + G // 2 * R) * sum(layers) * features.sample_rate
    assert closed_form <= flops <= 1.35 * closed_form
