"""Objective metrics, anchors, reports and plots."""

from vocoder.evaluation._anchors import ANCHORS, griffin_lim_from_mel, mulaw_8bit, world_resynthesis
from vocoder.evaluation._cache import CACHE_VERSION, ReferenceCache, default_cache_dir
from vocoder.evaluation._metrics import (
    PitchScores,
    ReferenceAnalysis,
    harvest_f0,
    mcep_alpha,
    mel_cepstra,
    mel_cepstral_distortion,
    pesq_wb,
    pitch_scores,
    score_pair,
    scoring_rates,
    stoi,
)
from vocoder.evaluation._plots import plot_distributions, plot_spectrograms, plot_spectrum_and_f0
from vocoder.evaluation._report import (
    METRICS,
    EvaluationError,
    evaluate_folders,
    markdown_table,
    pair_files,
    summarize,
)

__all__ = [
    "CACHE_VERSION",
    "ReferenceAnalysis",
    "ReferenceCache",
    "ANCHORS",
    "METRICS",
    "EvaluationError",
    "PitchScores",
    "default_cache_dir",
    "evaluate_folders",
    "griffin_lim_from_mel",
    "harvest_f0",
    "markdown_table",
    "mcep_alpha",
    "mel_cepstra",
    "mel_cepstral_distortion",
    "mulaw_8bit",
    "pair_files",
    "pesq_wb",
    "pitch_scores",
    "plot_distributions",
    "plot_spectrograms",
    "plot_spectrum_and_f0",
    "score_pair",
    "scoring_rates",
    "stoi",
    "summarize",
    "world_resynthesis",
]
