"""Where a benchmark ran, and how far its figures can be trusted: CPU, vector ISA, BLAS, threads, load.

A speed figure means little without the machine it came from (the same LPCNet training step runs
29,400 samples/s on an AVX-512 Xeon and 14,500 on an AVX2 EPYC), and nothing at all when other
processes shared the cores. So every benchmark reports:

* :func:`describe_machine` — the CPU model, the widest vector ISA in use (``avx2`` / ``avx512`` /
  ``amx``: what ``/proc/cpuinfo`` offers, capped per library by what it dispatches to and by the
  ``ATEN_CPU_CAPABILITY`` / ``MKL_ENABLE_INSTRUCTIONS`` / ``ONEDNN_MAX_CPU_ISA`` / ``NUMBA_CPU_NAME``
  limits), torch's BLAS
  and oneDNN versions, numpy's BLAS (via threadpoolctl), numba's target CPU and the thread counts;
* :class:`MachineProbe` — the load average before and after, and the CPU time that *other* processes
  used on this process's CPUs during the run (``/proc/stat`` minus our own CPU time);
  :func:`load_warnings` and :func:`cpu_wall_warning` turn these into warnings (a figure taken while
  other processes kept more than :data:`LOAD_PER_CPU_LIMIT` of each CPU busy, or whose CPU time over
  wall time is far from its thread count, is flagged);
* :func:`gemm_reference` — the machine's own float32 GEMM rate (GFLOP/s) on shapes like the models'
  (:data:`GEMM_SHAPES`), for torch (MKL) and numpy (OpenBLAS), at 1 and 2 threads, measured in the same
  run; :func:`gemm_fraction` expresses a model's achieved GFLOP/s as a fraction of the best of them,
  a speed figure that carries over between CPUs.

:class:`MachineReport` bundles the three for a result object: ``lines()`` for the scripts' tables,
``summary_suffix()`` (`` cpu=<model> isa=<isa> untrusted=<0|1>``) for their last ``key=value`` line.
"""

from __future__ import annotations

import math
import os
import platform
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

#: other processes' CPU use above this fraction of each CPU makes a figure untrustworthy
LOAD_PER_CPU_LIMIT = 0.3
#: CPU time / wall time outside ``threads × (1 ± this)`` makes a figure untrustworthy
CPU_WALL_TOLERANCE = 0.25
#: vector ISA levels, narrowest first (``default``: SSE-class x86-64, or not x86)
ISA_LEVELS = ("default", "avx2", "avx512", "amx")
#: ``(m, k, n)`` of the reference GEMMs ``(m × k) · (k × n)``, float32, by name
GEMM_SHAPES: dict[str, tuple[int, int, int]] = {
    # LPCNet GRU_A 384: the recurrent product of one training time step at batch 32 (3 gates)
    "lpcnet_gru_a_step": (32, 384, 3 * 384),
    # LPCNet GRU_A 384: the input product over a block of B·T = 4096 samples (384 + 128 inputs)
    "lpcnet_gru_a_input": (4096, 512, 3 * 384),
    # IAF student: a 64 → 128 (gate) 1×1 convolution over 1,280 samples
    "iaf_conv": (1280, 64, 128),
    "square_1024": (1024, 1024, 1024),
}
#: the reference rates' thread counts
GEMM_THREADS = (1, 2)


# ------------------------------------------------------------------------------------------ CPU and ISA
def read_cpuinfo() -> str:
    """The text of ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def cpu_model(cpuinfo: str) -> str:
    """The CPU model named by the first ``model name`` line of ``cpuinfo`` (else the platform's)."""
    match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, flags=re.MULTILINE)
    if match:
        return " ".join(match.group(1).split())
    return platform.processor() or platform.machine() or "unknown"


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The feature flags of the first ``flags`` line of ``cpuinfo``."""
    match = re.search(r"^flags\s*:\s*(.*)$", cpuinfo, flags=re.MULTILINE)
    return frozenset(match.group(1).split()) if match else frozenset()


def isa_from_flags(flags: Iterable[str] | str) -> str:
    """The widest vector ISA level a CPU with these ``/proc/cpuinfo`` flags offers.

    Args:
        flags: the flags, as a set or as the space-separated text of the ``flags`` line.

    Returns:
        ``amx`` (AMX tiles besides AVX-512), ``avx512`` (AVX-512 F/BW/VL, what torch's AVX512
        kernels need), ``avx2`` (AVX2 and FMA) or ``default``.
    """
    present = set(flags.split()) if isinstance(flags, str) else set(flags)
    avx512 = {"avx512f", "avx512bw", "avx512vl"} <= present
    if avx512 and "amx_tile" in present:
        return "amx"
    if avx512:
        return "avx512"
    if {"avx2", "fma"} <= present:
        return "avx2"
    return "default"


def isa_from_torch_capability(capability: str | None) -> str | None:
    """The ISA level of ``torch.backends.cpu.get_cpu_capability()`` (None: unknown)."""
    if capability is None:
        return None
    text = capability.upper()
    if text.startswith("AVX512"):
        return "avx512"
    if text.startswith("AVX2"):
        return "avx2"
    return "default"


def _isa_limit(variable: str, value: str | None) -> str | None:
    """The ISA level a library's environment limit allows (None: no limit)."""
    if not value:
        return None
    text = value.strip().upper()
    if variable == "ATEN_CPU_CAPABILITY":
        return isa_from_torch_capability(text)
    if "AMX" in text:
        return "amx"
    if "AVX512" in text or "AVX10" in text:
        return "avx512"
    if "AVX2" in text:
        return "avx2"
    return "default"


ISA_LIMIT_VARIABLES = (
    "ATEN_CPU_CAPABILITY",
    "MKL_ENABLE_INSTRUCTIONS",
    "ONEDNN_MAX_CPU_ISA",
    "NUMBA_CPU_NAME",
)
#: LLVM CPU names (``NUMBA_CPU_NAME``) without AVX2, and with AVX2 but without AVX-512
_NUMBA_DEFAULT_CPUS = ("generic", "x86-64", "x86-64-v2", "nehalem", "westmere", "sandybridge", "ivybridge")
_NUMBA_AVX2_CPUS = ("haswell", "broadwell", "skylake", "x86-64-v3", "znver1", "znver2", "znver3", "alderlake")


def _numba_isa(name: str) -> str:
    name = name.strip().lower()
    if name in _NUMBA_DEFAULT_CPUS or name.startswith(("core2", "btver", "bdver", "k8")):
        return "default"
    if name in _NUMBA_AVX2_CPUS or name.startswith(("raptorlake", "meteorlake", "gracemont")):
        return "avx2"
    return "avx512"


def isa_by_library(
    cpu_isa: str, torch_capability: str | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The widest ISA each library may use: the CPU's, capped by the library and its environment limit.

    ``aten`` (torch's own kernels) follows ``torch.backends.cpu.get_cpu_capability()``, which tops out
    at AVX-512 and honours ``ATEN_CPU_CAPABILITY``; ``mkl`` (torch's GEMM) ``MKL_ENABLE_INSTRUCTIONS``;
    ``onednn`` (torch's convolutions, AMX where the CPU has it) ``ONEDNN_MAX_CPU_ISA``; ``numba`` (the
    LPCNet kernels, never AMX) ``NUMBA_CPU_NAME``.

    Args:
        cpu_isa: :func:`isa_from_flags` of the CPU.
        torch_capability: ``torch.backends.cpu.get_cpu_capability()`` (None: from ``ATEN_CPU_CAPABILITY``).
        environ: the environment (None: ``os.environ``).

    Returns:
        ``{"aten", "mkl", "onednn", "numba"} → level`` (levels of :data:`ISA_LEVELS`).
    """
    environ = os.environ if environ is None else environ
    top = ISA_LEVELS.index(cpu_isa)
    avx512 = ISA_LEVELS.index("avx512")

    def capped(*limits: str | None) -> str:
        level = top
        for limit in limits:
            if limit is not None:
                level = min(level, ISA_LEVELS.index(limit))
        return ISA_LEVELS[level]

    aten = isa_from_torch_capability(torch_capability)
    if aten is None:
        aten = _isa_limit("ATEN_CPU_CAPABILITY", environ.get("ATEN_CPU_CAPABILITY"))
    numba_name = environ.get("NUMBA_CPU_NAME")
    return {
        "aten": capped(aten, ISA_LEVELS[avx512]),
        "mkl": capped(_isa_limit("MKL_ENABLE_INSTRUCTIONS", environ.get("MKL_ENABLE_INSTRUCTIONS"))),
        "onednn": capped(_isa_limit("ONEDNN_MAX_CPU_ISA", environ.get("ONEDNN_MAX_CPU_ISA"))),
        "numba": capped(
            _numba_isa(numba_name) if numba_name and numba_name != "host" else None, ISA_LEVELS[avx512]
        ),
    }


def effective_isa(
    cpu_isa: str, torch_capability: str | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """The widest vector ISA the benchmarks may use: the widest of :func:`isa_by_library`.

    A forced-ISA run (``ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2
    NUMBA_CPU_NAME=haswell`` on an AVX-512 CPU) reports ``avx2``; forcing only some of the libraries
    leaves the others' level.

    Returns:
        One of :data:`ISA_LEVELS`.
    """
    levels = isa_by_library(cpu_isa, torch_capability, environ).values()
    return max(levels, key=ISA_LEVELS.index)


# ------------------------------------------------------------------------------------------ libraries
def parse_torch_config(text: str) -> dict[str, str | None]:
    """torch's BLAS and oneDNN from the text of ``torch.__config__.show()``.

    Returns:
        ``blas`` (e.g. ``MKL 2024.2``, or the ``BLAS_INFO`` name), ``onednn`` (e.g. ``oneDNN 3.12.0``)
        and ``lapack`` (``LAPACK_INFO``); None for what the text does not name.
    """
    blas_info = re.search(r"BLAS_INFO=([^,\s]+)", text)
    lapack_info = re.search(r"LAPACK_INFO=([^,\s]+)", text)
    mkl = re.search(r"Math Kernel Library Version ([0-9][0-9.]*)", text)
    onednn = re.search(r"MKL-DNN v([0-9][0-9.]*)", text) or re.search(r"oneDNN v([0-9][0-9.]*)", text)
    if mkl:
        blas = f"MKL {mkl.group(1)}"
    elif blas_info:
        blas = blas_info.group(1)
    else:
        blas = None
    return {
        "blas": blas,
        "onednn": f"oneDNN {onednn.group(1)}" if onednn else None,
        "lapack": lapack_info.group(1) if lapack_info else None,
    }


def numpy_blas() -> str:
    """numpy's BLAS as ``<library> <version> (<kernel architecture>)``, from threadpoolctl."""
    import numpy  # noqa: F401  (loads its BLAS, so that threadpoolctl sees it)

    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - a dependency of the package
        return "unknown"
    for pool in threadpool_info():
        if pool.get("user_api") != "blas" or "numpy" not in str(pool.get("filepath", "")):
            continue
        text = f"{pool.get('internal_api')} {pool.get('version')}"
        if pool.get("architecture"):
            text += f" ({pool['architecture']})"
        return text
    return "unknown"


def numba_cpu() -> str | None:
    """The CPU numba compiles for (``NUMBA_CPU_NAME`` if set, else the host's), None without numba."""
    if os.environ.get("NUMBA_CPU_NAME"):
        return os.environ["NUMBA_CPU_NAME"]
    try:
        import llvmlite.binding as llvm
    except ImportError:
        return None
    return llvm.get_host_cpu_name()


def describe_machine(threads: int | None = None) -> dict[str, Any]:
    """What a benchmark's figures depend on: CPU, ISA, libraries and thread counts (imports torch).

    Args:
        threads: the benchmark's own thread count (None: torch's current one).

    Returns:
        Plain JSON: ``cpu``, ``isa`` (:func:`effective_isa`), ``cpu_isa``, ``torch_capability``,
        ``isa_limits`` (the ISA variables that are set), ``blas`` (torch's), ``onednn``, ``numpy_blas``,
        ``numba_cpu``, ``threads``, ``torch_threads``, ``omp_num_threads``, ``cpus`` (usable by this
        process), ``cpu_count``, ``torch``, ``numpy``, ``python``.
    """
    import numpy
    import torch

    info = read_cpuinfo()
    cpu_isa = isa_from_flags(cpu_flags(info)) if info else "default"
    capability = torch.backends.cpu.get_cpu_capability()
    config = parse_torch_config(torch.__config__.show())
    return {
        "cpu": cpu_model(info),
        "isa": effective_isa(cpu_isa, capability),
        "cpu_isa": cpu_isa,
        "isa_by_library": isa_by_library(cpu_isa, capability),
        "torch_capability": capability,
        "isa_limits": {name: os.environ[name] for name in ISA_LIMIT_VARIABLES if os.environ.get(name)},
        "blas": config["blas"],
        "onednn": config["onednn"],
        "numpy_blas": numpy_blas(),
        "numba_cpu": numba_cpu(),
        "threads": int(threads) if threads is not None else torch.get_num_threads(),
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cpus": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def summary_fields(description: Mapping[str, Any]) -> str:
    """``cpu=<model, spaces as _> isa=<isa>`` for a script's last ``key=value`` line."""
    cpu = "_".join(str(description.get("cpu", "unknown")).split()).replace("=", "_")
    return f"cpu={cpu or 'unknown'} isa={description.get('isa', 'default')}"


# ------------------------------------------------------------------------------------------ machine load
def busy_seconds(stat: str, cpus: Iterable[int], ticks_per_second: float) -> float | None:
    """CPU seconds spent busy (not idle, not waiting for I/O) on ``cpus``, from ``/proc/stat`` text.

    Args:
        stat: the text of ``/proc/stat``.
        cpus: CPU numbers (the ``cpuN`` lines) to add up.
        ticks_per_second: ``os.sysconf("SC_CLK_TCK")``.

    Returns:
        The busy seconds since boot, or None when a CPU's line is missing.
    """
    lines = {}
    for line in stat.splitlines():
        parts = line.split()
        if parts and re.fullmatch(r"cpu\d+", parts[0]):
            lines[int(parts[0][3:])] = [int(value) for value in parts[1:]]
    total = 0
    for cpu in cpus:
        if cpu not in lines:
            return None
        values = lines[cpu]
        # user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
        busy = sum(values[:8]) - values[3] - (values[4] if len(values) > 4 else 0)
        total += busy
    return total / ticks_per_second


@dataclass(frozen=True)
class LoadSample:
    """One reading: wall clock, own CPU seconds (children included), busy seconds of our CPUs, load."""

    wall: float
    own_cpu: float
    busy: float | None
    load1: float


def sample_load() -> LoadSample:
    """Read the clocks, this process's CPU time (with waited-for children) and ``/proc/stat``."""
    times = os.times()
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            busy = busy_seconds(handle.read(), os.sched_getaffinity(0), os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError):
        busy = None
    return LoadSample(
        wall=time.perf_counter(),
        own_cpu=times.user + times.system + times.children_user + times.children_system,
        busy=busy,
        load1=os.getloadavg()[0],
    )


def load_warnings(
    cpus: int,
    threads: int,
    load_before: float,
    load_after: float,
    other_busy_cpus: float | None = None,
    limit: float = LOAD_PER_CPU_LIMIT,
) -> list[str]:
    """Why a figure taken under this load is not to be trusted (empty: it is).

    With a measurement of the CPU time other processes used on our CPUs during the run
    (``other_busy_cpus``, in CPUs: their CPU seconds over the wall time), that decides; without one,
    the 1-minute load average does: before the run, and after it less the benchmark's own threads.

    Args:
        cpus: CPUs this process may run on.
        threads: the benchmark's own threads.
        load_before: 1-minute load average before the run.
        load_after: 1-minute load average after the run.
        other_busy_cpus: other processes' CPU use during the run, in CPUs (None: not measured).
        limit: the tolerated use per CPU.

    Returns:
        One-line reasons.
    """
    allowed = limit * cpus
    if other_busy_cpus is not None:
        if other_busy_cpus > allowed:
            return [
                f"other processes kept {other_busy_cpus:.2f} of {cpus} CPUs busy during the run "
                f"(> {limit:g} per CPU): the figures are not to be trusted"
            ]
        return []
    background = max(load_before, load_after - threads)
    if background > allowed:
        return [
            f"load average {background:.2f} beyond the benchmark's own {threads} thread(s) on {cpus} CPUs "
            f"(> {limit:g} per CPU): the figures are not to be trusted"
        ]
    return []


def cpu_wall_warning(
    label: str, cpu_seconds: float, wall_seconds: float, threads: int, tolerance: float = CPU_WALL_TOLERANCE
) -> str | None:
    """A warning when a figure's CPU time over wall time is far from its thread count (None: it is not).

    A compute-bound run on ``threads`` threads keeps about ``threads`` CPUs busy; much less means its
    threads waited for CPUs other processes held, more means it ran more threads than it says.

    Args:
        label: what the figure is (starts the message).
        cpu_seconds: process CPU seconds of the timed work.
        wall_seconds: its wall-clock seconds.
        threads: the threads it should keep busy.
        tolerance: the accepted relative deviation.
    """
    if not (wall_seconds > 0 and math.isfinite(cpu_seconds)):
        return None
    ratio = cpu_seconds / wall_seconds
    if (1 - tolerance) * threads <= ratio <= (1 + tolerance) * threads:
        return None
    return (
        f"{label}: CPU time / wall time {ratio:.2f} on {threads} thread(s) "
        f"(outside {1 - tolerance:.2f}-{1 + tolerance:.2f} x threads): not to be trusted"
    )


@dataclass
class LoadReport:
    """The machine load around one benchmark run.

    Attributes:
        cpus: CPUs this process may run on.
        threads: the benchmark's own threads.
        load_before: 1-minute load average before.
        load_after: 1-minute load average after.
        wall_s: wall-clock seconds of the run.
        own_cpu_s: CPU seconds of this process and its waited-for children during the run.
        other_busy_cpus: CPU seconds other processes used on our CPUs over ``wall_s`` (None: unknown).
    """

    cpus: int
    threads: int
    load_before: float
    load_after: float
    wall_s: float = math.nan
    own_cpu_s: float = math.nan
    other_busy_cpus: float | None = None

    @classmethod
    def between(cls, before: LoadSample, after: LoadSample, cpus: int, threads: int) -> LoadReport:
        """The report of the run between two :func:`sample_load` readings."""
        wall = after.wall - before.wall
        own = after.own_cpu - before.own_cpu
        other = None
        if before.busy is not None and after.busy is not None and wall > 0:
            other = max(0.0, (after.busy - before.busy) - own) / wall
        return cls(cpus, threads, before.load1, after.load1, wall, own, other)

    def warnings(self) -> list[str]:
        """:func:`load_warnings` of this run."""
        return load_warnings(self.cpus, self.threads, self.load_before, self.load_after, self.other_busy_cpus)


class MachineProbe:
    """Context manager around a benchmark run: ``with MachineProbe(threads) as probe: ...``.

    After the block, ``probe.load`` is the :class:`LoadReport` of the run.
    """

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.load: LoadReport | None = None
        self._before: LoadSample | None = None

    def __enter__(self) -> MachineProbe:
        self._before = sample_load()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._before is not None
        cpus = len(os.sched_getaffinity(0))
        self.load = LoadReport.between(self._before, sample_load(), cpus, self.threads)


# ------------------------------------------------------------------------------------------ GEMM reference
@dataclass(frozen=True)
class GemmRate:
    """A measured float32 GEMM rate: ``(m × k) · (k × n)`` with ``backend`` on ``threads`` threads."""

    backend: str
    name: str
    m: int
    k: int
    n: int
    threads: int
    gflops: float

    @property
    def flops(self) -> int:
        """Floating-point operations of one product (``2·m·k·n``)."""
        return 2 * self.m * self.k * self.n


def _best_seconds(call: Callable[[], object], min_seconds: float) -> float:
    """Best seconds per call over a few timed chunks of about ``min_seconds / 4`` each."""
    call()  # warm-up: allocation, library initialization
    count, elapsed = 1, 0.0
    while True:
        start = time.perf_counter()
        for _ in range(count):
            call()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds / 4 or count >= 1 << 20:
            break
        count *= 2
    best = elapsed / count
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(count):
            call()
        best = min(best, (time.perf_counter() - start) / count)
    return best


def gemm_rate(
    m: int, k: int, n: int, threads: int, backend: str = "torch", min_seconds: float = 0.2
) -> float:
    """GFLOP/s of a float32 ``(m × k) · (k × n)`` product (best of a few timed chunks).

    Args:
        m, k, n: the sizes.
        threads: threads of the BLAS (torch intra-op threads, or numpy's BLAS threads via threadpoolctl);
            restored afterwards.
        backend: ``torch`` (``torch.mm``: MKL in the x86 wheels) or ``numpy`` (``numpy.matmul``: OpenBLAS
            in the wheels).
        min_seconds: about how long to time it.

    Raises:
        ValueError: an unknown backend.
    """
    flops = 2.0 * m * k * n
    if backend == "torch":
        import torch

        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            generator = torch.Generator().manual_seed(0)
            a = torch.randn(m, k, generator=generator)
            b = torch.randn(k, n, generator=generator)
            out = torch.empty(m, n)
            seconds = _best_seconds(lambda: torch.mm(a, b, out=out), min_seconds)
        finally:
            torch.set_num_threads(previous)
    elif backend == "numpy":
        import numpy as np
        from threadpoolctl import threadpool_limits

        rng = np.random.default_rng(0)
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        out = np.empty((m, n), np.float32)
        with threadpool_limits(limits=threads, user_api="blas"):
            seconds = _best_seconds(lambda: np.matmul(a, b, out=out), min_seconds)
    else:
        raise ValueError(f"unknown GEMM backend {backend!r} (choose torch or numpy)")
    return flops / seconds / 1e9


def gemm_reference(
    shapes: Mapping[str, tuple[int, int, int]] | None = None,
    threads: Sequence[int] = GEMM_THREADS,
    backends: Sequence[str] = ("torch", "numpy"),
    min_seconds: float = 0.2,
) -> list[GemmRate]:
    """The machine's float32 GEMM rates on shapes like the models', for each backend and thread count.

    Args:
        shapes: ``name → (m, k, n)`` (None: :data:`GEMM_SHAPES`).
        threads: thread counts to measure at.
        backends: ``torch`` and/or ``numpy``.
        min_seconds: about how long each rate is timed.

    Returns:
        One :class:`GemmRate` per backend, shape and thread count.
    """
    shapes = GEMM_SHAPES if shapes is None else shapes
    return [
        GemmRate(backend, name, m, k, n, count, gemm_rate(m, k, n, count, backend, min_seconds))
        for backend in backends
        for count in threads
        for name, (m, k, n) in shapes.items()
    ]


def best_gemm_gflops(rates: Iterable[GemmRate], threads: int, backend: str | None = None) -> float:
    """The best reference rate at ``threads`` threads (of ``backend``, or any); NaN without one."""
    values = [r.gflops for r in rates if r.threads == threads and (backend is None or r.backend == backend)]
    return max(values) if values else math.nan


def gemm_fraction(
    flops: float, seconds: float, rates: Iterable[GemmRate], threads: int, backend: str | None = None
) -> float:
    """A model's achieved GFLOP/s as a fraction of the machine's best reference GEMM rate.

    Args:
        flops: floating-point operations the model did (multiply and add counted apart).
        seconds: the wall-clock seconds it took.
        rates: :func:`gemm_reference` of the same run.
        threads: the model's threads (compared with the reference at the same count).
        backend: compare with this backend's rates only (None: the best of all).

    Returns:
        ``(flops / seconds) / best`` (NaN when there is no reference at ``threads``).
    """
    best = best_gemm_gflops(rates, threads, backend)
    if not (seconds > 0 and best > 0):
        return math.nan
    return flops / seconds / 1e9 / best


def gemm_lines(rates: Sequence[GemmRate]) -> list[str]:
    """The reference rates as a table: one row per backend and shape, one column per thread count."""
    if not rates:
        return []
    counts = sorted({r.threads for r in rates})
    by_key = {(r.backend, r.name, r.threads): r for r in rates}
    rows = list(dict.fromkeys((r.backend, r.name, r.m, r.k, r.n) for r in rates))
    head = f"{'float32 GEMM reference, GFLOP/s':<52}" + "".join(f"{f'{c} thr':>9}" for c in counts)
    out = [head]
    for backend, name, m, k, n in rows:
        label = f"{backend} {name} ({m}x{k})·({k}x{n})"
        cells = "".join(
            f"{by_key[(backend, name, c)].gflops:>9.1f}" if (backend, name, c) in by_key else f"{'-':>9}"
            for c in counts
        )
        out.append(f"{label:<52}{cells}")
    return out


# ------------------------------------------------------------------------------------------ the report
@dataclass
class MachineReport:
    """Machine description, load and GEMM reference of one benchmark run (see the module docstring).

    Attributes:
        description: :func:`describe_machine`.
        load: :class:`LoadReport` of the run (None: not measured).
        gemm: :func:`gemm_reference` of the same run (empty: not measured).
        figure_warnings: warnings about single figures (:func:`cpu_wall_warning`).
    """

    description: dict[str, Any] = field(default_factory=dict)
    load: LoadReport | None = None
    gemm: list[GemmRate] = field(default_factory=list)
    figure_warnings: list[str] = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        """Every reason not to trust the figures (load first, then single figures)."""
        return (self.load.warnings() if self.load is not None else []) + list(self.figure_warnings)

    def summary_suffix(self) -> str:
        """`` cpu=<model> isa=<isa> untrusted=<0|1>`` (empty without a description)."""
        if not self.description:
            return ""
        return f" {summary_fields(self.description)} untrusted={int(bool(self.warnings))}"

    def lines(self) -> list[str]:
        """The machine lines of a script's table: CPU and libraries, load, GEMM reference, warnings."""
        d = self.description
        out = []
        if d:
            limits = ", ".join(f"{k}={v}" for k, v in d.get("isa_limits", {}).items())
            out.append(
                f"machine: {d.get('cpu')}; isa {d.get('isa')} (CPU {d.get('cpu_isa')}, torch "
                f"{d.get('torch_capability')}{', ' + limits if limits else ''}); "
                f"numba cpu {d.get('numba_cpu')}"
            )
            out.append(
                f"libraries: torch {d.get('torch')} BLAS {d.get('blas')}, {d.get('onednn')}; numpy "
                f"{d.get('numpy')} BLAS {d.get('numpy_blas')}; threads {d.get('threads')} on "
                f"{d.get('cpus')} CPUs"
            )
        if self.load is not None:
            load = self.load
            other = "unknown" if load.other_busy_cpus is None else f"{load.other_busy_cpus:.2f} CPUs"
            out.append(
                f"load: average (1 min) {load.load_before:.2f} before / {load.load_after:.2f} after; other "
                f"processes used {other} during the run ({load.wall_s:.1f} s wall, "
                f"{load.own_cpu_s:.1f} s own CPU)"
            )
        out.extend(gemm_lines(self.gemm))
        out.extend(f"WARNING: {warning}" for warning in self.warnings)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (``warnings`` included for readers; ignored by :meth:`from_dict`)."""
        return {
            "description": dict(self.description),
            "load": asdict(self.load) if self.load is not None else None,
            "gemm": [asdict(rate) for rate in self.gemm],
            "figure_warnings": list(self.figure_warnings),
            "warnings": self.warnings,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> MachineReport:
        """Inverse of :meth:`to_dict` (None or empty: an empty report)."""
        if not data:
            return cls()
        return cls(
            description=dict(data.get("description") or {}),
            load=LoadReport(**data["load"]) if data.get("load") else None,
            gemm=[GemmRate(**rate) for rate in data.get("gemm") or []],
            figure_warnings=list(data.get("figure_warnings") or []),
        )


def machine_report(
    probe: MachineProbe, threads: int, figure_warnings: Iterable[str | None] = ()
) -> MachineReport:
    """The :class:`MachineReport` of a run timed under ``probe`` (description, load, figure warnings).

    Args:
        probe: the finished probe of the run.
        threads: the run's own threads.
        figure_warnings: :func:`cpu_wall_warning` results (None entries are dropped).
    """
    return MachineReport(
        description=describe_machine(threads),
        load=probe.load,
        figure_warnings=[warning for warning in figure_warnings if warning],
    )


#: seconds each reference rate is timed: full runs, and ``--quick`` smoke runs
GEMM_MIN_SECONDS = 0.2
GEMM_QUICK_MIN_SECONDS = 0.02


def measure_gemm_reference(quick: bool = False) -> list[GemmRate]:
    """:func:`gemm_reference` on :data:`GEMM_SHAPES` at 1 and 2 threads, torch and numpy (a few seconds;
    ``quick``: about a second, rates only indicative)."""
    return gemm_reference(min_seconds=GEMM_QUICK_MIN_SECONDS if quick else GEMM_MIN_SECONDS)


def worker(params: dict[str, Any]) -> dict[str, Any]:
    """``vocoder-bench`` worker ``machine``: :func:`describe_machine` and :func:`measure_gemm_reference`.

    Args:
        params: ``quick`` (bool) and ``threads`` (int or None).
    """
    rates = measure_gemm_reference(bool(params.get("quick")))
    return {"description": describe_machine(params.get("threads")), "gemm": [asdict(rate) for rate in rates]}
