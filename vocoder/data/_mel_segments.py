"""Random (log-mel, waveform) segments for mel-conditioned waveform models (WaveNet teacher, IAF student).

Frame ``k`` of a cache entry's log-mel goes with samples ``[k·hop, (k+1)·hop)`` of its waveform (see
:func:`vocoder.data.compute_features`), so a segment of frames ``[a, b)`` is the waveform samples
``[a·hop, b·hop)``. Each item also carries ``history`` frames of the past before the segment, mel
and waveform alike: a causal network run over ``history + frames`` frames sees the real past of the
segment (up to its receptive field) and the loss is taken on the ``frames`` frames after it. With
``lookahead`` the items also carry that many frames after the segment (for conditioning that reads
future frames, e.g. the IAF student's centred upsampler), likewise unscored.

Before the start (and after the end) of an utterance there is silence: zero samples, and mel frames
equal to the log-mel of silence, ``log(mel_floor)`` (what the cache's analysis gives for an all-zero signal).

The mel is returned as stored in the cache (natural-log mel magnitude, not normalized): the training
modules normalize it on the fly with statistics they carry in their checkpoints, so that a frozen
teacher can be fed with its own statistics while the student uses the cache's.
"""

from __future__ import annotations

import numpy as np
import torch

from vocoder.data._datasets import CacheError, Utterance
from vocoder.data._settings import FeatureSettings
from vocoder.dsp import log_mel_spectrogram


class MelSegments(torch.utils.data.Dataset):
    """Random fixed-length log-mel / waveform segments addressed by ``(index, crop_seed)``.

    The crop seed picks the segment start (uniform over all starts that keep the ``frames`` output
    frames inside the utterance), so data order and crops are reproducible and resumable (see
    :class:`vocoder.training.ResumableSampler`).

    Args:
        utterances: prepared utterances (those shorter than ``frames`` frames are left out).
        frames: output frames per segment.
        hop_length: samples per frame.
        history: frames of past before each segment (silence before the utterance start).
        silence_mel: log-mel value of the silent frames before an utterance (``log(mel_floor)``).
        lookahead: frames after each segment (silence after the utterance end).

    Items are dicts of ``"mel"``: (n_mels, history + frames + lookahead) float32 channels-first
    log-mel, and ``"audio"``: ((history + frames + lookahead) · hop,) float32 waveform.
    """

    def __init__(
        self,
        utterances: list[Utterance],
        frames: int,
        hop_length: int,
        history: int = 0,
        silence_mel: float = float(np.log(1e-5)),
        lookahead: int = 0,
    ) -> None:
        if lookahead < 0:
            raise ValueError(f"need lookahead >= 0, got {lookahead}")
        if frames < 1 or history < 0 or hop_length < 1:
            raise ValueError(
                f"need frames >= 1, history >= 0, hop_length >= 1; got {frames}, {history}, {hop_length}"
            )
        self.utterances = [u for u in utterances if u.mel.shape[0] >= frames]
        if not self.utterances:
            raise CacheError(f"no utterance has {frames} frames; lower the segment length (loss.frames)")
        self.frames, self.hop, self.history = frames, hop_length, history
        self.silence_mel = float(silence_mel)
        self.lookahead = lookahead

    def __len__(self) -> int:
        return len(self.utterances)

    def segment(self, index: int, start: int) -> dict[str, torch.Tensor]:
        """The segment of utterance ``index`` whose output frames start at frame ``start``.

        Args:
            index: utterance index.
            start: first output frame (``0 ≤ start ≤ T - frames``).

        Returns:
            ``{"mel": (n_mels, L), "audio": (L · hop,)}`` with ``L = history + frames + lookahead``.
        """
        utt = self.utterances[index]
        total = utt.mel.shape[0]
        if not 0 <= start <= total - self.frames:
            raise IndexError(f"segment start {start} outside [0, {total - self.frames}] for {utt.id}")
        first = start - self.history
        missing = max(-first, 0)  # frames of silence before the utterance start
        last = start + self.frames + self.lookahead
        beyond = max(last - total, 0)  # frames of silence after the utterance end
        mel = utt.mel[first + missing : last - beyond]
        audio = utt.audio[(first + missing) * self.hop : (last - beyond) * self.hop]
        if missing:
            mel = np.concatenate([np.full((missing, mel.shape[1]), self.silence_mel, np.float32), mel])
            audio = np.concatenate([np.zeros(missing * self.hop, np.float32), audio])
        if beyond:
            mel = np.concatenate([mel, np.full((beyond, mel.shape[1]), self.silence_mel, np.float32)])
            audio = np.concatenate([audio, np.zeros(beyond * self.hop, np.float32)])
        return {
            "mel": torch.from_numpy(np.ascontiguousarray(mel.T, dtype=np.float32)),
            "audio": torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)),
        }

    def __getitem__(self, key) -> dict[str, torch.Tensor]:
        index, crop_seed = key if isinstance(key, tuple) else (key, 0)
        total = self.utterances[index].mel.shape[0]
        start = int(np.random.default_rng(crop_seed).integers(0, total - self.frames + 1))
        return self.segment(index, start)


def log_mel_frames(
    wave: torch.Tensor, settings: FeatureSettings, filterbank: torch.Tensor | None = None
) -> torch.Tensor:
    """Log-mel frames of waveforms exactly as the cache computes them (differentiable).

    The same analysis as :func:`vocoder.data.compute_features`: :func:`vocoder.dsp.log_mel_spectrogram`
    with the settings' STFT/mel parameters, ``center=True`` and floor ``mel_floor``, keeping the
    first ``N // hop`` frames (the centred analysis's extra last frame has no waveform frame).

    Args:
        wave: (..., N) waveform at ``settings.sample_rate``.
        settings: feature settings.
        filterbank: (n_mels, n_fft // 2 + 1) mel filter bank to reuse (built when ``None``).

    Returns:
        (..., N // hop, n_mels) natural-log mel magnitudes.
    """
    frames = wave.shape[-1] // settings.hop_length
    mel = log_mel_spectrogram(
        wave,
        sample_rate=settings.sample_rate,
        n_fft=settings.n_fft,
        hop_length=settings.hop_length,
        win_length=settings.win_length,
        n_mels=settings.n_mels,
        fmin=settings.fmin,
        fmax=settings.fmax,
        floor=settings.mel_floor,
        center=True,
        filterbank=filterbank,
    )
    return mel[..., :frames].transpose(-1, -2)
