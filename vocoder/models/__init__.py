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
from vocoder.models._lpcnet import OUTPUT_HEADS, LPCNet
from vocoder.models._wavenet import WaveNetTeacher, freeze

__all__ = [
    "OUTPUT_HEADS",
    "LPCNet",
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
