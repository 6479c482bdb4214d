"""8-bit LPCNet synthesis: the int8 products, their packing, and the sampler vs a float64 reference."""

import numpy as np
import pytest
import torch
from numba import njit

from vocoder.dsp import lpc_from_cepstrum, mulaw_decode, mulaw_encode
from vocoder.inference import (
    lpcnet_synthesize,
    pack_lpcnet_int8,
    synthesize_fast,
    synthesize_int8,
)
from vocoder.inference._lpcnet_sampling import TREE_FLOOR, prepare_synthesis
from vocoder.layers import (
    BlockSparsifier,
    int8_block_gemv,
    int8_dense_gemv,
    int8_isa,
    pack_int8_blocks,
    quantize_activations,
    quantize_activations_reference,
    quantize_rows,
)
from vocoder.layers._int8 import (
    int8_aligned_gemv,
    int8_aligned_gemv_avx2,
    int8_aligned_gemv_vnni,
    int8_block_gemv_avx2,
    int8_block_gemv_generic,
    int8_block_gemv_vnni,
    int8_dense_gemv_avx2,
    int8_dense_gemv_vnni,
    int8_groups_aligned,
)
from vocoder.models import LPCNet


def _features(batch: int, frames: int, seed: int = 0) -> np.ndarray:
    """Plausible raw LPCNet features (xiph's layout for the pitch)."""
    rng = np.random.default_rng(seed)
    features = np.zeros((batch, frames, 20))
    features[..., :18] = rng.normal(0.0, 1.0, (batch, frames, 18))
    features[..., 0] += 8.0
    features[..., 18] = (rng.uniform(32.0, 256.0, (batch, frames)) - 100.0) / 50.0
    features[..., 19] = rng.uniform(-0.5, 0.5, (batch, frames))
    return features


def _caller(product):
    """A numba function calling ``product`` (numba-only functions and intrinsics) once."""

    @njit
    def call(row_ptr, col_idx, weights, row_sum, xq, scale, y):
        product(row_ptr, col_idx, weights, row_sum, xq, scale, y)

    return call


# (gather, dense, aligned) products
PRODUCTS = {
    "generic": (int8_block_gemv_generic, int8_block_gemv_generic, int8_block_gemv_generic),
    "auto": (int8_block_gemv, int8_dense_gemv, int8_aligned_gemv),
}
# every product the compile target can run: the AVX2 one also on AVX-512 machines
if int8_isa() in ("avx2", "avx512vnni"):
    PRODUCTS["avx2"] = (int8_block_gemv_avx2, int8_dense_gemv_avx2, int8_aligned_gemv_avx2)
if int8_isa() == "avx512vnni":
    PRODUCTS["avx512vnni"] = (int8_block_gemv_vnni, int8_dense_gemv_vnni, int8_aligned_gemv_vnni)


# ------------------------------------------------------------------------------ int8 arithmetic
def test_quantize_rows_scale_and_error():
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(20, 33))
    matrix[3] = 0.0
    quantized, scale = quantize_rows(matrix)
    assert quantized.dtype == np.int8 and np.abs(quantized).max() == 127
    np.testing.assert_allclose(scale, np.abs(matrix).max(axis=1) / 127)
    assert np.all(quantized[3] == 0) and scale[3] == 0
    error = np.abs(quantized * scale[:, None] - matrix)
    assert np.all(error <= scale[:, None] / 2 + 1e-15)


def test_quantize_activations_matches_reference():
    x = np.concatenate([np.linspace(-1, 1, 1001), [0.5 / 127, -0.5 / 127, 1.5 / 127]])
    expected = quantize_activations_reference(x)
    assert expected.min() == -127 and expected.max() == 127

    @njit
    def run(x, out):
        quantize_activations(x, out)

    out = np.zeros(x.shape[0], np.int8)
    run(x, out)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("density", [0.0, 0.1, 1.0])
def test_pack_int8_blocks_layout(density):
    rng = np.random.default_rng(1)
    rows, cols = 40, 23  # padded rows; a column count that is not a multiple of four
    keep = rng.random((3, cols)) < density
    matrix = rng.integers(-127, 128, (rows, cols)).astype(np.int8)
    matrix *= np.repeat(keep, 16, axis=0)[:rows].astype(np.int8)
    row_ptr, col_idx, weights, row_sum = pack_int8_blocks(matrix)
    assert row_ptr.dtype == np.int32 and col_idx.dtype == np.int32 and weights.dtype == np.int8
    assert row_sum.dtype == np.int32 and row_sum.shape == (48,)
    np.testing.assert_array_equal(row_sum[:rows], matrix.astype(np.int64).sum(axis=1))
    np.testing.assert_array_equal(row_sum[rows:], 0)
    # 64 zero entries after the last group's columns (the AVX-512 product reads 16 groups at once)
    assert col_idx.shape == (4 * row_ptr[-1] + 64,) and np.all(col_idx[4 * row_ptr[-1]:] == 0)
    rebuilt = np.zeros((48, cols), np.int64)
    for block_row in range(3):
        for group in range(row_ptr[block_row], row_ptr[block_row + 1]):
            block = weights[64 * group : 64 * group + 64].reshape(16, 4)
            for k in range(4):
                rebuilt[16 * block_row : 16 * block_row + 16, col_idx[4 * group + k]] += block[:, k]
    np.testing.assert_array_equal(rebuilt[:rows], matrix)
    # only live blocks are stored (groups of four, padded)
    live = np.any(np.vstack([matrix, np.zeros((8, cols), np.int8)]).reshape(3, 16, cols) != 0, axis=1)
    assert row_ptr[-1] == sum(-(-int(n) // 4) for n in live.sum(axis=1))


@pytest.mark.parametrize("name", sorted(PRODUCTS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cols,density", [(96, 0.3), (300, 0.9)])  # ≤ 16 and > 16 groups per block row;
def test_int8_products_are_exact(name, dtype, cols, density):  # 300: not a multiple of 128 (permute chunks)
    sparse_product, dense_product, aligned_product = (_caller(p) for p in PRODUCTS[name])
    rng = np.random.default_rng(2)
    rows = 64
    keep = rng.random((4, cols)) < density
    quantized = rng.integers(-127, 128, (rows, cols)).astype(np.int8) * np.repeat(keep, 16, 0).astype(np.int8)
    xq = rng.integers(-127, 128, cols).astype(np.int8)
    expected = quantized.astype(np.int64) @ xq.astype(np.int64)
    # sparse: y += 1 · acc (exact in float32 too: |acc| < 2^24)
    y = np.full(rows, 0.0, dtype)
    sparse_product(*pack_int8_blocks(quantized), xq, np.ones(rows, dtype), y)
    np.testing.assert_array_equal(y, expected)
    # dense, with the extreme values: every pair of products at ±127·127 (saturates a naive pmaddubsw)
    extreme = np.where(rng.random((rows, cols)) < 0.5, 127, -127).astype(np.int8)
    x_extreme = np.where(rng.random(cols) < 0.5, 127, -127).astype(np.int8)
    y = np.full(rows, 0.5, dtype)
    dense_product(*pack_int8_blocks(extreme, np.ones((4, cols), bool)), x_extreme, np.ones(rows, dtype), y)
    np.testing.assert_array_equal(y, extreme.astype(np.int64) @ x_extreme.astype(np.int64) + 0.5)
    # aligned: blocks kept in runs of four columns (16×4 pruning); the last run may end the matrix
    keep4 = np.repeat(rng.random((4, -(-cols // 4))) < density, 4, axis=1)[:, :cols]
    keep4[:, -4:] = True
    quantized4 = rng.integers(-127, 128, (rows, cols)).astype(np.int8)
    quantized4 *= np.repeat(keep4, 16, 0).astype(np.int8)
    packed4 = pack_int8_blocks(quantized4, keep4)
    assert int8_groups_aligned(packed4[0], packed4[1])
    y = np.full(rows, -1.0, dtype)
    aligned_product(*packed4, xq, np.ones(rows, dtype), y)
    np.testing.assert_array_equal(y, quantized4.astype(np.int64) @ xq.astype(np.int64) - 1.0)


def test_int8_groups_aligned_detects_the_layout():
    rng = np.random.default_rng(3)
    keep = np.zeros((2, 32), bool)
    keep[0, 8:16] = keep[1, 0:4] = keep[1, 20:24] = True
    quantized = rng.integers(1, 127, (32, 32)).astype(np.int8)
    row_ptr, col_idx, _, _ = pack_int8_blocks(quantized, keep)
    assert int8_groups_aligned(row_ptr, col_idx)
    keep[1, 20:24] = False
    keep[1, 21:25] = True  # a run of four that does not start at a multiple of 4
    row_ptr, col_idx, _, _ = pack_int8_blocks(quantized, keep)
    assert not int8_groups_aligned(row_ptr, col_idx)
    keep[1, 21:25] = False
    keep[1, 20:23] = True  # a run of three: the padded group repeats a column
    row_ptr, col_idx, _, _ = pack_int8_blocks(quantized, keep)
    assert not int8_groups_aligned(row_ptr, col_idx)


# ----------------------------------------------------------------------- synthesis vs reference
def _pruned_test_model(block: tuple[int, int]) -> LPCNet:
    """GRU_A 64 pruned in ``block`` blocks to 25 % density, float64, with a lively output distribution."""
    torch.manual_seed(0)
    model = LPCNet(gru_a_size=64, gru_b_size=16).double()
    with torch.no_grad():
        model.dual_fc.scale.mul_(4.0)
        model.gru_a.weight_hh_l0.mul_(3.0)  # states that use the whole [-1, 1] range
    model.set_normalization(torch.tensor([8.0] + [0.0] * 19), torch.ones(20))
    sparsifier = BlockSparsifier.for_gru(model.gru_a, {"update": 0.25, "reset": 0.25, "candidate": 0.25},
                                         start=0, end=1, block=block)
    sparsifier.step(1)
    return model


@pytest.fixture(scope="module")
def sparse_model() -> LPCNet:
    """Pruned in LPCNet's 16×1 blocks."""
    return _pruned_test_model((16, 1))


@pytest.fixture(scope="module")
def aligned_model() -> LPCNet:
    """Pruned in 16×4 blocks (runs of four columns, as xiph's 8-bit build)."""
    return _pruned_test_model((16, 4))


def test_int8_aligned_model_takes_the_aligned_product_sample_exact(aligned_model, sparse_model):
    features = _features(2, 5, seed=7)
    lpc = lpc_from_cepstrum(features[..., :18], order=16)
    packed = pack_lpcnet_int8(aligned_model, np.float64)
    assert packed.a_aligned and packed.density == pytest.approx(0.25, abs=0.02)
    assert not pack_lpcnet_int8(sparse_model, np.float64).a_aligned  # 16×1 pruning: the gather
    result = synthesize_int8(aligned_model, features, lpc=lpc, seed=5, dtype=np.float64, packed=packed)
    expected = int8_reference(aligned_model, features, lpc, seed=5, pdf_floor=0.002)
    np.testing.assert_array_equal(result.excitation, expected)
    assert len(np.unique(expected)) > 20


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _tree_walk(logits: np.ndarray, power: float, u: float) -> int:
    """The ``tree`` head's one-uniform walk, in float64 numpy: p1 = clip(σ(α·logit), f, 1 − f) per node."""
    code = 0
    for level in range(int(np.log2(logits.shape[0]))):
        p1 = 1.0 / (1.0 + np.exp(-power * logits[(1 << level) | code]))
        p1 = min(max(p1, TREE_FLOOR), 1.0 - TREE_FLOOR)
        p0 = 1.0 - p1
        bit = int(u >= p0)
        u = min(max((u - p0) / p1 if bit else u / p0, 0.0), float(np.nextafter(1.0, 0.0)))
        code = 2 * code + bit
    return code


def int8_reference(model: LPCNet, features: np.ndarray, lpc: np.ndarray, seed: int,
                   pdf_floor: float, dual_fc: str = "int8") -> np.ndarray:
    """float64 numpy loop of the int8 arithmetic (quantized weights taken from the model directly).

    ``dual_fc="int8"``: the DualFC product with per-row int8 weights on GRU_B's quantized state. A
    model with the ``tree`` head samples by the tree walk (all DualFC rows computed here, the kernel
    computes the 8 visited nodes').

    Returns:
        ``(B, N)`` excitation codes.
    """
    inputs = prepare_synthesis(model, features, lpc, seed)
    tables = inputs.tables.detach().double().numpy()
    a_frame, b_frame = inputs.a_frame.detach().numpy(), inputs.b_frame.detach().numpy()
    hidden_a, hidden_b = model.gru_a.hidden_size, model.gru_b.hidden_size
    levels, bits, hop = model.n_levels, model.mulaw_bits, model.hop_length
    quantizer = model.mulaw_quantizer

    def numpy(tensor):
        return tensor.detach().double().numpy().copy()

    w_hh_a = numpy(model.gru_a.weight_hh_l0)
    rows = np.arange(3 * hidden_a)
    diagonal = w_hh_a[rows, rows % hidden_a].copy()
    w_hh_a[rows, rows % hidden_a] = 0.0
    matrices = [w_hh_a, numpy(model.gru_b.weight_ih_l0[:, :hidden_a]), numpy(model.gru_b.weight_hh_l0)]
    (q_a, s_a), (q_bi, s_bi), (q_br, s_br) = (quantize_rows(m) for m in matrices)
    b_a, b_b = numpy(model.gru_a.bias_hh_l0), numpy(model.gru_b.bias_hh_l0)
    fc_w = numpy(model.dual_fc.weight).reshape(2 * levels, -1)
    q_fc, s_fc = quantize_rows(fc_w)
    fc_b, fc_s = numpy(model.dual_fc.bias).reshape(-1), numpy(model.dual_fc.scale).reshape(-1)

    def product(quantized, scale, xq):
        return (quantized.astype(np.int64) @ xq) * (scale / 127.0)

    def gru(x, gh, h):
        size = h.shape[0]
        r = _sigmoid(x[:size] + gh[:size])
        z = _sigmoid(x[size : 2 * size] + gh[size : 2 * size])
        n = np.tanh(x[2 * size :] + r * gh[2 * size :])
        return n + z * (h - n)

    batch, frames, _ = features.shape
    codes = np.zeros((batch, frames * hop), np.int64)
    for u in range(batch):
        h_a, h_b = np.zeros(hidden_a), np.zeros(hidden_b)
        xq_a, xq_b = np.zeros(hidden_a, np.int64), np.zeros(hidden_b, np.int64)
        history = np.zeros(model.lpc_order)
        code = levels // 2
        for t in range(frames * hop):
            f = t // hop
            predicted = -(inputs.lpc[u, f] * history).sum()
            x_a = (a_frame[u, f] + tables[0, mulaw_encode(history[0], bits, quantizer)]
                   + tables[1, mulaw_encode(predicted, bits, quantizer)] + tables[2, code])
            h_a = gru(x_a, b_a + diagonal * np.tile(h_a, 3) + product(q_a, s_a, xq_a), h_a)
            xq_a = quantize_activations_reference(h_a)
            x_b = b_frame[u, f] + product(q_bi, s_bi, xq_a)
            h_b = gru(x_b, b_b + product(q_br, s_br, xq_b), h_b)
            xq_b = quantize_activations_reference(h_b)
            fc_product = product(q_fc, s_fc, xq_b) if dual_fc == "int8" else fc_w @ h_b
            branches = np.tanh(fc_product + fc_b) * fc_s
            logits = branches[:levels] + branches[levels:]
            if model.output_head == "tree":
                code = _tree_walk(logits, inputs.exponent[u, f], inputs.uniforms[u, t])
                sample = predicted + float(mulaw_decode(np.int64(code), bits, quantizer))
                history = np.concatenate([[sample], history[:-1]])
                codes[u, t] = code
                continue
            weights = np.exp(inputs.exponent[u, f] * (logits - logits.max()))
            weights = np.maximum(weights / weights.sum() - pdf_floor, 0.0)
            cdf = np.cumsum(weights)
            code = min(int(np.searchsorted(cdf, inputs.uniforms[u, t] * cdf[-1], side="right")), levels - 1)
            sample = predicted + float(mulaw_decode(np.int64(code), bits, quantizer))
            history = np.concatenate([[sample], history[:-1]])
            codes[u, t] = code
    return codes


@pytest.mark.parametrize("dual_fc", ["int8", "float"])
def test_int8_path_equals_float64_reference_sample_for_sample(sparse_model, dual_fc):
    features = _features(3, 6, seed=4)
    lpc = lpc_from_cepstrum(features[..., :18], order=16)
    packed = pack_lpcnet_int8(sparse_model, np.float64)
    assert packed.density == pytest.approx(0.25, abs=0.01)
    result = synthesize_int8(sparse_model, features, lpc=lpc, seed=3, dtype=np.float64, packed=packed,
                             dual_fc=dual_fc)
    expected = int8_reference(sparse_model, features, lpc, seed=3, pdf_floor=0.002, dual_fc=dual_fc)
    np.testing.assert_array_equal(result.excitation, expected)
    assert len(np.unique(expected)) > 20  # not degenerate
    # quantization changes the samples: the int8 path is not the float path in disguise
    float_path = synthesize_fast(sparse_model, features, lpc=lpc, seed=3)
    assert not np.array_equal(float_path.excitation, result.excitation)
    # threads split the batch without changing anything
    threaded = synthesize_int8(sparse_model, features, lpc=lpc, seed=3, dtype=np.float64, threads=2,
                               dual_fc=dual_fc)
    np.testing.assert_array_equal(threaded.excitation, expected)


@pytest.mark.parametrize("dual_fc", ["int8", "float"])
def test_int8_tree_head_equals_float64_reference_sample_for_sample(dual_fc):
    model = _pruned_test_model((16, 4))
    tree = LPCNet(gru_a_size=64, gru_b_size=16, output_head="tree").double()
    tree.load_state_dict(model.state_dict())
    with torch.no_grad():
        tree.dual_fc.weight.mul_(3.0)  # some decisions past the floor
    features = _features(2, 4, seed=8)
    lpc = lpc_from_cepstrum(features[..., :18], order=16)
    packed = pack_lpcnet_int8(tree, np.float64)
    assert packed.tree and packed.a_aligned
    result = synthesize_int8(tree, features, lpc=lpc, seed=6, dtype=np.float64, packed=packed,
                             dual_fc=dual_fc)
    expected = int8_reference(tree, features, lpc, seed=6, pdf_floor=0.002, dual_fc=dual_fc)
    np.testing.assert_array_equal(result.excitation, expected)
    assert len(np.unique(expected)) > 20
    # not the softmax head's samples, nor the float tree's
    assert not np.array_equal(expected, int8_reference(model, features, lpc, seed=6, pdf_floor=0.002,
                                                       dual_fc=dual_fc))
    assert not np.array_equal(synthesize_fast(tree, features, lpc=lpc, seed=6).excitation, expected)


def test_int8_dual_fc_setting_changes_the_arithmetic_and_a_bad_value_is_one_line(sparse_model):
    features = _features(1, 4, seed=6)
    results = [synthesize_int8(sparse_model, features, seed=2, dtype=np.float64, dual_fc=fc).excitation
               for fc in ("int8", "float")]
    assert not np.array_equal(*results)  # the DualFC product really is quantized in one of them
    with pytest.raises(ValueError, match="dual_fc must be 'int8' or 'float'"):
        synthesize_int8(sparse_model, features, dual_fc="int4")


def test_int8_float32_and_backend_option(sparse_model):
    features = _features(1, 4, seed=5)
    model32 = LPCNet(gru_a_size=64, gru_b_size=16)
    model32.load_state_dict({k: v.float() for k, v in sparse_model.state_dict().items()})
    wave = lpcnet_synthesize(model32, features[0], seed=1, backend="int8")
    assert wave.shape == (640,) and wave.dtype == np.float32 and np.abs(wave).max() <= 1.0
    direct = synthesize_int8(model32, features, seed=1)
    np.testing.assert_array_equal(direct.waveform[0], wave)
    assert len(np.unique(direct.excitation)) > 20
    xiph = lpcnet_synthesize(model32, features[0], seed=1, backend="int8_xiph")
    split = synthesize_int8(model32, features, seed=1, dual_fc="float")
    np.testing.assert_array_equal(split.waveform[0], xiph)
    assert not np.array_equal(xiph, wave)


def test_int8_gemv_called_from_python_runs_the_exact_portable_product():
    from vocoder.layers._int8 import int8_block_gemv, pack_int8_blocks

    rng = np.random.default_rng(5)
    q = rng.integers(-127, 128, (32, 8)).astype(np.int8)
    x = rng.integers(-127, 128, 8).astype(np.int8)
    y = np.zeros(32)
    int8_block_gemv(*pack_int8_blocks(q), x, np.ones(32), y)
    np.testing.assert_array_equal(y, q.astype(np.int64) @ x.astype(np.int64))


def test_int8_rejects_fewer_than_16_levels_in_one_line():
    model = LPCNet(gru_a_size=32, gru_b_size=16, mulaw_bits=3)
    with pytest.raises(ValueError, match="multiple of 16 μ-law levels.*backend='fast'"):
        synthesize_int8(model, _features(1, 2))
