"""Score a folder of synthesized wavs against natural ones: CSV, markdown summary and PNG plots."""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from vocoder.data import load_audio
from vocoder.evaluation._anchors import ANCHORS
from vocoder.evaluation._cache import ReferenceCache
from vocoder.evaluation._metrics import ReferenceAnalysis, score_pair, scoring_rates
from vocoder.evaluation._plots import plot_distributions, plot_spectrograms, plot_spectrum_and_f0

logger = logging.getLogger(__name__)

METRICS = ("pesq_wb", "stoi", "mcd_db", "vuv_error", "gpe", "fpe_cents")
HIGHER_IS_BETTER = {"pesq_wb": True, "stoi": True}


class EvaluationError(RuntimeError):
    """Unusable evaluation inputs; one line naming the folder/file and the fix."""


def pair_files(reference_dir: Path, synthesized_dir: Path) -> list[tuple[str, Path, Path]]:
    """(utterance id, reference wav, synthesized wav) for every synthesized wav with a reference.

    Synthesized wavs without a reference of the same name are skipped with a logged warning.

    Raises:
        EvaluationError: a folder is missing, ``synthesized_dir`` holds no wav, or no name matches.
    """
    for folder, what in ((reference_dir, "ref"), (synthesized_dir, "hyp")):
        if not folder.is_dir():
            raise EvaluationError(f"{what}={folder}: not a folder of wav files")
    synthesized = sorted(synthesized_dir.glob("*.wav"))
    if not synthesized:
        raise EvaluationError(f"hyp={synthesized_dir}: no .wav files to score")
    pairs, missing = [], []
    for syn in synthesized:
        ref = reference_dir / syn.name
        (pairs if ref.is_file() else missing).append((syn.stem, ref, syn))
    if not pairs:
        raise EvaluationError(
            f"ref={reference_dir}: none of the {len(synthesized)} synthesized names "
            f"(e.g. {synthesized[0].name}) has a reference wav of the same name"
        )
    if missing:
        shown = ", ".join(syn.name for _, _, syn in missing[:3]) + (", ..." if len(missing) > 3 else "")
        logger.warning("%d synthesized wav(s) have no reference in %s and are skipped: %s",
                       len(missing), reference_dir, shown)
    return pairs


def _score_one(args: tuple[str, Path, Path, int, tuple[str, ...], Path | None]) -> list[dict[str, float | str]]:
    uid, ref_path, syn_path, sample_rate, systems, cache_dir = args
    reference = load_audio(ref_path, sample_rate)
    synthesized = load_audio(syn_path, sample_rate)
    # the reference is analysed once for the vocoder and every anchor (and, with a cache, once ever)
    cache = ReferenceCache(cache_dir, reference, sample_rate) if cache_dir is not None else None
    analysis = cache.analysis() if cache is not None else ReferenceAnalysis(reference, sample_rate)
    rows = [{"utterance": uid, "system": "vocoder", **score_pair(reference, synthesized, sample_rate, analysis)}]
    for name in systems:
        scores = cache.anchor_scores(name, METRICS) if cache is not None else None
        if scores is None:
            scores = score_pair(reference, ANCHORS[name](reference, sample_rate), sample_rate, analysis)
            if cache is not None:
                cache.store_anchor_scores(name, scores, METRICS)
        rows.append({"utterance": uid, "system": name, **scores})
    if cache is not None:
        cache.save()
    return rows


def evaluate_folders(
    reference_dir: str | Path,
    synthesized_dir: str | Path,
    output_dir: str | Path,
    sample_rate: int | None = None,
    anchors: bool = False,
    plots: int = 3,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
    cache_dir: str | Path | None = None,
) -> dict[str, dict[str, float]]:
    """Score every synthesized utterance (and the anchors, if asked) and write the report.

    Writes ``scores.csv`` (one row per utterance and system), ``summary.md`` (mean ± 95 % CI per
    metric and system) and ``plots/`` (spectrogram comparisons and per-metric distributions).
    Every wav is read once before any scoring, so a bad file stops the run at once.

    Args:
        reference_dir: folder of natural wavs.
        synthesized_dir: folder of synthesized wavs with the same file names.
        output_dir: where the report goes (created).
        sample_rate: both sides are read (and resampled if needed) at this rate; ``None``: the
            references' own (the highest, when they differ). Each metric then resamples as its
            definition requires (:func:`vocoder.evaluation.scoring_rates`, written in the summary).
        anchors: also score the anchors of :data:`ANCHORS` computed from the natural wavs.
        plots: number of utterances with a spectrogram comparison (0: no plots at all).
        workers: processes scoring utterances in parallel.
        progress: called as ``progress(scored, total)`` after each scored utterance.
        cache_dir: keep each recording's analysis and anchor scores here and reuse them
            (:class:`~vocoder.evaluation._cache.ReferenceCache`); ``None``: compute everything.

    Returns:
        ``{system: {metric: mean}}``.

    Raises:
        EvaluationError: unusable folders (see :func:`pair_files`).
        BadAudioError: a wav that cannot be read; the message names the file.
    """
    reference_dir, synthesized_dir, output_dir = Path(reference_dir), Path(synthesized_dir), Path(output_dir)
    pairs = pair_files(reference_dir, synthesized_dir)
    if sample_rate is None:
        sample_rate = native_rate([ref for _, ref, _ in pairs])
    output_dir.mkdir(parents=True, exist_ok=True)  # an unwritable place fails before the long part
    for _, ref, syn in pairs:
        load_audio(ref, sample_rate)
        load_audio(syn, sample_rate)
    systems = tuple(ANCHORS) if anchors else ()
    cache = Path(cache_dir).expanduser() if cache_dir is not None else None
    jobs = [(uid, ref, syn, sample_rate, systems, cache) for uid, ref, syn in pairs]
    rows: list[dict] = []
    if workers > 1 and len(jobs) > 1:
        pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)))
        try:
            for done, result in enumerate(pool.map(_score_one, jobs), start=1):
                rows.extend(result)
                if progress:
                    progress(done, len(jobs))
        finally:
            # on an error (or Ctrl-C) do not wait for the utterances still queued
            pool.shutdown(wait=True, cancel_futures=True)
    else:
        for done, job in enumerate(jobs, start=1):
            rows.extend(_score_one(job))
            if progress:
                progress(done, len(jobs))
    with open(output_dir / "scores.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["utterance", "system", *METRICS])
        writer.writeheader()
        writer.writerows(rows)
    summary = summarize(rows)
    (output_dir / "summary.md").write_text(markdown_table(summary, len(pairs), sample_rate))
    if plots:
        plot_distributions(rows, output_dir / "plots" / "distributions.png")
        for uid, ref, syn in pairs[:plots]:
            natural, synthesized = load_audio(ref, sample_rate), load_audio(syn, sample_rate)
            plot_spectrograms(natural, synthesized, sample_rate, output_dir / "plots" / f"{uid}_spectrogram.png",
                              title=uid)
            plot_spectrum_and_f0(natural, synthesized, sample_rate, output_dir / "plots" / f"{uid}_ltas_f0.png",
                                 title=uid)
    return {system: {m: stats[0] for m, stats in metrics.items()} for system, metrics in summary.items()}


def summarize(rows: list[dict]) -> dict[str, dict[str, tuple[float, float]]]:
    """``{system: {metric: (mean, 95 % CI half-width)}}`` ignoring NaNs."""
    systems = list(dict.fromkeys(row["system"] for row in rows))
    out = {}
    for system in systems:
        out[system] = {}
        for metric in METRICS:
            values = np.array([row[metric] for row in rows if row["system"] == system], dtype=float)
            values = values[np.isfinite(values)]
            if values.size == 0:
                out[system][metric] = (math.nan, math.nan)
                continue
            half = 1.96 * values.std(ddof=1) / math.sqrt(values.size) if values.size > 1 else math.nan
            out[system][metric] = (float(values.mean()), float(half))
    return out


def native_rate(references: list[Path]) -> int:
    """The sample rate of the reference files (the highest, when they differ)."""
    import soundfile as sf

    rates = set()
    for path in references:
        try:
            rates.add(int(sf.info(path).samplerate))
        except (sf.SoundFileError, RuntimeError):
            load_audio(path, 16000)  # raises the one-line error naming the file
    return max(rates)


def markdown_table(
    summary: dict[str, dict[str, tuple[float, float]]], utterances: int, sample_rate: int | None = None
) -> str:
    """The score table (mean ± 95 % CI) as markdown; with ``sample_rate``, a last line saying the
    rate each metric was computed at."""
    header = "| system | PESQ-WB ↑ | STOI ↑ | MCD dB ↓ | V/UV err ↓ | GPE ↓ | FPE cents ↓ |"
    lines = [f"Scores over {utterances} utterances (mean ± 95 % CI).", "", header,
             "|" + "---|" * 7]
    for system, metrics in summary.items():
        cells = []
        for metric in METRICS:
            mean, half = metrics[metric]
            scale = 100.0 if metric in ("vuv_error", "gpe") else 1.0
            unit = " %" if scale == 100.0 else ""
            spread = "" if math.isnan(half) else f" ± {half * scale:.2f}"
            cells.append("n/a" if math.isnan(mean) else f"{mean * scale:.2f}{spread}{unit}")
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    if sample_rate is not None:
        lines += ["", scoring_rates(sample_rate)]
    return "\n".join(lines) + "\n"
