"""Synthesis: checkpoint loading (``load``), per-family vocoders and their streams, the fast LPCNet
samplers, TorchScript and ONNX export."""

from vocoder.inference._codec import CodedVocoder, FeatureCodec
from vocoder.inference._export import (
    ONNXIAFSynthesizer,
    ONNXLPCNetFrameNetwork,
    ScriptedIAFSynthesizer,
    export_onnx,
    export_torchscript,
    onnx_bytes,
)
from vocoder.inference._lpcnet_backends import lpcnet_synthesize
from vocoder.inference._lpcnet_fast import PackedLPCNet, pack_lpcnet, synthesize_fast
from vocoder.inference._lpcnet_frames import PackedFrameNetwork, frame_network_terms, pack_frame_network
from vocoder.inference._lpcnet_int8 import PackedLPCNetInt8, pack_lpcnet_int8, synthesize_int8
from vocoder.inference._lpcnet_sampling import (
    PDF_FLOOR,
    SamplerState,
    SynthesisResult,
    sample_inverse_cdf,
    sampling_exponent,
    sampling_uniforms,
    synthesize_reference,
    tempered_distribution,
)
from vocoder.inference._stream_io import AudioWriter, FrameReader, StreamReport, stream_synthesize
from vocoder.inference._streaming import IAFStream, LPCNetStream, SynthesisStream
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
    "AudioWriter",
    "CodedVocoder",
    "FeatureCodec",
    "FrameReader",
    "IAFStream",
    "IAFVocoder",
    "LPCNetStream",
    "LPCNetVocoder",
    "ONNXIAFSynthesizer",
    "ONNXLPCNetFrameNetwork",
    "PackedFrameNetwork",
    "PackedLPCNet",
    "PackedLPCNetInt8",
    "SamplerState",
    "ScriptedIAFSynthesizer",
    "StreamReport",
    "SynthesisError",
    "SynthesisReport",
    "SynthesisResult",
    "SynthesisStream",
    "Vocoder",
    "WaveNetVocoder",
    "collect_inputs",
    "export_onnx",
    "export_torchscript",
    "frame_network_terms",
    "load",
    "onnx_bytes",
    "lpcnet_synthesize",
    "pack_frame_network",
    "pack_lpcnet",
    "pack_lpcnet_int8",
    "sample_inverse_cdf",
    "sampling_exponent",
    "sampling_uniforms",
    "stream_synthesize",
    "synthesize_fast",
    "synthesize_inputs",
    "synthesize_int8",
    "synthesize_reference",
    "tempered_distribution",
    "write_references",
]
