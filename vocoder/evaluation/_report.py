"""Score folders of synthesized wavs against natural ones: CSV, markdown summary, plots, listening page."""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from vocoder.data import load_audio
from vocoder.evaluation._anchors import ANCHORS
from vocoder.evaluation._cache import ReferenceCache
from vocoder.evaluation._metrics import METRICS, ReferenceAnalysis, score_pair
from vocoder.evaluation._page import NATURAL, SYSTEM_NAME, UtteranceMedia, to_pcm16, write_listening_page
from vocoder.evaluation._plots import plot_distributions, plot_spectrograms, plot_spectrum_and_f0
from vocoder.evaluation._summary import markdown_table, summarize

logger = logging.getLogger(__name__)

#: the system name of a single synthesized folder
DEFAULT_SYSTEM = "vocoder"


class EvaluationError(RuntimeError):
    """Unusable evaluation inputs; one line naming the folder/file and the fix."""


def pair_files(reference_dir: Path, synthesized_dir: Path,
               label: str = "hyp") -> list[tuple[str, Path, Path]]:
    """(utterance id, reference wav, synthesized wav) for every synthesized wav with a reference.

    Synthesized wavs without a reference of the same name are skipped with a logged warning.

    Args:
        reference_dir: folder of natural wavs.
        synthesized_dir: folder of synthesized wavs.
        label: how messages name the synthesized folder's setting (``hyp``, ``hyp.fast``).

    Returns:
        The pairs, sorted by file name.

    Raises:
        EvaluationError: a folder is missing, ``synthesized_dir`` holds no wav, or no name matches.
    """
    for folder, what in ((reference_dir, "ref"), (synthesized_dir, label)):
        if not folder.is_dir():
            raise EvaluationError(f"{what}={folder}: not a folder of wav files")
    synthesized = sorted(synthesized_dir.glob("*.wav"))
    if not synthesized:
        raise EvaluationError(f"{label}={synthesized_dir}: no .wav files to score")
    pairs, missing = [], []
    for syn in synthesized:
        ref = reference_dir / syn.name
        (pairs if ref.is_file() else missing).append((syn.stem, ref, syn))
    if not pairs:
        raise EvaluationError(
            f"ref={reference_dir}: none of the {len(synthesized)} synthesized names in {label} "
            f"(e.g. {synthesized[0].name}) has a reference wav of the same name"
        )
    if missing:
        shown = ", ".join(syn.name for _, _, syn in missing[:3]) + (", ..." if len(missing) > 3 else "")
        logger.warning("%d synthesized wav(s) have no reference in %s and are skipped: %s",
                       len(missing), reference_dir, shown)
    return pairs


def synthesized_systems(synthesized: str | os.PathLike | Mapping[str, str | os.PathLike]) -> dict[str, Path]:
    """``{system name: folder}`` from one folder (named :data:`DEFAULT_SYSTEM`) or a mapping of named folders.

    Raises:
        EvaluationError: no folder, a name that cannot name a folder of the page (see
            :data:`~vocoder.evaluation._page.SYSTEM_NAME`), a reserved name (``natural``, an anchor's) or
            two names that differ only in case.
    """
    if isinstance(synthesized, (str, os.PathLike)):
        return {DEFAULT_SYSTEM: Path(synthesized)}
    systems = {str(name): Path(folder) for name, folder in synthesized.items()}
    if not systems:
        raise EvaluationError("hyp: no folder given; give hyp=DIR, or hyp.NAME=DIR for each system")
    seen: dict[str, str] = {}
    for name in systems:
        if not SYSTEM_NAME.fullmatch(name):
            raise EvaluationError(
                f"hyp.{name}: a system name is a letter or digit, then up to 63 letters, digits, '_', '.', "
                "'+' or '-'")
        if name == NATURAL or name in ANCHORS:
            what = "the natural recordings" if name == NATURAL else "the anchor of that name"
            raise EvaluationError(f"hyp.{name}: '{name}' names {what} in the report; choose another name")
        if name.lower() in seen:
            raise EvaluationError(f"hyp.{name}: differs from hyp.{seen[name.lower()]} only in case; "
                                  "choose names that differ in letters")
        seen[name.lower()] = name
    return systems


@dataclass(frozen=True)
class _Job:
    """One utterance to score: the reference, every system's wav of it, and where its page files go."""

    uid: str
    reference: Path
    synthesized: tuple[tuple[str, Path], ...]
    sample_rate: int
    anchors: tuple[str, ...]
    cache_dir: Path | None
    page_dir: Path | None  # write the utterance's audio and spectrograms for the listening page here


def _score_one(job: _Job) -> list[dict[str, float | str]]:
    reference = load_audio(job.reference, job.sample_rate)
    # the reference is analysed once for every system and anchor (and, with a cache, once ever)
    cache = ReferenceCache(job.cache_dir, reference, job.sample_rate) if job.cache_dir is not None else None
    analysis = cache.analysis() if cache is not None else ReferenceAnalysis(reference, job.sample_rate)
    media = (UtteranceMedia(job.page_dir, job.reference.name, reference, job.sample_rate)
             if job.page_dir is not None else None)
    rows = []
    for system, path in job.synthesized:
        synthesized = load_audio(path, job.sample_rate)
        rows.append({"utterance": job.uid, "system": system,
                     **score_pair(reference, synthesized, job.sample_rate, analysis)})
        if media is not None:
            media.add(system, synthesized)
    for name in job.anchors:
        scores = cache.anchor_scores(name, METRICS) if cache is not None else None
        audio = cache.anchor_audio(name) if cache is not None and media is not None else None
        if scores is None or (media is not None and audio is None):
            wave = ANCHORS[name](reference, job.sample_rate)
            audio = to_pcm16(wave)
            if scores is None:
                scores = score_pair(reference, wave, job.sample_rate, analysis)
                if cache is not None:
                    cache.store_anchor_scores(name, scores, METRICS)
            if cache is not None and media is not None:
                cache.store_anchor_audio(name, audio)
        rows.append({"utterance": job.uid, "system": name, **scores})
        if media is not None:
            media.add(name, audio)
    if cache is not None:
        cache.save()
    return rows


def _common_utterances(reference_dir: Path,
                       systems: dict[str, Path]) -> list[tuple[str, Path, dict[str, Path]]]:
    """(utterance id, reference wav, {system: its wav}) of the utterances every system has, sorted by name."""
    single = len(systems) == 1
    paired = {name: {uid: (ref, syn) for uid, ref, syn in
                     pair_files(reference_dir, folder, "hyp" if single else f"hyp.{name}")}
              for name, folder in systems.items()}
    first = next(iter(paired.values()))
    common = [uid for uid in first if all(uid in pairs for pairs in paired.values())]
    if not common:
        shown = " and ".join(f"hyp.{name}={folder}" for name, folder in systems.items())
        raise EvaluationError(f"hyp: {shown} have no utterance (wav name with a reference) in common")
    everywhere = set(common)
    partial = sorted({uid for pairs in paired.values() for uid in pairs} - everywhere)
    if partial:
        shown = ", ".join(partial[:3]) + (", ..." if len(partial) > 3 else "")
        logger.warning("%d utterance(s) are not in every hyp folder and are skipped (the systems are "
                       "compared on the same utterances): %s", len(partial), shown)
    return [(uid, first[uid][0], {name: paired[name][uid][1] for name in systems}) for uid in common]


def evaluate_folders(
    reference_dir: str | Path,
    synthesized_dir: str | Path | Mapping[str, str | Path],
    output_dir: str | Path,
    sample_rate: int | None = None,
    anchors: bool = False,
    plots: int = 3,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
    cache_dir: str | Path | None = None,
    page: int = 100,
) -> dict[str, dict[str, float]]:
    """Score the utterances of one or several synthesized systems (and the anchors); write the report.

    Writes ``scores.csv`` (one row per utterance and system), ``summary.md`` (mean ± 95 % CI per
    metric and system), ``plots/`` (spectrogram comparisons and per-metric distributions) and the
    listening page ``index.html`` with ``audio/`` and ``spectrograms/`` beside it (see
    :mod:`vocoder.evaluation._page`). With several systems, the utterances that every folder has are
    scored (the others are skipped with a logged warning). Every wav is read once before any scoring,
    so a bad file stops the run at once.

    Args:
        reference_dir: folder of natural wavs.
        synthesized_dir: folder of synthesized wavs with the same file names (the system ``vocoder``),
            or ``{system name: folder}`` for several systems, in the order of the report.
        output_dir: where the report goes (created).
        sample_rate: both sides are read (and resampled if needed) at this rate; ``None``: the
            references' own (the highest, when they differ). Each metric then resamples as its
            definition requires (:func:`vocoder.evaluation.scoring_rates`, written in the summary).
        anchors: also score the anchors of :data:`ANCHORS` computed from the natural wavs.
        plots: number of utterances with a spectrogram comparison (0: no plots at all).
        workers: processes scoring utterances in parallel.
        progress: called as ``progress(scored, total)`` after each scored utterance.
        cache_dir: keep each recording's analysis and anchor scores (and the anchors' audio of the
            utterances on the page) here and reuse them
            (:class:`~vocoder.evaluation._cache.ReferenceCache`); ``None``: compute everything.
        page: utterances on the listening page (the first by name); 0: no page, no audio copied.

    Returns:
        ``{system: {metric: mean}}``, the synthesized systems in order, then the anchors.

    Raises:
        EvaluationError: unusable folders (see :func:`pair_files`) or system names (see
            :func:`synthesized_systems`), or folders with no utterance in common.
        BadAudioError: a wav that cannot be read; the message names the file.
    """
    reference_dir, output_dir = Path(reference_dir), Path(output_dir)
    systems = synthesized_systems(synthesized_dir)
    utterances = _common_utterances(reference_dir, systems)
    if sample_rate is None:
        sample_rate = native_rate([reference for _, reference, _ in utterances])
    output_dir.mkdir(parents=True, exist_ok=True)  # an unwritable place fails before the long part
    for _, ref, syns in utterances:
        load_audio(ref, sample_rate)
        for syn in syns.values():
            load_audio(syn, sample_rate)
    anchor_names = tuple(ANCHORS) if anchors else ()
    cache = Path(cache_dir).expanduser() if cache_dir is not None else None
    jobs = [_Job(uid, ref, tuple(syns.items()), sample_rate, anchor_names, cache,
                 output_dir if index < page else None)
            for index, (uid, ref, syns) in enumerate(utterances)]
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
    (output_dir / "summary.md").write_text(markdown_table(summary, len(jobs), sample_rate))
    if plots:
        plot_distributions(rows, output_dir / "plots" / "distributions.png")
        for uid, ref, syns in utterances[:plots]:
            natural = load_audio(ref, sample_rate)
            for system, syn in syns.items():
                stem = uid if len(systems) == 1 else f"{uid}_{system}"
                synthesized = load_audio(syn, sample_rate)
                title = uid if len(systems) == 1 else f"{uid} ({system})"
                plot_spectrograms(natural, synthesized, sample_rate,
                                  output_dir / "plots" / f"{stem}_spectrogram.png", title=title)
                plot_spectrum_and_f0(natural, synthesized, sample_rate,
                                     output_dir / "plots" / f"{stem}_ltas_f0.png", title=title)
    if page:
        write_listening_page(
            output_dir, summary, rows,
            utterances=[(uid, ref.name) for uid, ref, _ in utterances[:page]],
            sources={name: str(folder) for name, folder in systems.items()},
            reference_dir=str(reference_dir), anchors=anchor_names, scored_utterances=len(jobs),
            sample_rate=sample_rate)
    return {system: {m: stats[0] for m, stats in metrics.items()} for system, metrics in summary.items()}


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
