"""Objective metrics, anchors, reports, plots and the listening page."""

from vocoder.evaluation._anchors import ANCHORS, griffin_lim_from_mel, mulaw_8bit, world_resynthesis
from vocoder.evaluation._cache import CACHE_VERSION, ReferenceCache, default_cache_dir
from vocoder.evaluation._metrics import (
    METRICS,
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
from vocoder.evaluation._page import NATURAL, write_listening_page
from vocoder.evaluation._plots import plot_distributions, plot_spectrograms, plot_spectrum_and_f0
from vocoder.evaluation._report import (
    DEFAULT_SYSTEM,
    EvaluationError,
    evaluate_folders,
    pair_files,
    synthesized_systems,
)
from vocoder.evaluation._summary import markdown_table, summarize

__all__ = [
    "CACHE_VERSION",
    "ReferenceAnalysis",
    "ReferenceCache",
    "ANCHORS",
    "DEFAULT_SYSTEM",
    "METRICS",
    "NATURAL",
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
    "synthesized_systems",
    "world_resynthesis",
    "write_listening_page",
]
