"""The metrics of a report, their labels, and the mean ± 95 % CI summary (markdown and page tables)."""

from __future__ import annotations

import math

import numpy as np

from vocoder.evaluation._metrics import METRICS, scoring_rates

#: column headers of the score tables (the arrow says which way is better)
METRIC_LABELS = {
    "pesq_wb": "PESQ-WB ↑",
    "stoi": "STOI ↑",
    "mcd_db": "MCD dB ↓",
    "vuv_error": "V/UV err ↓",
    "gpe": "GPE ↓",
    "fpe_cents": "FPE cents ↓",
}
#: metrics stored as fractions and shown in percent
PERCENT_METRICS = ("vuv_error", "gpe")


def format_score(metric: str, mean: float, half: float = math.nan) -> str:
    """``"2.31 ± 0.05"`` (V/UV and GPE in percent, ``"n/a"`` for NaN; no ``±`` part for a NaN ``half``)."""
    if math.isnan(mean):
        return "n/a"
    scale, unit = (100.0, " %") if metric in PERCENT_METRICS else (1.0, "")
    spread = "" if math.isnan(half) else f" ± {half * scale:.2f}"
    return f"{mean * scale:.2f}{spread}{unit}"


def summarize(rows: list[dict]) -> dict[str, dict[str, tuple[float, float]]]:
    """``{system: {metric: (mean, 95 % CI half-width)}}`` ignoring NaNs, systems in order of first row."""
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


def markdown_table(
    summary: dict[str, dict[str, tuple[float, float]]], utterances: int, sample_rate: int | None = None
) -> str:
    """The score table (mean ± 95 % CI) as markdown; with ``sample_rate``, a last line saying the
    rate each metric was computed at (:func:`vocoder.evaluation.scoring_rates`)."""
    header = "| system | " + " | ".join(METRIC_LABELS[m] for m in METRICS) + " |"
    lines = [f"Scores over {utterances} utterances (mean ± 95 % CI).", "", header,
             "|" + "---|" * (len(METRICS) + 1)]
    for system, metrics in summary.items():
        cells = [format_score(metric, *metrics[metric]) for metric in METRICS]
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    if sample_rate is not None:
        lines += ["", scoring_rates(sample_rate)]
    return "\n".join(lines) + "\n"
