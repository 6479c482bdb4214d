"""Objective scores of synthesized speech against the natural recording (time-aligned copy synthesis).

All functions take 1-D float waveforms at the same sample rate. The two signals are trimmed to the
shorter length (copy synthesis keeps the timing, so no warping is applied).

Rates: each score is computed where its definition puts it. Wide-band PESQ (ITU-T P.862.2) is
defined at 16 kHz: other rates are resampled to 16 kHz first (soxr ``HQ``). STOI is defined at
10 kHz: pystoi resamples to it. MCD and the pitch scores are computed at the signals' own rate, the
mel-cepstra with the all-pass constant of that rate (:func:`mcep_alpha`). :func:`scoring_rates`
says all of this in one line.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from types import ModuleType

import numpy as np

MCEP_ORDER = 24
#: The all-pass constant at 16 kHz (the value this project's 16 kHz scores always used).
MCEP_ALPHA = 0.42
FRAME_PERIOD_MS = 5.0
PESQ_RATE = 16000
#: STOI's own rate: pystoi resamples both signals to it.
STOI_RATE = 10000


def mcep_alpha(sample_rate: int) -> float:
    """The mel-cepstral all-pass constant α at ``sample_rate``: :data:`MCEP_ALPHA` at 16 kHz, else the
    one whose warping best fits the mel scale (``pysptk.util.mcepalpha``: 0.455 at 22.05 kHz, 0.466
    at 24 kHz, 0.544 at 44.1 kHz)."""
    if sample_rate == PESQ_RATE:
        return MCEP_ALPHA
    pysptk = quiet_import("pysptk")
    return round(float(pysptk.util.mcepalpha(sample_rate)), 3)


def scoring_rates(sample_rate: int) -> str:
    """One line: the rate every metric is computed at for signals at ``sample_rate``."""
    pesq = "PESQ-WB at 16 kHz" if sample_rate == PESQ_RATE else "PESQ-WB on 16 kHz copies"
    return (
        f"Scored at {sample_rate} Hz: {pesq} (P.862.2 is defined at 16 kHz), STOI at 10 kHz (its "
        f"definition), MCD (α = {mcep_alpha(sample_rate):g}) and pitch at {sample_rate} Hz."
    )

#: the scores of every report, in column order
METRICS = ("pesq_wb", "stoi", "mcd_db", "vuv_error", "gpe", "fpe_cents")
#: metrics where higher is better (the others: lower is better)
HIGHER_IS_BETTER = {"pesq_wb": True, "stoi": True}


def quiet_import(name: str) -> ModuleType:
    """Import an optional evaluation dependency without its import-time ``UserWarning``.

    pysptk and pyworld import the deprecated ``pkg_resources``; the warning would land on stderr
    of every ``vocoder-eval`` run.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return importlib.import_module(name)


def _align(reference: np.ndarray, synthesized: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    length = min(len(reference), len(synthesized))
    return (np.asarray(reference[:length], dtype=np.float64),
            np.asarray(synthesized[:length], dtype=np.float64))


def pesq_wb(reference: np.ndarray, synthesized: np.ndarray, sample_rate: int = 16000) -> float:
    """Wide-band PESQ (ITU-T P.862.2) MOS-LQO, 1.0–4.64; NaN when PESQ finds no utterance.

    P.862.2 is defined at 16 kHz only: signals at another rate are resampled to 16 kHz first.
    """
    from pesq import BufferTooShortError, NoUtterancesError, pesq

    ref, syn = _align(reference, synthesized)
    if sample_rate != PESQ_RATE:
        import soxr

        ref = soxr.resample(ref, sample_rate, PESQ_RATE, quality="HQ")
        syn = soxr.resample(syn, sample_rate, PESQ_RATE, quality="HQ")
    try:
        # pesq normalizes by the peak: all-zero input divides by zero before it raises NoUtterancesError
        with np.errstate(invalid="ignore", divide="ignore"):
            return float(pesq(PESQ_RATE, ref, syn, "wb"))
    except (NoUtterancesError, BufferTooShortError):  # silent or too short: the score does not exist
        return float("nan")


def stoi(reference: np.ndarray, synthesized: np.ndarray, sample_rate: int = 16000) -> float:
    """Short-time objective intelligibility (Taal et al. 2011), 0–1; computed at its 10 kHz (pystoi
    resamples signals at another rate)."""
    from pystoi import stoi as _stoi

    ref, syn = _align(reference, synthesized)
    return float(_stoi(ref, syn, sample_rate, extended=False))


def mel_cepstra(x: np.ndarray, sample_rate: int = 16000, order: int = MCEP_ORDER, alpha: float | None = None,
                frame_period_ms: float = FRAME_PERIOD_MS,
                fft_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Mel-cepstra ``(frames, order + 1)`` of Blackman-windowed frames, and each frame's energy in dB.

    Frames are 25 ms long every ``frame_period_ms``; ``fft_size`` grows to the next power of two
    when a frame is longer (sample rates above 40 kHz). ``alpha``: the all-pass constant
    (``None``: :func:`mcep_alpha` of the rate).
    """
    pysptk = quiet_import("pysptk")
    alpha = mcep_alpha(sample_rate) if alpha is None else alpha
    hop = int(sample_rate * frame_period_ms / 1000)
    win = int(sample_rate * 0.025)
    fft_size = max(fft_size, 1 << (win - 1).bit_length())
    padded = np.pad(x, (win // 2, win // 2))
    count = 1 + (len(padded) - win) // hop
    frames = np.lib.stride_tricks.sliding_window_view(padded, win)[::hop][:count] * np.blackman(win)
    energy_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    framed = np.zeros((count, fft_size))
    framed[:, :win] = frames
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mc = np.stack([pysptk.mcep(f, order=order, alpha=alpha, etype=1, eps=1e-8, min_det=0.0)
                       for f in framed])
    return mc, energy_db


class ReferenceAnalysis:
    """The reference's mel-cepstra and harvest F0, computed once and shared by every system scored on it.

    The metrics trim both signals to the shorter one, so the analyses are kept per trimmed length
    (usually one: the systems are as long as the reference).

    Args:
        reference: the natural waveform.
        sample_rate: its rate in Hz.
    """

    def __init__(self, reference: np.ndarray, sample_rate: int = 16000) -> None:
        self.reference = reference
        self.sample_rate = sample_rate
        self._cepstra: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._f0: dict[int, np.ndarray] = {}

    def preload(self, length: int, cepstra: tuple[np.ndarray, np.ndarray], f0: np.ndarray) -> None:
        """Take an earlier :meth:`cepstra` and :meth:`f0` of the first ``length`` samples (a disk cache)."""
        self._cepstra[length] = cepstra
        self._f0[length] = f0

    def _head(self, length: int) -> np.ndarray:
        return np.asarray(self.reference[:length], dtype=np.float64)

    def cepstra(self, length: int) -> tuple[np.ndarray, np.ndarray]:
        """:func:`mel_cepstra` of the first ``length`` samples."""
        if length not in self._cepstra:
            self._cepstra[length] = mel_cepstra(self._head(length), self.sample_rate)
        return self._cepstra[length]

    def f0(self, length: int) -> np.ndarray:
        """:func:`harvest_f0` of the first ``length`` samples."""
        if length not in self._f0:
            self._f0[length] = harvest_f0(self._head(length), self.sample_rate)
        return self._f0[length]


def mel_cepstral_distortion(reference: np.ndarray, synthesized: np.ndarray, sample_rate: int = 16000,
                            silence_db: float = 40.0, analysis: ReferenceAnalysis | None = None) -> float:
    """MCD in dB over coefficients 1–24 (α of the rate, 0.42 at 16 kHz), frames within ``silence_db``
    of the loudest kept.

    ``MCD = 10 / ln 10 · sqrt(2 Σ_d (c_d − ĉ_d)²)``, averaged over the reference's non-silent frames.
    ``analysis`` (of ``reference``) reuses the reference's cepstra across calls.
    """
    ref, syn = _align(reference, synthesized)
    mc_ref, energy = analysis.cepstra(len(ref)) if analysis else mel_cepstra(ref, sample_rate)
    mc_syn, _ = mel_cepstra(syn, sample_rate)
    speech = energy > energy.max() - silence_db
    diff = mc_ref[speech, 1:] - mc_syn[speech, 1:]
    return float(np.mean(10.0 / np.log(10.0) * np.sqrt(2.0 * np.sum(diff**2, axis=1))))


def harvest_f0(x: np.ndarray, sample_rate: int = 16000,
               frame_period_ms: float = FRAME_PERIOD_MS) -> np.ndarray:
    """WORLD harvest F0 (Hz, 0 = unvoiced) at ``frame_period_ms``."""
    pyworld = quiet_import("pyworld")

    f0, _ = pyworld.harvest(np.ascontiguousarray(x, dtype=np.float64), sample_rate,
                            f0_floor=60.0, f0_ceil=500.0, frame_period=frame_period_ms)
    return f0


@dataclass
class PitchScores:
    """V/UV error rate, gross pitch error rate (> 20 %) and fine pitch error (mean |Δ| in cents)."""

    vuv_error: float
    gross_pitch_error: float
    fine_pitch_error_cents: float


def pitch_scores(reference: np.ndarray, synthesized: np.ndarray, sample_rate: int = 16000,
                 analysis: ReferenceAnalysis | None = None) -> PitchScores:
    """Compare harvest F0 tracks of both signals (frames voiced in both for the pitch errors).

    ``analysis`` (of ``reference``) reuses the reference's F0 track across calls.
    """
    ref, syn = _align(reference, synthesized)
    f0_ref = analysis.f0(len(ref)) if analysis else harvest_f0(ref, sample_rate)
    f0_syn = harvest_f0(syn, sample_rate)
    count = min(len(f0_ref), len(f0_syn))
    f0_ref, f0_syn = f0_ref[:count], f0_syn[:count]
    voiced_ref, voiced_syn = f0_ref > 0, f0_syn > 0
    vuv = float(np.mean(voiced_ref != voiced_syn)) if count else float("nan")
    both = voiced_ref & voiced_syn
    if not both.any():
        return PitchScores(vuv, float("nan"), float("nan"))
    relative = np.abs(f0_syn[both] - f0_ref[both]) / f0_ref[both]
    gross = relative > 0.2
    cents = 1200 * np.abs(np.log2(f0_syn[both][~gross] / f0_ref[both][~gross]))
    return PitchScores(vuv, float(np.mean(gross)), float(np.mean(cents)) if cents.size else float("nan"))


def score_pair(reference: np.ndarray, synthesized: np.ndarray, sample_rate: int = 16000,
               analysis: ReferenceAnalysis | None = None) -> dict[str, float]:
    """Every metric for one utterance as a flat dict (``analysis``: see :class:`ReferenceAnalysis`)."""
    pitch = pitch_scores(reference, synthesized, sample_rate, analysis)
    return {
        "pesq_wb": pesq_wb(reference, synthesized, sample_rate),
        "stoi": stoi(reference, synthesized, sample_rate),
        "mcd_db": mel_cepstral_distortion(reference, synthesized, sample_rate, analysis=analysis),
        "vuv_error": pitch.vuv_error,
        "gpe": pitch.gross_pitch_error,
        "fpe_cents": pitch.fine_pitch_error_cents,
    }
