"""layers package."""

from vocoder.layers._dualfc import DualFC
from vocoder.layers._sparsity import GRU_GATES, BlockSparsifier, SparseTarget
from vocoder.layers._upsample import RepeatUpsampler, TransposedConvUpsampler, build_upsampler
from vocoder.layers._wavenet import (
    CausalConv1d,
    LayerWeights,
    ResidualBlock,
    StreamingWeights,
    WaveNetStack,
    shift_right,
    wavenet_dilations,
)

__all__ = [
    "GRU_GATES",
    "BlockSparsifier",
    "DualFC",
    "SparseTarget",
    # WaveNet blocks and upsamplers
    "CausalConv1d",
    "LayerWeights",
    "RepeatUpsampler",
    "ResidualBlock",
    "StreamingWeights",
    "TransposedConvUpsampler",
    "WaveNetStack",
    "build_upsampler",
    "shift_right",
    "wavenet_dilations",
]
