"""Synthesis: checkpoint loading (``load``), per-family vocoders, the fast LPCNet sampler."""

from vocoder.inference._codec import CodedVocoder, FeatureCodec
from vocoder.inference._export import ScriptedIAFSynthesizer, export_torchscript
from vocoder.inference._lpcnet_backends import lpcnet_synthesize
from vocoder.inference._lpcnet_fast import PackedLPCNet, pack_lpcnet, synthesize_fast
from vocoder.inference._lpcnet_int8 import PackedLPCNetInt8, pack_lpcnet_int8, synthesize_int8
from vocoder.inference._lpcnet_sampling import (
    PDF_FLOOR,
    SynthesisResult,
    sample_inverse_cdf,
    sampling_exponent,
    sampling_uniforms,
    synthesize_reference,
    tempered_distribution,
)
from vocoder.inference._synthesis_run import (
    SynthesisReport,
    collect_inputs,
    synthesize_inputs,
    write_references,
)
from vocoder.inference._vocoders import (
    VOCODERS,
    IAFVocoder,
    LPCNetVocoder,
    SynthesisError,
    Vocoder,
    WaveNetVocoder,
    load,
)

__all__ = [
    "PDF_FLOOR",
    "VOCODERS",
    "CodedVocoder",
    "FeatureCodec",
    "IAFVocoder",
    "LPCNetVocoder",
    "PackedLPCNet",
    "PackedLPCNetInt8",
    "ScriptedIAFSynthesizer",
    "SynthesisError",
    "SynthesisReport",
    "SynthesisResult",
    "Vocoder",
    "WaveNetVocoder",
    "collect_inputs",
    "export_torchscript",
    "load",
    "lpcnet_synthesize",
    "pack_lpcnet",
    "pack_lpcnet_int8",
    "sample_inverse_cdf",
    "sampling_exponent",
    "sampling_uniforms",
    "synthesize_fast",
    "synthesize_int8",
    "synthesize_inputs",
    "synthesize_reference",
    "tempered_distribution",
    "write_references",
]
