"""Pieces shared by the benchmarks: metrics with targets, timing, peak RSS and worker subprocesses.

A benchmark that needs a clean peak-RSS figure or its own thread settings runs in a fresh Python
process: ``python -m vocoder.bench --worker NAME --params JSON`` (see :mod:`vocoder.bench._cli`)
prints its result as one JSON line, the last line of its standard output, and :func:`run_worker`
reads it back.
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class BenchmarkError(RuntimeError):
    """A benchmark that could not run; the message is one line (what failed and why)."""


@dataclass(frozen=True)
class Target:
    """A performance target ``value <op> bound`` (``op`` is ``"<="`` or ``">="``)."""

    op: str
    bound: float

    def __post_init__(self) -> None:
        if self.op not in ("<=", ">="):
            raise ValueError(f"target operator must be '<=' or '>=', got {self.op!r}")

    def met(self, value: float) -> bool:
        """Whether ``value`` meets the target (a NaN never does)."""
        if math.isnan(value):
            return False
        return value <= self.bound if self.op == "<=" else value >= self.bound

    def __str__(self) -> str:
        return f"{self.op} {self.bound:,g}"


@dataclass(frozen=True)
class Metric:
    """One measured figure of the combined benchmark table.

    Attributes:
        benchmark: the benchmark that measured it (``features``, ``lpcnet``, ``iaf``, ``mlpg``).
        key: machine name, unique within the benchmark (e.g. ``fast_rtf``).
        label: what it is, for people.
        value: the measured value.
        unit: its unit: ``x real time``, ``MB``, ``samples/s``, ``ms``, ``s/s`` (real-time factor:
            wall-clock seconds per second of audio) or ``x`` (speed-up).
        target: the target of the issues, or None when there is none.
    """

    benchmark: str
    key: str
    label: str
    value: float
    unit: str
    target: Target | None = None

    def ok(self, quick: bool) -> bool | None:
        """Whether the target is met; None without a target or in quick mode (tiny sizes)."""
        if self.target is None or quick:
            return None
        return self.target.met(self.value)

    def to_dict(self, quick: bool) -> dict[str, Any]:
        """Plain-JSON form (``target`` as text, ``ok`` null when not applicable)."""
        return {
            "benchmark": self.benchmark,
            "key": self.key,
            "label": self.label,
            "value": self.value,
            "unit": self.unit,
            "target": str(self.target) if self.target is not None else None,
            "ok": self.ok(quick),
        }


def format_value(value: float) -> str:
    """A figure with a precision that suits its magnitude (four significant digits, no exponent)."""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.4f}"


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def best_time(function: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Best wall-clock and best process-CPU seconds of ``repeats`` calls of ``function``.

    Args:
        function: the work to time.
        repeats: calls (>= 1); the least disturbed one is kept.

    Returns:
        ``(wall_seconds, cpu_seconds)``, each the minimum over the calls.
    """
    wall, cpu = [], []
    for _ in range(max(1, repeats)):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        function()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return min(wall), min(cpu)


def worker_command(name: str, params: Mapping[str, Any]) -> list[str]:
    """The command line of the benchmark worker ``name`` with JSON-able ``params``."""
    return [sys.executable, "-m", "vocoder.bench", "--worker", name, "--params", json.dumps(dict(params))]


def run_worker(
    name: str,
    params: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Run one benchmark worker in a fresh process and return the JSON object it printed.

    Args:
        name: worker name (see ``python -m vocoder.bench --help``).
        params: its settings (JSON-able).
        env: variables set in the worker's environment on top of this process's.
        timeout: seconds before the worker is killed (None: no limit).

    Returns:
        The decoded last line of the worker's standard output.

    Raises:
        BenchmarkError: the worker failed, timed out or printed no result (one line, with the last line
            of its standard error).
    """
    environment = dict(os.environ)
    environment.update(env or {})
    try:
        completed = subprocess.run(
            worker_command(name, params),
            capture_output=True,
            text=True,
            check=False,
            env=environment,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise BenchmarkError(f"{name}: no result within {timeout:g} s") from None
    if completed.returncode != 0:
        lines = [line for line in completed.stderr.strip().splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"exit status {completed.returncode}"
        raise BenchmarkError(f"{name}: {reason}")
    lines = [line for line in completed.stdout.strip().splitlines() if line.strip()]
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise BenchmarkError(f"{name}: the worker printed no JSON result") from None
    if not isinstance(result, dict):
        raise BenchmarkError(f"{name}: the worker printed {type(result).__name__}, expected an object")
    return result
