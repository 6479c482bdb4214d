"""PNG plots for evaluation reports (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vocoder.evaluation._metrics import METRICS


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _log_spectrogram(x: np.ndarray, n_fft: int = 1024, hop: int = 160) -> np.ndarray:
    import librosa

    return librosa.amplitude_to_db(np.abs(librosa.stft(x.astype(np.float32), n_fft=n_fft, hop_length=hop)),
                                   ref=1.0, top_db=None)


def plot_spectrograms(reference: np.ndarray, synthesized: np.ndarray, sample_rate: int, path: Path,
                      title: str = "") -> Path:
    """Natural (top) vs synthesized (bottom) log spectrograms on one colour scale."""
    plt = _figure()
    ref_db, syn_db = _log_spectrogram(reference), _log_spectrogram(synthesized)
    vmax = float(ref_db.max())
    fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    extent = [0, len(reference) / sample_rate, 0, sample_rate / 2000]
    for axis, spec, label in ((axes[0], ref_db, "natural"), (axes[1], syn_db, "synthesized")):
        axis.imshow(spec, origin="lower", aspect="auto", vmin=vmax - 80, vmax=vmax, extent=extent,
                    cmap="magma")
        axis.set_ylabel("kHz")
        axis.set_title(f"{title} {label}".strip())
    axes[1].set_xlabel("seconds")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_distributions(rows: list[dict], path: Path) -> Path:
    """One box plot per metric, one box per system."""
    plt = _figure()
    systems = list(dict.fromkeys(row["system"] for row in rows))
    fig, axes = plt.subplots(1, len(METRICS), figsize=(3.2 * len(METRICS), 4))
    for axis, metric in zip(axes, METRICS, strict=True):
        data = []
        for system in systems:
            values = np.array([r[metric] for r in rows if r["system"] == system], dtype=float)
            data.append(values[np.isfinite(values)])
        axis.boxplot(data, tick_labels=systems)
        axis.set_title(metric)
        axis.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_spectrum_and_f0(reference: np.ndarray, synthesized: np.ndarray, sample_rate: int, path: Path,
                         title: str = "") -> Path:
    """Long-term average spectrum (dB) and WORLD harvest F0 contour, natural vs synthesized."""
    import scipy.signal

    from vocoder.evaluation._metrics import harvest_f0

    plt = _figure()
    fig, (spectrum_axis, f0_axis) = plt.subplots(1, 2, figsize=(12, 4))
    for wave, label in ((reference, "natural"), (synthesized, "synthesized")):
        freqs, power = scipy.signal.welch(np.asarray(wave, dtype=np.float64), fs=sample_rate, nperseg=1024)
        spectrum_axis.plot(freqs / 1000, 10 * np.log10(power + 1e-20), label=label, linewidth=1)
        f0 = harvest_f0(np.asarray(wave, dtype=np.float64), sample_rate)
        times = np.arange(len(f0)) * 0.005
        f0_axis.plot(times, np.where(f0 > 0, f0, np.nan), label=label, linewidth=1)
    spectrum_axis.set_xlabel("kHz")
    spectrum_axis.set_ylabel("dB")
    spectrum_axis.set_title(f"{title} long-term average spectrum".strip())
    f0_axis.set_xlabel("seconds")
    f0_axis.set_ylabel("F0 (Hz)")
    f0_axis.set_title(f"{title} F0 (harvest)".strip())
    for axis in (spectrum_axis, f0_axis):
        axis.legend()
        axis.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
