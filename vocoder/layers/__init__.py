"""layers package."""

from vocoder.layers._dense_gru import gru_sequence, input_gates_from_tables
from vocoder.layers._discriminators import (
    DEFAULT_DISCRIMINATOR_RESOLUTIONS,
    DISCRIMINATOR_KINDS,
    SPECTRUM_KINDS,
    DiscriminatorOutput,
    Discriminators,
    MultiPeriodDiscriminator,
    MultiResolutionSTFTDiscriminator,
    ParallelWaveGANDiscriminator,
    PeriodDiscriminator,
    SpectrogramDiscriminator,
    build_discriminators,
)
from vocoder.layers._dual_softmax import DualSoftmax, join_levels, split_levels
from vocoder.layers._dualfc import DualFC
from vocoder.layers._gru_kernels import (
    SMALL_GRU_MAX_HIDDEN,
    gru_backward_step,
    gru_forward_step,
    input_gates_backward,
    input_gates_forward,
    small_gru_backward,
    small_gru_forward,
)
from vocoder.layers._int8 import (
    int8_aligned_gemv,
    int8_block_gemv,
    int8_dense_gemv,
    int8_groups_aligned,
    int8_isa,
    pack_int8_blocks,
    quantize_activations,
    quantize_activations_reference,
    quantize_rows,
)
from vocoder.layers._simd import (
    BLOCK_ROWS,
    FASTMATH,
    block_gemv,
    block_gemv2,
    block_gemv4,
    dense_gemv,
    dense_gemv2,
    dense_gemv4,
    one_like,
    pack_blocks,
    pack_dense,
    vexp,
    vsigmoid,
    vtanh,
)
from vocoder.layers._sparse_gru import gru_parameter_grads, live_blocks, sparse_gru_sequence
from vocoder.layers._sparsity import GRU_GATES, BlockSparsifier, SparseTarget
from vocoder.layers._threads import run_in_threads, split_range
from vocoder.layers._tree import tree_log_likelihood, tree_log_pdf, tree_node_table
from vocoder.layers._upsample import (
    CentredUpsampler,
    RepeatUpsampler,
    TransposedConvUpsampler,
    build_upsampler,
)
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
    # discriminators for adversarial training
    "DEFAULT_DISCRIMINATOR_RESOLUTIONS",
    "DISCRIMINATOR_KINDS",
    "SPECTRUM_KINDS",
    "DiscriminatorOutput",
    "Discriminators",
    "MultiPeriodDiscriminator",
    "MultiResolutionSTFTDiscriminator",
    "ParallelWaveGANDiscriminator",
    "PeriodDiscriminator",
    "SpectrogramDiscriminator",
    "build_discriminators",
    "gru_sequence",
    "input_gates_from_tables",
    "run_in_threads",
    "split_range",
    "GRU_GATES",
    "BlockSparsifier",
    "DualFC",
    "DualSoftmax",
    "SparseTarget",
    # WaveNet blocks and upsamplers
    "CausalConv1d",
    "CentredUpsampler",
    "LayerWeights",
    "RepeatUpsampler",
    "ResidualBlock",
    "StreamingWeights",
    "TransposedConvUpsampler",
    "WaveNetStack",
    "build_upsampler",
    "shift_right",
    "wavenet_dilations",
    # numba kernels shared by LPCNet training (models) and the fast sampler (inference)
    "BLOCK_ROWS",
    "FASTMATH",
    "block_gemv",
    "block_gemv2",
    "block_gemv4",
    "dense_gemv",
    "dense_gemv2",
    "dense_gemv4",
    "gru_backward_step",
    "gru_forward_step",
    "input_gates_backward",
    "input_gates_forward",
    "one_like",
    "pack_blocks",
    "pack_dense",
    "SMALL_GRU_MAX_HIDDEN",
    "small_gru_backward",
    "small_gru_forward",
    "vexp",
    "vsigmoid",
    "vtanh",
    # int8 × int8 → int32 products (the int8 LPCNet sampler)
    "int8_aligned_gemv",
    "int8_block_gemv",
    "int8_dense_gemv",
    "int8_groups_aligned",
    "int8_isa",
    "pack_int8_blocks",
    "quantize_activations",
    "quantize_activations_reference",
    "quantize_rows",
    # block-sparse GRU training recurrence
    "gru_parameter_grads",
    "live_blocks",
    "sparse_gru_sequence",
    # 16-bit categorical output (coarse, then fine given coarse)
    "join_levels",
    "split_levels",
    # binary-tree output over the μ-law code's bits (xiph's current LPCNet head)
    "tree_log_likelihood",
    "tree_log_pdf",
    "tree_node_table",
]
