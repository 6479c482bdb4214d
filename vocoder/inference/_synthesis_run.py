"""Synthesize a set of inputs (wavs, feature files or a prepared split) to a folder of wavs."""

from __future__ import annotations

import json
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from vocoder.inference._vocoders import SynthesisError, Vocoder

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".aiff", ".aif", ".au", ".w64", ".rf64"}
#: Feature files: our cache entries and xiph LPCNet's 36-float-per-frame feature files.
FEATURE_SUFFIXES = {".npz", ".f32"}


@dataclass
class SynthesisReport:
    """What a synthesis run produced."""

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    audio_seconds: float = 0.0
    synthesis_seconds: float = 0.0

    @property
    def real_time_factor(self) -> float:
        return self.synthesis_seconds / self.audio_seconds if self.audio_seconds else float("nan")


def collect_inputs(source: Path, split: str = "eval") -> list[tuple[str, Path]]:
    """(utterance id, file) pairs: audio files, ``.npz`` / xiph ``.f32`` feature files, or a prepared cache split."""
    if source.is_file():
        if source.suffix.lower() not in AUDIO_SUFFIXES | FEATURE_SUFFIXES:
            raise SynthesisError(f"input={source}: not an audio file, a .npz or a xiph .f32 feature file")
        return [(source.stem, source)]
    if not source.is_dir():
        raise SynthesisError(f"input={source}: no such file or folder")
    if (source / "manifest.json").is_file():  # a prepared cache: take the split's feature files
        from vocoder.data import read_split

        return [(uid, source / "features" / f"{uid}.npz") for uid in read_split(source, split)]
    files = sorted(p for p in source.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES | FEATURE_SUFFIXES)
    if not files:
        raise SynthesisError(f"input={source}: the folder holds no audio, .npz or .f32 files")
    return [(p.stem, p) for p in files]


def _conditioning(vocoder: Vocoder, path: Path, xiph_writer: str = "dump_data") -> tuple[np.ndarray, int]:
    """The conditioning of one input and the leading output samples to drop to align it (xiph files)."""
    if path.suffix.lower() == ".f32":  # xiph LPCNet features, 36 floats per frame
        from vocoder.data import DataError, read_xiph_features, xiph_feature_delay

        if vocoder.conditioning_key != "features":
            raise SynthesisError(f"{path}: xiph .f32 features drive LPCNet checkpoints only")
        try:
            features = read_xiph_features(path)[0]
        except DataError as exc:
            raise SynthesisError(str(exc)) from None
        delay = xiph_feature_delay(xiph_writer)
        if features.shape[0] * vocoder.features.hop_length <= delay:
            raise SynthesisError(f"{path}: {features.shape[0]} frame(s) hold no audio after the "
                                 f"{delay}-sample delay of {xiph_writer}'s rows")
        return features, delay
    if path.suffix == ".npz":
        try:
            with np.load(path) as entry:
                return entry[vocoder.conditioning_key].astype(np.float32), 0
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise SynthesisError(f"{path}: no usable '{vocoder.conditioning_key}' array ({exc})") from None
    from vocoder.data import load_audio

    wave = load_audio(path, vocoder.sample_rate, min_samples=4 * vocoder.features.hop_length)
    return vocoder.analyze(wave), 0


def synthesize_inputs(vocoder: Vocoder, inputs: list[tuple[str, Path]], output_dir: Path, batch_size: int = 8,
                      seed: int = 0, progress: Callable[[int], None] | None = None,
                      xiph_writer: str = "dump_data") -> SynthesisReport:
    """Synthesize every input (bad ones are reported by name and skipped) into ``output_dir``.

    Args:
        vocoder: the loaded vocoder.
        inputs: ``(utterance id, file)`` pairs (:func:`collect_inputs`).
        output_dir: where ``<id>.wav`` and ``synthesis.json`` go.
        batch_size: utterances per synthesis call (batched vocoders).
        seed: sampling seed.
        progress: called with the number of inputs done.
        xiph_writer: the program that wrote the ``.f32`` inputs (``dump_data``, ``lpcnet_demo`` or
            ``vocoder``): its rows lie :func:`vocoder.data.xiph_feature_delay` samples before ours,
            and that many leading output samples are dropped, so that the output lines up with the
            recording.
    """
    from vocoder.data import XIPH_WRITERS, DataError

    if xiph_writer not in XIPH_WRITERS:
        raise SynthesisError(f"xiph_writer: expected one of {', '.join(XIPH_WRITERS)}, got {xiph_writer!r}")
    output_dir.mkdir(parents=True, exist_ok=True)
    report = SynthesisReport()
    pending: list[tuple[str, np.ndarray, int]] = []

    def flush() -> None:
        if not pending:
            return
        start = time.perf_counter()
        waves = vocoder.synthesize([c for _, c, _ in pending], seed=seed)
        report.synthesis_seconds += time.perf_counter() - start
        for (uid, _, delay), wave in zip(pending, waves, strict=True):
            wave = wave[delay:]
            path = output_dir / f"{uid}.wav"
            tmp = path.with_name(f".{path.name}.tmp")
            sf.write(tmp, np.clip(wave, -1.0, 1.0), vocoder.sample_rate, subtype="PCM_16", format="WAV")
            tmp.replace(path)
            report.written.append(path)
            report.audio_seconds += len(wave) / vocoder.sample_rate
        if progress:
            progress(len(pending))
        pending.clear()

    for uid, path in inputs:
        try:
            pending.append((uid, *_conditioning(vocoder, path, xiph_writer)))
        except (SynthesisError, DataError) as exc:
            report.failed.append((uid, str(exc)))
            if progress:
                progress(1)
            continue
        if len(pending) >= (batch_size if vocoder.batched else 1):
            flush()
    flush()
    (output_dir / "synthesis.json").write_text(json.dumps({
        "utterances": len(report.written), "failed": report.failed, "audio_seconds": report.audio_seconds,
        "synthesis_seconds": report.synthesis_seconds, "real_time_factor": report.real_time_factor,
    }, indent=1))
    return report


def write_references(inputs: list[tuple[str, Path]], reference_dir: Path, sample_rate: int) -> int:
    """Write the natural waveform of every cached input (``.npz`` with ``audio``) as a wav; returns the count.

    The cached audio is trimmed to whole frames, exactly the span a vocoder synthesizes, so the
    scores compare equal lengths.
    """
    reference_dir.mkdir(parents=True, exist_ok=True)
    count = 0
    for uid, path in inputs:
        if path.suffix != ".npz":
            continue
        target = reference_dir / f"{uid}.wav"
        if target.is_file() and target.stat().st_mtime >= path.stat().st_mtime:
            count += 1
            continue
        with np.load(path) as entry:
            audio = entry["audio"]
        tmp = target.with_name(f".{target.name}.tmp")
        sf.write(tmp, np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
        tmp.replace(target)
        count += 1
    return count
