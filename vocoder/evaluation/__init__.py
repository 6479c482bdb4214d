"""Objective metrics, anchors, reports and plots."""

from vocoder.evaluation._anchors import ANCHORS, griffin_lim_from_mel, mulaw_8bit, world_resynthesis
from vocoder.evaluation._metrics import (
    PitchScores,
    harvest_f0,
    mel_cepstral_distortion,
    mel_cepstra,
    pesq_wb,
    pitch_scores,
    score_pair,
    stoi,
)

__all__ = [
    "ANCHORS",
    "PitchScores",
    "griffin_lim_from_mel",
    "harvest_f0",
    "mel_cepstra",
    "mel_cepstral_distortion",
    "mulaw_8bit",
    "pesq_wb",
    "pitch_scores",
    "score_pair",
    "stoi",
    "world_resynthesis",
]
