"""Audio loading for corpus preparation: any soundfile format/subtype, mono, resampled with soxr."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from vocoder.data._errors import BadAudioError


def load_audio(path: str | Path, sample_rate: int, min_samples: int = 1) -> np.ndarray:
    """:func:`load_audio_with_info` without the file's rate and channel count."""
    return load_audio_with_info(path, sample_rate, min_samples)[0]


def load_audio_with_info(
    path: str | Path, sample_rate: int, min_samples: int = 1
) -> tuple[np.ndarray, int, int]:
    """Read an audio file as a mono float32 waveform at ``sample_rate``.

    Every format and subtype libsndfile reads is accepted (8/16/24/32-bit PCM, float, double, ...);
    integer PCM is scaled to [-1, 1). Multi-channel audio is down-mixed by averaging the channels.
    A file at another rate is resampled with soxr's high-quality (``"HQ"``) filter, which yields
    ``round(N · sample_rate / file_rate)`` samples.

    Args:
        path: the audio file.
        sample_rate: the rate of the returned waveform, in Hz.
        min_samples: files shorter than this (after resampling) are rejected.

    Returns:
        ``(waveform, file_rate, channels)``: the waveform, shape ``(N,)``, float32; the file's own
        sample rate and channel count.

    Raises:
        BadAudioError: the file is missing, empty, not audio, corrupt, contains no samples, NaN or
            infinite samples, only zeros, or is shorter than ``min_samples``; the one-line message
            names the file and the reason.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise BadAudioError(path, "file not found") from None
    except OSError as exc:
        raise BadAudioError(path, f"cannot be read ({exc.strerror or exc})") from None
    if size == 0:
        raise BadAudioError(path, "empty file (0 bytes)")
    try:
        data, file_rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError) as exc:
        # libsndfile's message starts with "Error opening '<path>': "; keep only the reason
        detail = str(exc).split(": ", 1)[-1].strip()
        raise BadAudioError(path, f"not a readable audio file ({detail})") from None
    if data.shape[0] == 0:
        raise BadAudioError(path, "contains no audio samples")
    if not np.all(np.isfinite(data)):
        raise BadAudioError(path, "contains NaN or infinite samples")
    if not np.any(data):
        raise BadAudioError(path, "all samples are zero (silent file)")
    # averaging (not summing) keeps a downmix of full-scale channels inside [-1, 1]
    audio = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if file_rate != sample_rate:
        audio = soxr.resample(audio, file_rate, sample_rate, quality="HQ").astype(np.float32, copy=False)
    if audio.shape[0] < min_samples:
        duration_ms = 1000.0 * audio.shape[0] / sample_rate
        minimum_ms = 1000.0 * min_samples / sample_rate
        raise BadAudioError(path, f"too short ({duration_ms:.1f} ms; at least {minimum_ms:.0f} ms needed)")
    return np.ascontiguousarray(audio, dtype=np.float32), int(file_rate), int(data.shape[1])
