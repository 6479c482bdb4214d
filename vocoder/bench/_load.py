"""How far a benchmark's figures can be trusted: the machine's load during the run.

:class:`MachineProbe` records the load average before and after, and the CPU time that *other*
processes used on this process's CPUs during the run (``/proc/stat`` minus our own CPU time);
:func:`load_warnings` and :func:`cpu_wall_warning` turn these into warnings (a figure taken while
other processes kept more than :data:`LOAD_PER_CPU_LIMIT` of each CPU busy, or whose CPU time over
wall time is far from its thread count, is flagged).
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

#: other processes' CPU use above this fraction of each CPU makes a figure untrustworthy
LOAD_PER_CPU_LIMIT = 0.3
#: CPU time / wall time outside ``threads × (1 ± this)`` makes a figure untrustworthy
CPU_WALL_TOLERANCE = 0.25


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
