"""Feature preparation: a corpus in any layout (:mod:`vocoder.data._layouts`) → a feature cache.

Cache layout (read by :mod:`vocoder.data._datasets` and others; keep it stable)::

    cache_dir/
      features/<utt_id>.npz   audio (N,) float32 — the waveform trimmed to N = T · hop samples
                              mel (T, n_mels) float32 — natural log of the mel magnitude
                              features (T, 20) float32 — LPCNet: 18 BFCC, pitch period, correlation
                              lpc (T, lpc_order) float32 — LPC of the pre-emphasized signal
                              fingerprint () str — FeatureSettings.fingerprint() of the entry
      manifest.json           {"fingerprint", "settings", "root", "layout", "utterances": [{"id",
                              "wav", "frames", "samples", "text", "speaker", "file_rate",
                              "channels", "bytes", "crc32"}], "skipped": [{"id", "wav", "reason"}],
                              "speakers": {speaker: utterances}, "splits": {"n_eval", "n_dev",
                              "requested": {"n_eval", "n_dev", "held_out_speakers"},
                              "held_out_speakers", "unused", "adapted", "line"}, "stats": {"bytes",
                              "crc32"}, "limit", "version"}
      splits/{train,dev,eval}.txt   utterance ids, one a line (rule: :mod:`vocoder.data._splits`),
                              decided over the usable utterances once every file has been read
      stats.npz               mel_mean, mel_std (n_mels,), features_mean, features_std (20,) float32,
                              population statistics over every frame of the train split

``features`` and ``lpc`` (and their statistics) exist when the frames are 10 ms long
(:attr:`FeatureSettings.lpcnet_frames`); at another rate than 16 kHz they are computed on a 16 kHz
copy of the trimmed audio, frame for frame. Frame ``k`` of ``mel``/``features``/``lpc`` describes
samples ``[k · hop, (k + 1) · hop)``. The manifest is written last and removed first: a cache with a
manifest is complete. ``bytes`` and ``crc32`` (size and CRC-32 of the whole file) let a re-run find an
entry damaged after it was written (a truncated copy, a changed byte); manifests written before they
were recorded lack them, and their entries are verified by reading every array instead (the CRC-32
of each member of the archive).

Memory does not grow with the corpus beyond its listing and manifest records: entries stream from
the workers to disk, and the statistics are accumulated over every usable utterance as they come;
once the split is known, the utterances outside train (or those in it, whichever are fewer) are
read back and taken out (or summed anew).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import multiprocessing
import os
import signal
import time
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import soundfile as sf
import soxr
import threadpoolctl
import torch
from tqdm import tqdm

from vocoder.data._audio import load_audio_with_info
from vocoder.data._corpus import CorpusUtterance
from vocoder.data._datasets import DAMAGED_NPZ_ERRORS
from vocoder.data._download import DEFAULT_BASE_URL, fetch_arctic
from vocoder.data._errors import BadAudioError, CorpusError
from vocoder.data._fsutil import directory_lock, remove_stale_temporaries, write_atomic
from vocoder.data._layouts import Corpus, discover_corpus
from vocoder.data._settings import LPCNET_SAMPLE_RATE, FeatureSettings
from vocoder.data._splits import (
    SPLITS,
    SplitChoice,
    choose_split_sizes,
    held_out_speaker_names,
    split_by_speaker,
    split_ids,
    write_splits,
)
from vocoder.dsp import log_mel_spectrogram, lpcnet_features, mel_filterbank

LOG = logging.getLogger(__name__)

MANIFEST_VERSION = 1
#: Shortest usable utterance, in frames (50 ms at 10 ms frames); shorter files are rejected.
MIN_FRAMES = 5
#: Lower bound of the stored standard deviations, so that normalizing a constant channel is finite.
STD_FLOOR = 1e-3
#: Utterances per task sent to a worker: the mel filter bank is built once per batch.
BATCH_SIZE = 4
ON_ERROR_CHOICES = ("skip", "fail")
#: How a complete-looking cache is verified (``prepare_corpus(verify=...)``).
VERIFY_CHOICES = ("checksum", "size")


@dataclass(frozen=True)
class SkippedFile:
    """An utterance left out of the cache because its audio is unusable."""

    id: str
    wav: Path
    reason: str


@dataclass(frozen=True)
class PreparedCorpus:
    """What :func:`prepare_corpus` wrote (or found up to date).

    Attributes:
        cache_dir: the cache directory (absolute).
        root: the corpus directory (absolute).
        splits: prepared utterance ids per split (``train``, ``dev``, ``eval``).
        skipped: unusable files and why.
        split: one line saying which split sizes were chosen and why (``SplitChoice.describe()``).
        computed: utterances whose features were computed by this call (``repaired`` included).
        up_to_date: utterances whose cache entry was already fresh.
        repaired: ids of the entries that were damaged (truncated, bytes changed, unreadable) and were
            computed again by this call.
        audio_seconds: duration of all prepared utterances.
        computed_seconds: duration of the utterances computed by this call.
        wall_seconds: wall-clock time of the call.
        corpus: one line naming the layout found, utterances, speakers (``Corpus.describe()``).
        conversion: one line on the files read at another rate or with several channels ("" when none).
    """

    cache_dir: Path
    root: Path
    splits: Mapping[str, tuple[str, ...]]
    skipped: tuple[SkippedFile, ...]
    computed: int
    up_to_date: int
    audio_seconds: float
    computed_seconds: float
    wall_seconds: float
    split: str = ""
    repaired: tuple[str, ...] = ()
    corpus: str = ""
    conversion: str = ""

    @property
    def real_time_factor(self) -> float:
        """Seconds of audio computed per second of wall-clock time (0 when nothing was computed)."""
        return self.computed_seconds / self.wall_seconds if self.computed and self.wall_seconds > 0 else 0.0

    def summary(self, max_skipped: int = 20) -> str:
        """A multi-line human-readable report: cache, counts per split, skipped files, speed."""
        total = self.computed + self.up_to_date
        counts = ", ".join(f"{name} {len(self.splits[name])}" for name in SPLITS)
        outside = total - sum(len(ids) for ids in self.splits.values())
        if outside > 0:
            counts += f", {outside} of held-out speakers in no split"
        lines = [self.corpus] if self.corpus else []
        lines += [
            f"cache: {self.cache_dir} (corpus {self.root})",
            f"  utterances: {total} ({counts}); computed {self.computed}, "
            f"already up to date {self.up_to_date}, skipped {len(self.skipped)}",
        ]
        if self.split:
            lines.append(f"  {self.split}")
        if self.conversion:
            lines.append(f"  {self.conversion}")
        if self.repaired:
            shown = ", ".join(f"{name}.npz" for name in self.repaired[:max_skipped])
            more = f" and {len(self.repaired) - max_skipped} more" if len(self.repaired) > max_skipped else ""
            lines.append(f"  recomputed {len(self.repaired)} damaged cache "
                         f"entr{'y' if len(self.repaired) == 1 else 'ies'}: {shown}{more}")
        speed = f" = {self.real_time_factor:.1f}x real time" if self.computed else ""
        lines.append(
            f"  audio: {self.audio_seconds / 60:.1f} min prepared, "
            f"{self.computed_seconds / 60:.1f} min computed in {self.wall_seconds:.1f} s{speed}"
        )
        for skipped in self.skipped[:max_skipped]:
            lines.append(f"  skipped {skipped.id}: {skipped.reason} ({skipped.wav})")
        if len(self.skipped) > max_skipped:
            lines.append(f"  ... and {len(self.skipped) - max_skipped} more skipped (see manifest.json)")
        return "\n".join(lines)


def compute_features(
    audio: np.ndarray, settings: FeatureSettings, filterbank: torch.Tensor | None = None
) -> dict[str, np.ndarray]:
    """Cache-entry arrays of one waveform: trimmed audio, log-mel, LPCNet features and LPC.

    The waveform is trimmed to ``T · hop`` samples with ``T = N // hop``. The log-mel is
    :func:`vocoder.dsp.log_mel_spectrogram` of the trimmed waveform (``center=True``, floor
    ``settings.mel_floor``) without its last frame, so that it has ``T`` frames aligned with the
    LPCNet frames. LPCNet's features exist for 10 ms frames only (:attr:`FeatureSettings.lpcnet_frames`);
    at another rate than 16 kHz they are those of the trimmed waveform resampled to 16 kHz (soxr
    ``HQ``: exactly ``T · 160`` samples).

    Args:
        audio: ``(N,)`` float waveform at ``settings.sample_rate`` (``N ≥ hop``).
        settings: feature settings.
        filterbank: ``(n_mels, n_fft // 2 + 1)`` mel filter bank to reuse (built when ``None``).

    Returns:
        ``{"audio": (T·hop,), "mel": (T, n_mels), "features": (T, 20), "lpc": (T, lpc_order)}``,
        all float32; without ``features`` and ``lpc`` when the frames are not 10 ms long.
    """
    hop = settings.hop_length
    frames = audio.shape[0] // hop
    if frames < 1:
        raise ValueError(f"audio of {audio.shape[0]} samples is shorter than one frame ({hop} samples)")
    trimmed = np.ascontiguousarray(audio[: frames * hop], dtype=np.float32)
    with torch.no_grad():
        mel = log_mel_spectrogram(
            torch.from_numpy(trimmed),
            sample_rate=settings.sample_rate,
            n_fft=settings.n_fft,
            hop_length=hop,
            win_length=settings.win_length,
            n_mels=settings.n_mels,
            fmin=settings.fmin,
            fmax=settings.fmax,
            floor=settings.mel_floor,
            center=True,
            filterbank=filterbank,
        )
    # centred framing yields T + 1 frames; the last one is centred on the first sample after the
    # trimmed signal and has no LPCNet counterpart
    mel = np.ascontiguousarray(mel[:, :frames].T.numpy(), dtype=np.float32)
    if not settings.lpcnet_frames:
        return {"audio": trimmed, "mel": mel}
    at_16k = trimmed
    if settings.sample_rate != LPCNET_SAMPLE_RATE:
        at_16k = soxr.resample(trimmed, settings.sample_rate, LPCNET_SAMPLE_RATE, quality="HQ")
        at_16k = np.ascontiguousarray(at_16k, dtype=np.float32)
    features, lpc = lpcnet_features(
        at_16k,
        sample_rate=LPCNET_SAMPLE_RATE,
        preemphasis=settings.preemphasis,
        lpc_order=settings.lpc_order,
        pitch_correlation=settings.pitch_correlation,
    )
    return {"audio": trimmed, "mel": mel, "features": features[:frames], "lpc": lpc[:frames]}


@dataclass
class _Moments:
    """Frame count, mean and sum of squared deviations (float64), mergeable (Chan et al., 1979)."""

    count: int
    mean: np.ndarray | float
    m2: np.ndarray | float

    @classmethod
    def of(cls, frames: np.ndarray) -> _Moments:
        values = frames.astype(np.float64)
        mean = values.mean(axis=0)
        return cls(values.shape[0], mean, ((values - mean) ** 2).sum(axis=0))

    def merge(self, other: _Moments) -> None:
        if other.count == 0:
            return
        total = self.count + other.count
        delta = other.mean - self.mean
        self.mean = self.mean + delta * (other.count / total)
        self.m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / total)
        self.count = total

    def without(self, other: _Moments) -> _Moments:
        """These moments with ``other``'s (a subset of the frames) taken out: :meth:`merge` reversed."""
        count = self.count - other.count
        if count <= 0:
            return _Moments(0, 0.0, 0.0)
        if other.count == 0:
            return _Moments(self.count, self.mean, self.m2)
        mean = (self.mean * self.count - other.mean * other.count) / count
        delta = other.mean - mean
        m2 = self.m2 - other.m2 - delta**2 * (count * other.count / self.count)
        return _Moments(count, mean, np.maximum(m2, 0.0))

    def std(self, floor: float) -> np.ndarray:
        return np.maximum(np.sqrt(self.m2 / max(self.count, 1)), floor)


@dataclass(frozen=True)
class _Job:
    id: str
    wav: Path
    entry: Path
    force: bool
    #: (bytes, crc32) of the entry as the previous manifest recorded it; None when unknown
    expected: tuple[int, int] | None = None


@dataclass(frozen=True)
class _Batch:
    jobs: tuple[_Job, ...]
    settings: FeatureSettings
    min_frames: int


@dataclass
class _Outcome:
    id: str
    status: str  # "computed", "repaired" (a damaged entry computed again), "up_to_date" or "bad"
    frames: int = 0
    reason: str = ""
    mel: _Moments | None = None
    features: _Moments | None = None
    bytes: int = 0
    crc32: int = 0
    file_rate: int = 0
    channels: int = 0


def file_checksum(path: str | os.PathLike) -> tuple[int, int]:
    """``(size in bytes, CRC-32)`` of a file, as the manifest records each cache entry."""
    data = Path(path).read_bytes()
    return len(data), zlib.crc32(data)


def _existing_entry(job: _Job, fingerprint: str, settings: FeatureSettings
                    ) -> tuple[str, dict[str, np.ndarray] | None, bytes]:
    """The state of ``job``'s cache entry: ``(state, arrays, file bytes)``.

    ``state`` is ``fresh`` (usable as is: newer than its wav, the same settings, intact), ``missing``,
    ``stale`` (older than its wav, other settings, or ``force``) or ``damaged`` (its size or CRC-32
    differs from what the manifest recorded, or it cannot be read). An entry whose size and checksum
    are known is verified by them; one without (a manifest written before they were recorded, or none)
    by reading every array, which checks the CRC-32 of each member of the archive.
    """
    if job.force:
        return "stale", None, b""
    try:
        if job.entry.stat().st_mtime_ns < job.wav.stat().st_mtime_ns:
            return "stale", None, b""
        data = job.entry.read_bytes()
    except FileNotFoundError:
        return "missing", None, b""
    except OSError:
        return "damaged", None, b""
    if job.expected is not None and (len(data), zlib.crc32(data)) != tuple(job.expected):
        return "damaged", None, data
    try:
        with np.load(io.BytesIO(data)) as entry:
            if "fingerprint" not in entry.files or str(entry["fingerprint"]) != fingerprint:
                return "stale", None, data
            # the checksum covered the whole file: the statistics need only the mel (and features)
            needed = ("mel", "features") if settings.lpcnet_frames else ("mel",)
            arrays = {key: entry[key] for key in (needed if job.expected is not None else entry.files)}
    except DAMAGED_NPZ_ERRORS:
        return "damaged", None, data
    required = {"audio", "mel", "features", "lpc"} if settings.lpcnet_frames else {"audio", "mel"}
    if job.expected is None and not required <= set(arrays):
        return "damaged", None, data
    return "fresh", arrays, data


def _prepare_batch(batch: _Batch) -> list[_Outcome]:
    """Worker task: bring the cache entries of a few utterances up to date."""
    settings = batch.settings
    fingerprint = settings.fingerprint()
    filterbank = mel_filterbank(
        settings.sample_rate, settings.n_fft, settings.n_mels, settings.fmin, settings.fmax
    )
    outcomes = []
    for job in batch.jobs:
        state, arrays, data = _existing_entry(job, fingerprint, settings)
        if state == "fresh":
            outcome = _Outcome(job.id, "up_to_date", frames=arrays["mel"].shape[0], bytes=len(data),
                               crc32=zlib.crc32(data))
            outcome.mel, outcome.features = _entry_moments(arrays, settings)
            try:
                info = sf.info(job.wav)
                outcome.file_rate, outcome.channels = int(info.samplerate), int(info.channels)
            except (OSError, RuntimeError):
                pass  # the entry stays usable; its source's format is merely not recorded
            outcomes.append(outcome)
            continue
        try:
            audio, file_rate, channels = load_audio_with_info(
                job.wav, settings.sample_rate, min_samples=batch.min_frames * settings.hop_length
            )
            arrays = compute_features(audio, settings, filterbank)
            if not all(np.all(np.isfinite(values)) for key, values in arrays.items() if key != "audio"):
                raise BadAudioError(job.wav, "feature extraction produced NaN or infinite values")
        except BadAudioError as exc:
            outcomes.append(_Outcome(job.id, "bad", reason=exc.reason))
            continue
        buffer = io.BytesIO()
        np.savez(buffer, **arrays, fingerprint=np.array(fingerprint))
        data = buffer.getvalue()
        write_atomic(job.entry, lambda stream, data=data: stream.write(data))
        outcome = _Outcome(job.id, "repaired" if state == "damaged" else "computed",
                           frames=arrays["mel"].shape[0], bytes=len(data), crc32=zlib.crc32(data),
                           file_rate=file_rate, channels=channels)
        # moments of every utterance: which ones are train is known only once all files are read
        outcome.mel, outcome.features = _entry_moments(arrays, settings)
        outcomes.append(outcome)
    return outcomes


def _entry_moments(
    entry: Mapping[str, np.ndarray], settings: FeatureSettings
) -> tuple[_Moments, _Moments | None]:
    """Moments of an entry's log-mel and (where the cache has them) LPCNet features."""
    features = _Moments.of(entry["features"]) if settings.lpcnet_frames else None
    return _Moments.of(entry["mel"]), features


def _init_worker() -> None:
    """Pool initializer: one thread per worker process, and Ctrl-C handled by the parent only."""
    # The workers already share the cores; intra-op threads only oversubscribe them (OpenBLAS
    # with 2 threads halves the speed of the small matrix products in the LPCNet features).
    # BLAS pools were sized when numpy was imported, so the environment alone is not enough.
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[variable] = "1"
    threadpoolctl.threadpool_limits(1)
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def _outcome_stream(batches: Sequence[_Batch], num_workers: int) -> Iterator[Iterator[list[_Outcome]]]:
    """Outcomes of ``batches`` in order, from ``num_workers`` processes (0: in this process).

    The pool is started on entry (before any progress-bar thread exists, so forking is clean) and
    terminated on exit when the block ends early (error, Ctrl-C), so that no worker is still
    writing when the caller removes leftover temporary files.
    """
    if num_workers == 0 or len(batches) <= 1:
        yield map(_prepare_batch, batches)
        return
    # Numba compiles the pitch tracker on first use; doing it here once lets forked workers inherit
    # the compiled code instead of each compiling it again.
    lpcnet_features(np.random.default_rng(0).standard_normal(1600).astype(np.float32) * 0.1)
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    pool = multiprocessing.get_context(method).Pool(min(num_workers, len(batches)), initializer=_init_worker)
    try:
        yield pool.imap(_prepare_batch, batches, chunksize=1)
    except BaseException:
        pool.terminate()
        raise
    else:
        pool.close()
    finally:
        pool.join()


def _recorded_checksums(manifest: dict | None) -> dict[str, tuple[int, int]]:
    """``id → (bytes, crc32)`` of the entries a manifest recorded (none for an older manifest)."""
    known = {}
    for record in (manifest or {}).get("utterances", []):
        if not isinstance(record, dict):
            continue
        size, crc = record.get("bytes"), record.get("crc32")
        if isinstance(size, int) and isinstance(crc, int):
            known[record["id"]] = (size, crc)
    return known


def _read_manifest(path: Path) -> dict | None:
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _held_out_request(held_out_speakers: int | Sequence[str] | None) -> int | list[str] | None:
    """``held_out_speakers`` as the manifest records it (``None`` for none)."""
    if held_out_speakers is None or (isinstance(held_out_speakers, int) and held_out_speakers == 0):
        return None
    if isinstance(held_out_speakers, int):
        return held_out_speakers
    if isinstance(held_out_speakers, str):
        return [held_out_speakers]
    return sorted(str(name) for name in held_out_speakers) or None


def _current(
    manifest: dict | None,
    manifest_path: Path,
    cache_dir: Path,
    corpus: Corpus,
    utterances: Sequence[CorpusUtterance],
    fingerprint: str,
    requested: dict,
    limit: int | None,
    on_error: str,
    verify: str = "checksum",
) -> bool:
    """Whether the cache already holds exactly what was asked for, with every entry fresh and intact.

    Fresh: every entry newer than its wav (a ``stat``). Intact: every entry's size is the one the
    manifest recorded (the same ``stat``) and, with ``verify="checksum"``, so is its CRC-32 (one read
    of the cache). A manifest without sizes is never current. A manifest written before layouts and
    speakers existed is that of an ARCTIC corpus with no held-out speaker.
    """
    if manifest is None or manifest.get("version") != MANIFEST_VERSION:
        return False
    recorded = dict((manifest.get("splits") or {}).get("requested") or {})
    recorded.setdefault("held_out_speakers", None)
    if (manifest.get("fingerprint"), manifest.get("root"), manifest.get("limit"), recorded) != (
        fingerprint,
        str(corpus.root),
        limit,
        requested,
    ):
        return False
    if manifest.get("layout", "arctic") != corpus.layout:
        return False
    if on_error == "fail" and manifest.get("skipped"):
        return False
    if not (cache_dir / "stats.npz").is_file() or not all(
        (cache_dir / "splits" / f"{name}.txt").is_file() for name in SPLITS
    ):
        return False
    records = {record["id"]: record for record in manifest.get("utterances", [])}
    skipped = {record["id"] for record in manifest.get("skipped", [])}
    if set(records) | skipped != {u.id for u in utterances} or set(records) & skipped:
        return False
    checksum = verify == "checksum"

    def intact(path: Path, record: dict | None, stat: os.stat_result) -> bool:
        if not isinstance(record, dict) or not isinstance(record.get("bytes"), int) or "crc32" not in record:
            return False
        if stat.st_size != record["bytes"]:
            return False
        return not checksum or file_checksum(path) == (record["bytes"], record["crc32"])

    manifest_mtime = manifest_path.stat().st_mtime_ns
    try:
        stats_path = cache_dir / "stats.npz"
        if not intact(stats_path, manifest.get("stats"), stats_path.stat()):
            return False
        for utterance in utterances:
            if utterance.id in skipped:
                try:
                    wav_mtime = utterance.wav.stat().st_mtime_ns
                except FileNotFoundError:
                    continue  # a listed file that is still missing: still skipped
                if wav_mtime > manifest_mtime:  # a rejected file was replaced since: try it again
                    return False
                continue
            entry = cache_dir / "features" / f"{utterance.id}.npz"
            stat = entry.stat()
            if stat.st_mtime_ns < utterance.wav.stat().st_mtime_ns or not intact(entry, records[utterance.id], stat):
                return False
    except OSError:
        return False
    return True


def _result_from_manifest(
    manifest: dict, cache_dir: Path, corpus: Corpus, wall_seconds: float
) -> PreparedCorpus:
    splits = {}
    for name in SPLITS:
        text = (cache_dir / "splits" / f"{name}.txt").read_text()
        splits[name] = tuple(line.strip() for line in text.splitlines() if line.strip())
    records = manifest["utterances"]
    sample_rate = manifest["settings"]["sample_rate"]
    return PreparedCorpus(
        cache_dir=cache_dir,
        root=corpus.root,
        splits=splits,
        skipped=tuple(SkippedFile(r["id"], Path(r["wav"]), r["reason"]) for r in manifest["skipped"]),
        computed=0,
        up_to_date=len(records),
        audio_seconds=sum(r["samples"] for r in records) / sample_rate,
        computed_seconds=0.0,
        wall_seconds=wall_seconds,
        split=manifest["splits"].get("line", ""),
        corpus=corpus.describe(),
        conversion=_conversion_line(records, sample_rate),
    )


def _conversion_line(records: Sequence[Mapping], sample_rate: int) -> str:
    """One line on the files read at another rate (resampled) or with several channels (averaged)."""
    rates = Counter(int(r["file_rate"]) for r in records if r.get("file_rate") not in (None, sample_rate))
    multichannel = sum(1 for r in records if (r.get("channels") or 1) > 1)
    parts = []
    if rates:
        at = ", ".join(f"{count} at {rate} Hz" for rate, count in sorted(rates.items()))
        parts.append(f"resampled to {sample_rate} Hz (soxr HQ): {at}")
    if multichannel:
        parts.append(f"{multichannel} multi-channel files averaged to mono")
    return "files: " + "; ".join(parts) if parts else ""


def prepare_corpus(
    root: str | Path,
    cache_dir: str | Path,
    settings: FeatureSettings,
    n_eval: int | None = None,
    n_dev: int | None = None,
    num_workers: int = 2,
    on_error: str = "skip",
    limit: int | None = None,
    progress: bool | None = None,
    min_frames: int = MIN_FRAMES,
    verify: str = "checksum",
    layout: str = "auto",
    held_out_speakers: int | Sequence[str] | None = None,
) -> PreparedCorpus:
    """Compute the feature cache of a corpus (layout in the module docstring).

    The corpus is listed by :func:`vocoder.data.discover_corpus` in sorted id order (the first
    ``limit`` only, if given). Each utterance is loaded with :func:`vocoder.data.load_audio` (any
    format, channel count and rate: down-mixed and resampled to ``settings.sample_rate``) and turned
    into a cache entry by :func:`compute_features` in ``num_workers`` processes. Only then, over the
    usable utterances, is the split decided (:func:`vocoder.data.choose_split_sizes`,
    :func:`vocoder.data.split_by_speaker`), so unusable files are reported whatever the split sizes,
    and never leave a split empty. Every entry is written to a temporary file and renamed, so an
    interruption (even ``kill -9``) never leaves a partial entry, and the next call computes only
    what is missing. Entries that are fresh (same settings fingerprint, newer than their audio file)
    and intact (the size and CRC-32 the manifest recorded) are reused, damaged ones computed again and
    listed in ``repaired``; a cache that is entirely up to date returns at once. Statistics over the train
    split are accumulated in float64 while the entries stream by, so memory does not grow with the
    corpus. Concurrent calls on the same cache wait for each other.

    Args:
        root: corpus directory (or list file: ``layout="filelist"``).
        cache_dir: output directory.
        settings: feature settings (their fingerprint marks every entry).
        n_eval: eval utterances (the last ones of each speaker in id order); ``None``: chosen for the
            corpus size.
        n_dev: dev utterances (the ones before eval); ``None``: chosen for the corpus size.
        num_workers: worker processes (0: compute in this process).
        on_error: ``"skip"`` leaves unusable files out (listed in the manifest and the summary);
            ``"fail"`` stops at the first one.
        limit: prepare only the first ``limit`` utterances (quick experiments).
        progress: show a progress bar (``None``: only when stderr is a terminal).
        min_frames: files shorter than this many frames are unusable.
        verify: how a cache that looks complete is checked before it is returned as is: ``checksum``
            (the size and CRC-32 of every entry: one read of the cache) or ``size`` (a ``stat`` only;
            a damaged entry of the same size is then found when it is loaded). Entries that are
            reused after a change are always verified by their checksum.
        layout: one of :data:`vocoder.data.LAYOUTS` (``auto`` detects it).
        held_out_speakers: speakers whose utterances only the eval split holds: a number N (the last
            N speakers in sorted order) or their names; ``None``: none.

    Returns:
        A :class:`PreparedCorpus` describing the cache.

    Raises:
        CorpusError: no corpus in that layout, unknown held-out speakers, or too few usable
            utterances for the splits (the message names the unusable files).
        BadAudioError: with ``on_error="fail"``, the first unusable file (message names it).
        ValueError: invalid arguments.
    """
    started = time.perf_counter()
    if on_error not in ON_ERROR_CHOICES:
        raise ValueError(f"on_error must be one of {ON_ERROR_CHOICES}, got {on_error!r}")
    if verify not in VERIFY_CHOICES:
        raise ValueError(f"verify must be one of {VERIFY_CHOICES}, got {verify!r}")
    if num_workers < 0 or min_frames < 1 or (limit is not None and limit < 1):
        raise ValueError(f"invalid num_workers={num_workers}, min_frames={min_frames} or limit={limit}")
    cache_dir = Path(cache_dir).expanduser().absolute()
    corpus = discover_corpus(root, layout)
    root = corpus.root
    utterances = list(corpus.utterances)
    if limit is not None:
        utterances = utterances[:limit]
    split_ids([u.id for u in utterances], 0, 0)  # duplicate ids are an error before any work
    held_out_speaker_names([u.speaker for u in utterances], held_out_speakers)  # unknown names, too
    for key, value in (("n_eval", n_eval), ("n_dev", n_dev)):
        if value is not None and value < 0:
            raise ValueError(f"{key} must be >= 0 or None, got {value}")
    requested = {"n_eval": n_eval, "n_dev": n_dev, "held_out_speakers": _held_out_request(held_out_speakers)}
    fingerprint = settings.fingerprint()
    features_dir = cache_dir / "features"
    manifest_path = cache_dir / "manifest.json"

    with directory_lock(
        cache_dir, on_wait=lambda: LOG.info("waiting for another preparation of %s", cache_dir)
    ):
        features_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(features_dir)
        previous = _read_manifest(manifest_path)
        if _current(
            previous, manifest_path, cache_dir, corpus, utterances, fingerprint, requested, limit, on_error,
            verify,
        ):
            return _result_from_manifest(previous, cache_dir, corpus, time.perf_counter() - started)
        # entries made from another corpus directory may have the same ids and settings: redo them
        force = previous is not None and previous.get("root") not in (None, str(root))
        # from here on the cache is being modified: no manifest until it is complete again
        manifest_path.unlink(missing_ok=True)

        known = {} if force else _recorded_checksums(previous)
        jobs = [_Job(u.id, u.wav, features_dir / f"{u.id}.npz", force, known.get(u.id)) for u in utterances]
        batches = [
            _Batch(tuple(jobs[start : start + BATCH_SIZE]), settings, min_frames)
            for start in range(0, len(jobs), BATCH_SIZE)
        ]
        by_id = {u.id: u for u in utterances}
        records, skipped, frames_of, repaired = [], [], {}, []
        # "mel" and "features" over every usable utterance; the ones outside train come out later
        totals = {"mel": _Moments(0, 0.0, 0.0), "features": _Moments(0, 0.0, 0.0)}
        computed = up_to_date = computed_samples = 0
        try:
            with (
                _outcome_stream(batches, num_workers) as stream,
                tqdm(
                    total=len(jobs),
                    unit="utt",
                    desc="features",
                    disable=None if progress is None else not progress,
                    leave=False,
                ) as bar,
            ):
                for outcomes in stream:
                    for outcome in outcomes:
                        utterance = by_id[outcome.id]
                        if outcome.status == "bad":
                            if on_error == "fail":
                                raise BadAudioError(utterance.wav, outcome.reason)
                            skipped.append(SkippedFile(outcome.id, utterance.wav, outcome.reason))
                            continue
                        samples = outcome.frames * settings.hop_length
                        if outcome.status in ("computed", "repaired"):
                            computed += 1
                            computed_samples += samples
                            if outcome.status == "repaired":
                                repaired.append(outcome.id)
                        else:
                            up_to_date += 1
                        frames_of[outcome.id] = outcome.frames
                        records.append(
                            {
                                "id": outcome.id,
                                "wav": str(utterance.wav),
                                "frames": outcome.frames,
                                "samples": samples,
                                "text": utterance.text,
                                "speaker": utterance.speaker,
                                "file_rate": outcome.file_rate,
                                "channels": outcome.channels,
                                "bytes": outcome.bytes,
                                "crc32": outcome.crc32,
                            }
                        )
                        totals["mel"].merge(outcome.mel)
                        if outcome.features is not None:
                            totals["features"].merge(outcome.features)
                    bar.update(len(outcomes))
        finally:
            remove_stale_temporaries(features_dir)

        speaker_of = {record["id"]: record["speaker"] for record in records}
        held = held_out_speaker_names(list(speaker_of.values()), held_out_speakers)
        held_count = sum(1 for speaker in speaker_of.values() if speaker in held) if held else None
        choice = _choose_split(root, len(frames_of), n_eval, n_dev, skipped, held_count, held)
        splits = {
            name: tuple(ids)
            for name, ids in split_by_speaker(speaker_of, choice.n_eval, choice.n_dev, held).items()
        }
        moments = _train_moments(totals, splits["train"], frames_of, features_dir, settings)
        stats = {
            f"{name}_{statistic}": value.astype(np.float32)
            for name, part in moments.items()
            for statistic, value in (("mean", part.mean), ("std", part.std(STD_FLOOR)))
        }
        buffer = io.BytesIO()
        np.savez(buffer, **stats)
        stats_bytes = buffer.getvalue()
        write_atomic(cache_dir / "stats.npz", lambda stream: stream.write(stats_bytes))
        write_splits(cache_dir, splits)
        manifest = {
            "version": MANIFEST_VERSION,
            "fingerprint": fingerprint,
            "settings": asdict(settings),
            "root": str(root),
            "layout": corpus.layout,
            "limit": limit,
            "speakers": dict(sorted(Counter(speaker_of.values()).items())),
            "splits": {
                "n_eval": choice.n_eval,
                "n_dev": choice.n_dev,
                "requested": requested,
                "held_out_speakers": list(held),
                "unused": choice.unused,
                "adapted": choice.adapted,
                "line": choice.describe(),
            },
            "utterances": records,
            "skipped": [{"id": s.id, "wav": str(s.wav), "reason": s.reason} for s in skipped],
            "stats": {"bytes": len(stats_bytes), "crc32": zlib.crc32(stats_bytes)},
        }
        write_atomic(manifest_path, lambda stream: stream.write(json.dumps(manifest, indent=1).encode()))
    total_samples = sum(record["samples"] for record in records)
    return PreparedCorpus(
        cache_dir=cache_dir,
        root=root,
        splits=splits,
        skipped=tuple(skipped),
        computed=computed,
        up_to_date=up_to_date,
        audio_seconds=total_samples / settings.sample_rate,
        computed_seconds=computed_samples / settings.sample_rate,
        wall_seconds=time.perf_counter() - started,
        split=choice.describe(),
        repaired=tuple(repaired),
        corpus=corpus.describe(),
        conversion=_conversion_line(records, settings.sample_rate),
    )


def _train_moments(
    totals: dict[str, _Moments],
    train: Sequence[str],
    frames_of: Mapping[str, int],
    features_dir: Path,
    settings: FeatureSettings,
) -> dict[str, _Moments]:
    """The moments of the train split from those of every usable utterance.

    The utterances outside train are read back from their entries and taken out — or, when they
    are the more numerous (many held-out utterances), the train ones are read and summed anew.
    """
    names = ("mel", "features") if settings.lpcnet_frames else ("mel",)
    train_set = set(train)
    others = [uid for uid in frames_of if uid not in train_set]
    read_train = len(others) > len(train)
    moments = {name: _Moments(0, 0.0, 0.0) for name in names}
    for utterance_id in train if read_train else others:
        with np.load(features_dir / f"{utterance_id}.npz") as entry:
            for name in names:
                moments[name].merge(_Moments.of(entry[name]))
    if read_train:
        return moments
    return {name: totals[name].without(moments[name]) for name in names}


def _choose_split(
    root: Path,
    usable: int,
    n_eval: int | None,
    n_dev: int | None,
    skipped: Sequence[SkippedFile],
    held_out: int | None = None,
    held_out_speakers: Sequence[str] = (),
) -> SplitChoice:
    """:func:`choose_split_sizes` over the usable utterances; an error also names the unusable files."""
    try:
        return choose_split_sizes(usable, n_eval, n_dev, held_out, held_out_speakers)
    except CorpusError as error:
        if not skipped:
            raise CorpusError(f"{root}: {error}") from None
        named = ", ".join(f"{s.wav} ({s.reason})" for s in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        raise CorpusError(
            f"{root}: {error}; {len(skipped)} unusable files were left out: {named}{more}"
        ) from None


class SplitSizes(Protocol):
    """The ``splits`` section of a data config (``None``: chosen for the corpus size)."""

    n_eval: int | None
    n_dev: int | None
    held_out_speakers: Any


class DataSource(Protocol):
    """What :func:`prepare_data` reads from a data config (:class:`vocoder.config.DataConfig`)."""

    speaker: str
    root: str | None
    layout: str
    download_dir: str
    base_url: str
    cache_dir: str
    splits: SplitSizes
    num_workers: int
    on_error: str
    limit: int | None

    def feature_settings(self) -> FeatureSettings:
        """The feature settings of the section."""
        ...


def prepare_data(data: DataSource, progress: bool | None = None, verify: str = "checksum") -> PreparedCorpus:
    """Prepare the corpus a data config describes, downloading it first when ``data.root`` is unset.

    Args:
        data: a validated data config section.
        progress: show progress bars (``None``: only on a terminal).
        verify: how a complete-looking cache is verified (:func:`prepare_corpus`).

    Returns:
        The :class:`PreparedCorpus` (see :func:`prepare_corpus`).
    """
    if data.root:
        root = Path(data.root)
    else:
        root = fetch_arctic(
            data.speaker, data.download_dir, base_url=data.base_url or DEFAULT_BASE_URL, progress=progress
        )
    return prepare_corpus(
        root,
        data.cache_dir,
        data.feature_settings(),
        n_eval=data.splits.n_eval,
        n_dev=data.splits.n_dev,
        num_workers=data.num_workers,
        on_error=data.on_error,
        limit=data.limit,
        progress=progress,
        verify=verify,
        layout=getattr(data, "layout", "auto"),
        held_out_speakers=getattr(data.splits, "held_out_speakers", None),
    )


def ensure_prepared(data: DataSource, progress: bool | None = None) -> Path:
    """Make sure the feature cache of ``data`` is complete and current; return its directory.

    Returns at once (no worker processes) when the cache is up to date; otherwise prepares what is
    missing, stale or damaged and logs a summary. Entries are checked by their size only here (a
    ``stat``, whatever the corpus size); ``vocoder-prepare`` also checks their checksums, and a damaged
    entry of the right size is named when it is loaded.

    Args:
        data: a validated data config section.
        progress: show progress bars (``None``: only on a terminal).

    Returns:
        The absolute cache directory.
    """
    result = prepare_data(data, progress=progress, verify="size")
    if result.computed or result.skipped:
        LOG.info("%s", result.summary())
    return result.cache_dir
