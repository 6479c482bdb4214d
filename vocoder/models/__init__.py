"""models package."""

from vocoder.models._autoencoder import (
    AutoencoderOutput,
    FeatureAutoencoder,
    VariationalAutoencoderOutput,
    VariationalFeatureAutoencoder,
    gaussian_kl,
    masked_mean,
)
from vocoder.models._feature_converter import FeatureConverter, frame_mask
from vocoder.models._iaf import IAFFlow, IAFStudent
from vocoder.models._lpcnet import (
    EXCITATION16_LEVELS,
    OUTPUT_HEADS,
    LPCNet,
    excitation16_decode,
    excitation16_encode,
    gru_sequence,
)
from vocoder.models._wavenet import WaveNetTeacher, freeze

__all__ = [
    "EXCITATION16_LEVELS",
    "OUTPUT_HEADS",
    "excitation16_decode",
    "excitation16_encode",
    "LPCNet",
    "gru_sequence",
    # WaveNet teacher / IAF student
    "IAFFlow",
    "IAFStudent",
    "WaveNetTeacher",
    "freeze",
    # LPCNet features -> log-mel converter (MGE)
    "FeatureConverter",
    "frame_mask",
    # feature autoencoders with length masks
    "AutoencoderOutput",
    "FeatureAutoencoder",
    "VariationalAutoencoderOutput",
    "VariationalFeatureAutoencoder",
    "gaussian_kl",
    "masked_mean",
]
