"""Where a benchmark ran: CPU, vector ISA, BLAS, threads — and the report that goes with its figures.

A speed figure means little without the machine it came from, and nothing at all when other
processes shared the cores. So every benchmark reports:

* :func:`describe_machine` — the CPU model, the widest vector ISA in use (``avx2`` / ``avx512`` /
  ``amx``: what ``/proc/cpuinfo`` offers, capped per library by what it dispatches to and by the
  ``ATEN_CPU_CAPABILITY`` / ``MKL_ENABLE_INSTRUCTIONS`` / ``ONEDNN_MAX_CPU_ISA`` / ``NUMBA_CPU_NAME``
  limits), torch's BLAS and oneDNN versions, numpy's BLAS (via threadpoolctl), numba's target CPU and
  the thread counts;
* the load during the run (:mod:`vocoder.bench._load`) and the machine's own GEMM rate measured in the
  same run (:mod:`vocoder.bench._gemm`).

:class:`MachineReport` bundles the three for a result object: ``lines()`` for the scripts' tables,
``summary_suffix()`` (`` cpu=<model> isa=<isa> untrusted=<0|1>``) for their last ``key=value`` line.
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from vocoder.bench._gemm import GemmRate, gemm_lines, measure_gemm_reference
from vocoder.bench._load import LoadReport, MachineProbe

#: vector ISA levels, narrowest first (``default``: SSE-class x86-64, or not x86)
ISA_LEVELS = ("default", "avx2", "avx512", "amx")


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




def worker(params: dict[str, Any]) -> dict[str, Any]:
    """``vocoder-bench`` worker ``machine``: :func:`describe_machine` and :func:`measure_gemm_reference`.

    Args:
        params: ``quick`` (bool) and ``threads`` (int or None).
    """
    rates = measure_gemm_reference(bool(params.get("quick")))
    return {"description": describe_machine(params.get("threads")), "gemm": [asdict(rate) for rate in rates]}
