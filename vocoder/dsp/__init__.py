"""Pure signal processing: μ-law, emphasis, STFT/mel, Bark cepstrum, pitch, LPC.

No ``torch.nn`` state lives here; functions take arrays/tensors and return arrays/tensors.
"""

from vocoder.dsp._bark import bark_cepstrum, lpc_from_cepstrum
from vocoder.dsp._emphasis import DEFAULT_ALPHA, deemphasis, preemphasis
from vocoder.dsp._excitation16 import EXCITATION16_LEVELS, excitation16_decode, excitation16_encode
from vocoder.dsp._lpc import levinson_durbin, lpc_predict
from vocoder.dsp._lpc_torch import lpc_predict_torch
from vocoder.dsp._lpcnet_features import (
    FEATURES_VERSION,
    NB_FEATURES,
    lpcnet_features,
    period_from_feature,
    period_to_feature,
    xiph_pitch_correlation,
)
from vocoder.dsp._mulaw import (
    MULAW_QUANTIZERS,
    mulaw_code_values,
    mulaw_compress,
    mulaw_decision_levels,
    mulaw_decode,
    mulaw_encode,
    mulaw_expand,
)
from vocoder.dsp._pitch import pitch_track
from vocoder.dsp._spectral import log_mel_spectrogram, mel_filterbank, mel_spectrogram, stft

__all__ = [
    "EXCITATION16_LEVELS",
    "excitation16_decode",
    "excitation16_encode",
    "DEFAULT_ALPHA",
    "FEATURES_VERSION",
    "NB_FEATURES",
    "bark_cepstrum",
    "deemphasis",
    "levinson_durbin",
    "log_mel_spectrogram",
    "lpc_from_cepstrum",
    "lpc_predict",
    "lpc_predict_torch",
    "lpcnet_features",
    "mel_filterbank",
    "mel_spectrogram",
    "MULAW_QUANTIZERS",
    "mulaw_code_values",
    "mulaw_compress",
    "mulaw_decision_levels",
    "mulaw_decode",
    "mulaw_encode",
    "mulaw_expand",
    "period_from_feature",
    "period_to_feature",
    "pitch_track",
    "preemphasis",
    "stft",
    "xiph_pitch_correlation",
]
