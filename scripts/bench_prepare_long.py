#!/usr/bin/env python
"""Preparing a long corpus: memory stays flat, and a killed preparation resumes where it stopped.

Builds a synthetic corpus of ``--hours`` hours in the ARCTIC layout under ``--work`` by linking the
files of a real corpus (default: kathleen_arctic, 57.5 min) again and again under new names, then runs
``vocoder-prepare`` on it twice:

1. until ``--kill-at`` of the cache entries exist, then ``SIGKILL`` (no chance to clean up);
2. again to the end: only the missing entries are computed, the others are found fresh.

While each run goes, the resident memory of the preparation's process tree (the main process and its
workers, summed from ``/proc``) is sampled every ``--interval`` seconds, with the share of entries
written, so that the table shows how the memory evolves over each run. Prints a table and, last,
``key=value`` figures. Nothing is written outside ``--work``; delete it afterwards.

    taskset -c 0 python scripts/bench_prepare_long.py --hours 20 --work /tmp/long_corpus
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# the project's kathleen_arctic copy: shared/data/ beside the checkout (or beside its parent, for a worktree)
_SOURCES = [p / "shared" / "data" / "kathleen_arctic" for p in REPO.parents]
DEFAULT_SOURCE = next((p for p in _SOURCES if p.is_dir()), _SOURCES[0])


def build_corpus(source: Path, target: Path, hours: float) -> tuple[int, float]:
    """Link ``source/wav/*.wav`` into ``target/wav`` as ``r<k>_<id>.wav`` until ``hours`` are reached."""
    import soundfile as sf

    wavs = sorted((source / "wav").glob("*.wav"))
    if not wavs:
        sys.exit(f"bench_prepare_long: {source}: no wav/*.wav files (pass --source DIR)")
    durations = [sf.info(path).duration for path in wavs]
    (target / "wav").mkdir(parents=True, exist_ok=True)
    count, seconds, repeat = 0, 0.0, 0
    while seconds < hours * 3600:
        for path, duration in zip(wavs, durations, strict=True):
            link = target / "wav" / f"r{repeat:03d}_{path.name}"
            if not link.exists():
                link.symlink_to(path)
            count += 1
            seconds += duration
            if seconds >= hours * 3600:
                break
        repeat += 1
    return count, seconds


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (and the children they joined)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, stack = 0.0, [pid]
    while stack:
        p = stack.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime, stime, cutime, cstime are fields 14-17 of stat (11-14 after the command name)
        total += sum(int(value) for value in fields[11:15]) / ticks
        stack += _children(p)
    return total


def tree_rss_kb(pid: int) -> tuple[int, int]:
    """(resident KiB of ``pid`` alone, of ``pid`` and all its descendants)."""

    def rss(p: int) -> int:
        try:
            text = Path(f"/proc/{p}/status").read_text()
        except OSError:
            return 0
        match = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
        return int(match.group(1)) if match else 0

    def children(p: int) -> list[int]:
        out = []
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                out += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
        return out

    total, stack, own = 0, [pid], rss(pid)
    while stack:
        p = stack.pop()
        total += rss(p)
        stack += children(p)
    return own, total


def run_prepare(corpus: Path, cache: Path, workers: int, total: int, kill_at: float | None,
                interval: float) -> dict:
    """One ``vocoder-prepare`` under ``/usr/bin/time -v``; sampled memory; killed at ``kill_at`` if given."""
    command = [sys.executable, "-m", "vocoder.prepare", f"data.root={corpus}", f"data.cache_dir={cache}",
               f"data.num_workers={workers}"]
    timer = ["/usr/bin/time", "-v"] if Path("/usr/bin/time").exists() else []
    started = time.perf_counter()
    proc = subprocess.Popen(timer + command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        return _watch(proc, started, cache, total, kill_at, interval, bool(timer))
    finally:
        if proc.poll() is None:  # this script was interrupted: take the preparation down with it
            os.killpg(proc.pid, signal.SIGKILL)


def _watch(proc: subprocess.Popen, started: float, cache: Path, total: int, kill_at: float | None,
           interval: float, timer: bool) -> dict:
    """Sample the running preparation until it ends (or kill it once ``kill_at`` of the entries exist)."""
    samples: list[tuple[float, int, int, int]] = []  # (seconds, entries written, main KiB, tree KiB)
    features = cache / "features"
    killed = False
    cpu_seconds = 0.0
    while proc.poll() is None:
        time.sleep(interval)
        # the timer's child is the preparation; sum from the timer down (time itself is ~2 MB)
        written = sum(1 for _ in features.glob("*.npz")) if features.is_dir() else 0
        main_pid = next((c for c in _children(proc.pid)), proc.pid) if timer else proc.pid
        own, tree = tree_rss_kb(main_pid)
        samples.append((time.perf_counter() - started, written, own, tree))
        cpu_seconds = max(cpu_seconds, tree_cpu_seconds(proc.pid))
        if kill_at is not None and written >= kill_at * total and not killed:
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - started
    max_rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    user = re.search(r"User time \(seconds\): ([\d.]+)", stderr)
    system = re.search(r"System time \(seconds\): ([\d.]+)", stderr)
    if user and system:  # /usr/bin/time counts the joined workers too
        cpu_seconds = float(user.group(1)) + float(system.group(1))
    summary = re.search(r"computed (\d+), already up to date (\d+), skipped (\d+)", stdout)
    return {
        "wall": wall,
        "cpu": cpu_seconds,
        "killed": killed,
        "returncode": proc.returncode,
        "samples": samples,
        "time_max_rss_mb": int(max_rss.group(1)) / 1024 if max_rss else float("nan"),
        "computed": int(summary.group(1)) if summary else None,
        "up_to_date": int(summary.group(2)) if summary else None,
        "entries": sum(1 for _ in features.glob("*.npz")) if features.is_dir() else 0,
        "stdout": stdout,
        "stderr": stderr,
    }


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def progress_rows(samples: list[tuple[float, int, int, int]]) -> list[tuple[str, int, float, float]]:
    """(share of the run's time, entries written, main MB, tree MB) at 10, 25, 50, 75 and 95 % of it."""
    if not samples:
        return []
    end = samples[-1][0]
    rows = []
    for share in (0.1, 0.25, 0.5, 0.75, 0.95):
        past = [s for s in samples if s[0] >= share * end]
        if past:
            rows.append((f"{share:.0%}", past[0][1], past[0][2] / 1024, past[0][3] / 1024))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=20.0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/vocoder_long_corpus"))
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--kill-at", type=float, default=0.5, help="share of entries written when killed")
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--keep", action="store_true", help="keep the cache and the links afterwards")
    args = parser.parse_args()

    corpus, cache = args.work / "corpus", args.work / "cache"
    if cache.exists():
        shutil.rmtree(cache)
    count, seconds = build_corpus(args.source, corpus, args.hours)
    lines = Path("/proc/cpuinfo").read_text().splitlines()[:30]
    pairs = (line.split(":", 1) for line in lines if ":" in line)
    info = {key.strip(): value.strip() for key, value in pairs}
    cpu = (f"{info.get('model name', platform.processor())} (family {info.get('cpu family', '?')} "
           f"model {info.get('model', '?')})")
    affinity = sorted(os.sched_getaffinity(0))
    print(f"corpus: {count} utterances, {seconds / 3600:.2f} h ({corpus}, links to {args.source})")
    print(f"cpu: {cpu}; cores allowed: {affinity}; workers: {args.workers}; load before: {os.getloadavg()}")
    first = run_prepare(corpus, cache, args.workers, count, args.kill_at, args.interval)
    second = run_prepare(corpus, cache, args.workers, count, None, args.interval)
    load_after = os.getloadavg()
    if second["returncode"] != 0:
        print(second["stdout"][-2000:], second["stderr"][-2000:])
        sys.exit("bench_prepare_long: the resumed preparation failed")
    print()
    print(f"{'run':<26}{'wall s':>9}{'CPU s':>9}{'entries':>9}{'computed':>10}{'reused':>9}"
          f"{'peak tree MB':>14}{'max RSS MB':>12}")
    for label, run in (("1: killed (SIGKILL)", first), ("2: resumed to the end", second)):
        peak = max((s[3] for s in run["samples"]), default=0) / 1024
        print(f"{label:<26}{run['wall']:>9.1f}{run['cpu']:>9.1f}{run['entries']:>9}"
              f"{str(run['computed'] or '-'):>10}{str(run['up_to_date'] or '-'):>9}{peak:>14.0f}"
              f"{run['time_max_rss_mb']:>12.0f}")
    print()
    print(f"{'memory over each run (time share)':<34}{'entries':>10}{'main MB':>10}{'tree MB':>10}")
    rows = {}
    for label, run in (("killed", first), ("resumed", second)):
        rows[label] = progress_rows(run["samples"])
        for share, entries, main_mb, tree_mb in rows[label]:
            print(f"{label + ' run at ' + share:<34}{entries:>10}{main_mb:>10.0f}{tree_mb:>10.0f}")
    audio_computed = seconds * (second["computed"] or 0) / count
    # the main process from the moment its worker runs (imports done, entries streaming) to the end of
    # the resumed run: what the corpus itself adds
    streaming = [s for s in first["samples"] if s[3] > s[2] + 50 * 1024]
    last = [s for s in second["samples"] if s[3] > s[2] + 50 * 1024] or second["samples"]
    growth = (max(s[2] for s in last) - streaming[0][2]) / 1024 if streaming else float("nan")
    print(
        f"hours={seconds / 3600:.2f} utterances={count} workers={args.workers} "
        f"killed_after_s={first['wall']:.0f} entries_at_kill={first['entries']} "
        f"resumed_s={second['wall']:.0f} resumed_computed={second['computed']} "
        f"resumed_reused={second['up_to_date']} "
        f"resumed_xrt={audio_computed / second['wall']:.0f} "
        f"resumed_cpu_s={second['cpu']:.0f} "
        f"resumed_xrt_per_cpu_s={audio_computed / max(second['cpu'], 1e-9):.0f} "
        f"peak_tree_mb={max(s[3] for s in first['samples'] + second['samples']) / 1024:.0f} "
        f"main_growth_mb={growth:.0f} cpu={cpu.replace(' ', '_')} cores={len(affinity)}"
    )
    print(f"load after: {load_after}")
    if not args.keep:
        shutil.rmtree(args.work)


if __name__ == "__main__":
    main()
