"""LPCNet: DualFC, model shapes/causality, the CPU recurrence, sampling, and fast vs reference synthesis."""

import math

import numpy as np
import pytest
import torch
from numba import njit
from torch import nn

import vocoder.layers._dense_gru as dense_gru_module
from vocoder.dsp import (
    deemphasis,
    lpc_from_cepstrum,
    lpc_predict,
    mulaw_decision_levels,
    mulaw_decode,
    mulaw_encode,
)
from vocoder.inference import (
    lpcnet_synthesize,
    pack_lpcnet,
    sample_inverse_cdf,
    sampling_exponent,
    sampling_uniforms,
    synthesize_fast,
    synthesize_reference,
    tempered_distribution,
)
from vocoder.inference._lpcnet_kernels import mulaw_encode_one
from vocoder.layers import BlockSparsifier, DualFC, gru_sequence, input_gates_from_tables
from vocoder.layers._simd import (
    FASTMATH,
    block_gemv,
    block_gemv2,
    block_gemv4,
    dense_gemv,
    dense_gemv2,
    dense_gemv4,
    pack_blocks,
    pack_dense,
    vexp,
    vsigmoid,
    vtanh,
)
from vocoder.models import LPCNet

SMALL = {"gru_a_size": 32, "gru_b_size": 16, "frame_channels": 24, "sample_embedding_size": 16,
         "pitch_embedding_size": 8}


def _features(batch: int, frames: int, seed: int = 0) -> np.ndarray:
    """Plausible raw LPCNet features: cepstra, period 32–256 samples, correlation 0–1."""
    rng = np.random.default_rng(seed)
    features = np.zeros((batch, frames, 20))
    features[..., :18] = rng.normal(0.0, 1.0, (batch, frames, 18))
    features[..., 0] += 8.0
    features[..., 18] = (rng.uniform(32.0, 256.0, (batch, frames)) - 100.0) / 50.0  # xiph's (T − 100)/50
    features[..., 19] = rng.uniform(-0.5, 0.5, (batch, frames))  # xiph's g − 0.5
    return features


def _codes(batch: int, n: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    return tuple(torch.randint(0, 256, (batch, n), generator=generator) for _ in range(3))


# ----------------------------------------------------------------------------------------- DualFC
def test_dualfc_against_hand_computation():
    torch.manual_seed(0)
    layer = DualFC(5, 7).double()
    with torch.no_grad():
        layer.bias.normal_()
        layer.scale.normal_()
    x = torch.randn(2, 3, 5, dtype=torch.float64)
    out = layer(x)
    assert out.shape == (2, 3, 7)
    w, b, a = (p.detach().numpy() for p in (layer.weight, layer.bias, layer.scale))
    xn = x.numpy()
    expected = sum(a[c] * np.tanh(xn @ w[c].T + b[c]) for c in range(2))
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-13, atol=1e-14)


def _dualfc_reference(layer: DualFC, x: torch.Tensor) -> torch.Tensor:
    """The layer's plain torch expression (what the fused CPU training path replaces)."""
    out = layer.out_features
    hidden = torch.tanh(torch.nn.functional.linear(x, layer.weight.reshape(2 * out, -1), layer.bias.reshape(2 * out)))
    return (hidden.unflatten(-1, (2, out)) * layer.scale).sum(-2)


@pytest.mark.parametrize(("dtype", "rtol"), [(torch.float64, 1e-12), (torch.float32, 2e-5)])
@pytest.mark.parametrize("threads", [1, 2])
def test_dualfc_fused_training_path_equals_torch_expression(dtype, rtol, threads):
    torch.manual_seed(3)
    layer = DualFC(16, 256).to(dtype)
    with torch.no_grad():
        layer.bias.normal_()
        layer.scale.uniform_(0.5, 1.5)
    x = torch.randn(3, 41, 16, dtype=dtype, requires_grad=True)
    grad = torch.randn(3, 41, 256, dtype=dtype)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)  # the row range is split over this many threads
    try:
        out = layer(x)
        grads = torch.autograd.grad(out, [x, layer.weight, layer.bias, layer.scale], grad)
    finally:
        torch.set_num_threads(previous)
    reference = _dualfc_reference(layer, x)
    expected = torch.autograd.grad(reference, [x, layer.weight, layer.bias, layer.scale], grad)
    assert out.shape == reference.shape
    torch.testing.assert_close(out, reference, rtol=rtol, atol=rtol)
    for name, value, wanted in zip(("x", "weight", "bias", "scale"), grads, expected, strict=True):
        assert value.shape == wanted.shape, name
        torch.testing.assert_close(value, wanted, rtol=rtol, atol=rtol * wanted.abs().max().item(), msg=name)


def test_dualfc_fused_function_gradcheck():
    from vocoder.layers._dualfc import _DualFCFunction

    generator = torch.Generator().manual_seed(4)
    inputs = [torch.randn(shape, dtype=torch.float64, generator=generator, requires_grad=True)
              for shape in ((6, 5), (14, 5), (14,), (2, 7))]
    assert torch.autograd.gradcheck(_DualFCFunction.apply, inputs)


def test_dualfc_takes_the_fused_path_only_when_training_on_the_cpu(monkeypatch):
    from vocoder.layers import _dualfc

    calls = []
    original = _dualfc._DualFCFunction.apply
    monkeypatch.setattr(_dualfc._DualFCFunction, "apply", lambda *a: calls.append(1) or original(*a))
    layer = DualFC(4, 8)
    x = torch.randn(2, 3, 4)
    layer(x)
    assert len(calls) == 1
    with torch.no_grad():  # synthesis and evaluation: the torch expression
        torch.testing.assert_close(layer(x), _dualfc_reference(layer, x), rtol=0, atol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        layer(x)
    assert len(calls) == 1


def test_dualfc_initialization():
    layer = DualFC(16, 256)
    assert torch.all(layer.scale == 1) and torch.all(layer.bias == 0)
    assert layer.weight.abs().max() <= math.sqrt(6 / (16 + 256))


# ------------------------------------------------------------------------------------ the model
@pytest.mark.parametrize(("batch", "frames"), [(1, 1), (3, 4)])
def test_model_shapes(batch, frames):
    model = LPCNet(**SMALL)
    generator = torch.Generator().manual_seed(1)
    features = torch.from_numpy(_features(batch, frames + 4)).float()
    signal_in, prediction, excitation_in = _codes(batch, frames * 160, generator)
    logits = model(features, signal_in, prediction, excitation_in)
    assert logits.shape == (batch, frames * 160, 256)
    conditioning = model.frame_rate_network(features)
    assert conditioning.shape == (batch, frames, 24)
    _, (h_a, h_b) = model.sample_rate_network(conditioning, signal_in, prediction, excitation_in)
    assert h_a.shape == (batch, 32) and h_b.shape == (batch, 16)
    with pytest.raises(ValueError, match="must be"):
        model(features, signal_in[:, :-1], prediction, excitation_in)


def test_paper_size_defaults_and_config_roundtrip():
    model = LPCNet()
    assert model.gru_a.input_size == 3 * 128 + 128 and model.gru_a.hidden_size == 384
    assert model.gru_b.input_size == 384 + 128 and model.gru_b.hidden_size == 16
    assert model.pitch_embedding.weight.shape == (256, 64)
    assert model.sample_embedding.weight.shape == (256, 128)
    assert model.frame_context == 2
    small = LPCNet(**SMALL)
    rebuilt = LPCNet(**small.config)
    rebuilt.load_state_dict(small.state_dict())
    assert all(isinstance(v, int) for k, v in small.config.items() if k not in ("init", "output_head", "mulaw_quantizer"))
    assert small.config["init"] == "xiph" and small.config["output_head"] == "dualfc"


def test_sample_rate_path_is_causal():
    torch.manual_seed(0)
    model = LPCNet(**SMALL).double()
    generator = torch.Generator().manual_seed(2)
    features = torch.from_numpy(_features(2, 6))
    codes = _codes(2, 2 * 160, generator)
    reference = model(features, *codes)
    t0 = 250
    for which in range(3):
        changed = [c.clone() for c in codes]
        changed[which][:, t0] = (changed[which][:, t0] + 128) % 256
        logits = model(features, *changed)
        torch.testing.assert_close(logits[:, :t0], reference[:, :t0], rtol=0, atol=0)
        assert (logits[:, t0] - reference[:, t0]).abs().max() > 1e-6


def test_frame_rate_network_receptive_field():
    torch.manual_seed(0)
    model = LPCNet(**SMALL).double()
    features = torch.from_numpy(_features(1, 12))
    reference = model.frame_rate_network(features)
    changed = features.clone()
    changed[0, 6, 3] += 1.0
    diff = (model.frame_rate_network(changed) - reference).abs().amax(-1)[0]
    # input frame j reaches output frames j − 4 … j (two frames of context on each side)
    assert torch.all(diff[[0, 1, 7]] == 0) and torch.all(diff[2:7] > 0)


def test_normalization_buffers():
    torch.manual_seed(0)
    model = LPCNet(**SMALL).double()
    features = torch.from_numpy(_features(1, 7))
    mean = torch.linspace(-1, 1, 20, dtype=torch.float64)
    std = torch.linspace(0.5, 2, 20, dtype=torch.float64)
    model.set_normalization(mean, std)
    assert torch.equal(model.state_dict()["feature_mean"], mean)
    expected_model = LPCNet(**SMALL).double()
    expected_model.load_state_dict(model.state_dict())
    expected_model.set_normalization(torch.zeros(20), torch.ones(20))
    normalized = features.clone()
    keep = [i for i in range(20) if i != 18]
    normalized[..., keep] = (features[..., keep] - mean[keep]) / std[keep]
    expected = expected_model.frame_rate_network(normalized)
    torch.testing.assert_close(model.frame_rate_network(features), expected)
    bad = std.clone()
    bad[3] = 0
    with pytest.raises(ValueError, match="positive"):
        model.set_normalization(mean, bad)
    bad[3], bad[18] = 1.0, 0.0  # the period's std is unused
    model.set_normalization(mean, bad)


def test_table_path_equals_fused_gru_path():
    """The CPU implementation (tables + gru_sequence) is the same function as the nn.GRU one."""
    torch.manual_seed(0)
    model = LPCNet(**SMALL).double()
    generator = torch.Generator().manual_seed(3)
    features = torch.from_numpy(_features(3, 7))
    codes = _codes(3, 3 * 160, generator)
    state = (torch.randn(3, 32, dtype=torch.float64), torch.randn(3, 16, dtype=torch.float64))
    parameters = list(model.parameters())
    results = []
    for path in (model._sample_rate_tables, model._sample_rate_fused):
        logits, (h_a, h_b) = path(model.frame_rate_network(features), *codes, state)
        grads = torch.autograd.grad((logits.square().sum() + h_a.sum() + h_b.sum()), parameters)
        results.append((logits, h_a, h_b, grads))
    for a, b in zip(results[0][:3], results[1][:3], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    for (name, _), a, b in zip(model.named_parameters(), results[0][3], results[1][3], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=name)


@pytest.mark.parametrize("small_max", [None, 0])  # None: the compiled small-GRU loop; 0: torch products
def test_gru_sequence_gradcheck(small_max, monkeypatch):
    if small_max is not None:
        monkeypatch.setattr(dense_gru_module, "SMALL_GRU_MAX_HIDDEN", small_max)
    generator = torch.Generator().manual_seed(4)
    inputs = [torch.randn(shape, dtype=torch.float64, generator=generator, requires_grad=True)
              for shape in ((5, 3, 12), (3, 4), (12, 4), (12,))]
    assert torch.autograd.gradcheck(gru_sequence, inputs)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("hidden", [16, 40])
def test_small_gru_loop_equals_torch_product_path(hidden, threads, monkeypatch):
    """GRUs of at most SMALL_GRU_MAX_HIDDEN units run one compiled loop; same values and gradients."""
    generator = torch.Generator().manual_seed(6)
    steps, batch = 50, 7  # batch 7 over 2 threads: chunks of 4 and 3
    tensors = [torch.randn(shape, dtype=torch.float64, generator=generator) * scale
               for shape, scale in (((steps, batch, 3 * hidden), 1.0), ((batch, hidden), 1.0),
                                    ((3 * hidden, hidden), 0.5 / hidden ** 0.5), ((3 * hidden,), 0.1))]
    upstream = torch.randn(steps, batch, hidden, dtype=torch.float64, generator=generator)
    assert hidden <= dense_gru_module.SMALL_GRU_MAX_HIDDEN  # the first pass takes the small loop
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    results = []
    try:
        for small_max in (dense_gru_module.SMALL_GRU_MAX_HIDDEN, 0):
            monkeypatch.setattr(dense_gru_module, "SMALL_GRU_MAX_HIDDEN", small_max)
            leaves = [t.clone().requires_grad_(True) for t in tensors]
            out = gru_sequence(*leaves)
            grads = torch.autograd.grad((out * upstream).sum(), leaves)
            results.append((out.detach(), grads))
    finally:
        torch.set_num_threads(before)
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-12, atol=1e-13)
    for name, a, b in zip(("input_gates", "h0", "weight_hh", "bias_hh"), results[0][1], results[1][1],
                          strict=True):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-12, msg=name)


@pytest.mark.parametrize("threads", [1, 2])
def test_input_gates_gradcheck_and_values(threads):
    """The fused table lookup + frame term (GRU_A's input projection on the CPU)."""
    generator = torch.Generator().manual_seed(5)
    tables = torch.randn(3, 5, 6, dtype=torch.float64, generator=generator, requires_grad=True)
    frame = torch.randn(2, 3, 6, dtype=torch.float64, generator=generator, requires_grad=True)
    codes = torch.randint(0, 5, (8, 3, 3), generator=generator)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        out = input_gates_from_tables(tables, codes, frame, 4)
        assert torch.autograd.gradcheck(lambda t, f: input_gates_from_tables(t, codes, f, 4), (tables, frame))
    finally:
        torch.set_num_threads(before)
    expected = frame.repeat_interleave(4, dim=0) + sum(tables[k][codes[..., k]] for k in range(3))
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("hidden", [20, 80])  # the compiled small-GRU loop, and torch products
def test_gru_sequence_matches_nn_gru(threads, hidden):
    torch.manual_seed(0)
    gru = nn.GRU(6, hidden, batch_first=True)
    x = torch.randn(5, 30, 6)
    h0 = torch.randn(5, hidden)
    expected, _ = gru(x, h0[None])
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        gates = (x @ gru.weight_ih_l0.t() + gru.bias_ih_l0).transpose(0, 1)
        out = gru_sequence(gates, h0, gru.weight_hh_l0, gru.bias_hh_l0).transpose(0, 1)
        assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("hidden", [20, 80])  # the compiled small-GRU loop, and torch products
def test_gru_sequence_gradients_match_nn_gru(hidden):
    torch.manual_seed(1)
    gru = nn.GRU(6, hidden, batch_first=True).double()
    x = torch.randn(4, 25, 6, dtype=torch.float64)
    h0 = torch.randn(4, hidden, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(4, 25, hidden, dtype=torch.float64)
    expected, _ = gru(x, h0[None])
    parameters = [h0, gru.weight_hh_l0, gru.bias_hh_l0]
    expected_grads = torch.autograd.grad((expected * upstream).sum(), parameters)
    gates = (x @ gru.weight_ih_l0.t() + gru.bias_ih_l0).transpose(0, 1)
    out = gru_sequence(gates, h0, gru.weight_hh_l0, gru.bias_hh_l0).transpose(0, 1)
    grads = torch.autograd.grad((out * upstream).sum(), parameters)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    for name, a, b in zip(("h0", "weight_hh", "bias_hh"), grads, expected_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-11, msg=name)


@pytest.mark.parametrize("hidden", [16, 80])
def test_gru_sequence_of_no_steps(hidden):
    leaves = [torch.zeros(0, 3, 3 * hidden, requires_grad=True), torch.randn(3, hidden, requires_grad=True),
              torch.randn(3 * hidden, hidden, requires_grad=True), torch.randn(3 * hidden, requires_grad=True)]
    out = gru_sequence(*leaves)
    assert out.shape == (0, 3, hidden)
    grads = torch.autograd.grad(out.sum() + leaves[1].sum(), leaves)
    assert all(torch.count_nonzero(g) == 0 for g in (grads[2], grads[3]))
    torch.testing.assert_close(grads[1], torch.ones(3, hidden))


def test_gru_sequence_rejects_other_dtypes():
    with pytest.raises(ValueError, match="float32/float64"):
        half = torch.float16
        gru_sequence(torch.zeros(2, 1, 6, dtype=half), torch.zeros(1, 2), torch.zeros(6, 2), torch.zeros(6))


# ------------------------------------------------------------------------------ numba kernels
@njit(cache=True, fastmath=set(FASTMATH), error_model="numpy")
def _apply_math(x, out):
    for i in range(x.shape[0]):
        out[0, i] = vexp(x[i])
        out[1, i] = vsigmoid(x[i])
        out[2, i] = vtanh(x[i])


@pytest.mark.parametrize(("dtype", "rtol", "atol"), [(np.float32, 3e-7, 2e-7), (np.float64, 5e-16, 3e-16)])
def test_vectorized_math_accuracy(dtype, rtol, atol):
    x = np.concatenate([np.linspace(-80, 80, 2001), np.linspace(-1e-3, 1e-3, 101)]).astype(dtype)
    out = np.empty((3, x.size), dtype)
    _apply_math(x, out)
    reference = x.astype(np.float64)
    np.testing.assert_allclose(out[0], np.exp(reference), rtol=rtol)
    np.testing.assert_allclose(out[1], 1 / (1 + np.exp(-reference)), rtol=rtol, atol=atol)
    np.testing.assert_allclose(out[2], np.tanh(reference), rtol=0, atol=atol)


@njit(cache=True, fastmath=set(FASTMATH))
def _products(group, row_ptr, col_idx, blocks, dense_t, x, x_stride, y_sparse, y_dense, y_stride):
    if group == 4:
        block_gemv4(row_ptr, col_idx, blocks, x, x_stride, y_sparse, y_stride)
        dense_gemv4(dense_t, x, x_stride, y_dense, y_stride)
    elif group == 2:
        block_gemv2(row_ptr, col_idx, blocks, x, x_stride, y_sparse, y_stride)
        dense_gemv2(dense_t, x, x_stride, y_dense, y_stride)
    else:
        block_gemv(row_ptr, col_idx, blocks, x, x_stride, y_sparse, y_stride)
        dense_gemv(dense_t, x, x_stride, y_dense, y_stride)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("group", [1, 2, 4])
@pytest.mark.parametrize("shape", [(48, 37), (50, 9), (16, 1), (112, 5)])
def test_block_and_dense_products(dtype, group, shape):
    """Sparse (16×1 blocks) and dense products for 1, 2, 4 utterances against float64 numpy."""
    rng = np.random.default_rng(5)
    dense = rng.normal(size=shape)
    kept = rng.random((-(-shape[0] // 16), 1, shape[1])) < 0.4
    sparse = dense * np.repeat(kept, 16, axis=1).reshape(-1, shape[1])[: shape[0]]
    row_ptr, col_idx, blocks = pack_blocks(sparse, dtype)
    dense_t = pack_dense(dense, dtype)
    assert col_idx.size == kept.sum()
    rows = (row_ptr.size - 1) * 16
    assert dense_t.size == rows * shape[1]
    x = rng.normal(size=(group, shape[1])).astype(dtype)
    y0 = rng.normal(size=(group, rows)).astype(dtype)
    y_sparse, y_dense = y0.ravel().copy(), y0.ravel().copy()
    _products(group, row_ptr, col_idx, blocks, dense_t, x.ravel(), shape[1], y_sparse, y_dense, rows)
    tolerance = 1e-5 if dtype == np.float32 else 1e-13
    for result, matrix in ((y_sparse, sparse), (y_dense, dense)):
        expected = y0.astype(np.float64)
        expected[:, : shape[0]] += x.astype(np.float64) @ matrix.T
        np.testing.assert_allclose(result.reshape(group, rows), expected, rtol=tolerance, atol=tolerance)


@njit(cache=True)
def _encode_all(values, levels, out):
    for i in range(values.shape[0]):
        out[i] = mulaw_encode_one(values[i], levels)


@pytest.mark.parametrize("quantizer", ["mid_rise", "mid_tread"])
def test_kernel_mulaw_encoding_matches_dsp(quantizer):
    levels = mulaw_decision_levels(8, quantizer)
    rng = np.random.default_rng(6)
    values = np.concatenate([rng.uniform(-1.2, 1.2, 5000), levels, np.nextafter(levels, -2), [0.0, -0.0]])
    out = np.empty(values.size, np.int64)
    _encode_all(values, levels, out)
    np.testing.assert_array_equal(out, mulaw_encode(values, 8, quantizer))


# ----------------------------------------------------------------------------------- sampling
def test_tempered_distribution_against_hand_computation():
    rng = np.random.default_rng(7)
    logits = rng.normal(0, 3, (4, 256))
    correlation = np.array([0.0, 1 / 3, 0.6, 1.0])
    exponent = sampling_exponent(correlation)
    np.testing.assert_allclose(exponent, [1.0, 1.0, 1.4, 2.0])
    out = tempered_distribution(torch.from_numpy(logits), torch.from_numpy(exponent)).numpy()
    for row, power, result in zip(logits, exponent, out, strict=True):
        p = np.exp(row - row.max())
        p /= p.sum()
        q = p**power / np.sum(p**power)
        q = np.maximum(q - 0.002, 0)
        np.testing.assert_allclose(result, q / q.sum(), rtol=1e-12, atol=1e-15)
    assert np.all(out[out > 0] > 0) and np.all(out.sum(-1) == pytest.approx(1.0))


def test_inverse_cdf_sampling():
    weights = torch.tensor([[0.0, 0.25, 0.0, 0.5, 0.25]], dtype=torch.float64).repeat(6, 1)
    uniforms = torch.tensor([0.0, 0.2499, 0.25, 0.7, 0.75, 0.9999], dtype=torch.float64)
    codes = sample_inverse_cdf(weights, uniforms)
    assert codes.tolist() == [1, 1, 3, 3, 4, 4]


def test_uniforms_do_not_depend_on_batch_size():
    single = sampling_uniforms(11, 1, 100)
    batch = sampling_uniforms(11, 3, 100)
    np.testing.assert_array_equal(batch[0], single[0])
    np.testing.assert_array_equal(batch[0], np.random.default_rng([11, 0]).random(100))
    assert not np.array_equal(batch[1], batch[2])


# ------------------------------------------------------------------------------------ synthesis
@pytest.fixture(scope="module")
def sparse_model() -> LPCNet:
    """GRU_A 64 pruned to 25 % block density, float64."""
    torch.manual_seed(0)
    model = LPCNet(gru_a_size=64, gru_b_size=16).double()
    with torch.no_grad():  # a livelier output distribution than the zero-bias initialization
        model.dual_fc.scale.mul_(4.0)
    model.set_normalization(torch.tensor([8.0] + [0.0] * 19), torch.ones(20))
    sparsifier = BlockSparsifier.for_gru(model.gru_a, {"update": 0.25, "reset": 0.25, "candidate": 0.25},
                                         start=0, end=1)
    sparsifier.step(1)
    return model


@pytest.fixture(scope="module")
def synthesis_inputs() -> tuple[np.ndarray, np.ndarray]:
    features = _features(5, 10, seed=8)  # 0.1 s per utterance; the fast path groups them 4 + 1
    return features, lpc_from_cepstrum(features[..., :18], order=16)


@pytest.fixture(scope="module")
def reference(sparse_model, synthesis_inputs):
    features, lpc = synthesis_inputs
    return synthesize_reference(sparse_model, features, lpc=lpc, seed=5)


def test_fast_path_equals_reference_sample_for_sample(sparse_model, synthesis_inputs, reference):
    features, lpc = synthesis_inputs
    packed = pack_lpcnet(sparse_model, np.float64)
    assert packed.density == pytest.approx(0.25, abs=0.01)
    fast = synthesize_fast(sparse_model, features, lpc=lpc, seed=5, packed=packed)
    assert fast.excitation.shape == (5, 1600)
    # Sample-exact on any CPU, not only bit-for-bit on this one: in float64 the numba kernels (FMA or
    # not, AVX2 or AVX-512 lanes, NUMBA_CPU_NAME=generic/haswell alike) and torch differ by ~1e-16 in
    # the probabilities, and a code flips only where a uniform lies that close to a CDF boundary
    # (~1e-12 over these 8,000 samples). The float32 fast mode carries no such guarantee.
    np.testing.assert_array_equal(fast.excitation, reference.excitation)
    np.testing.assert_allclose(fast.signal, reference.signal, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.waveform, reference.waveform, rtol=0, atol=1e-6)
    # the excitation is not degenerate (else agreement would prove little)
    assert len(np.unique(reference.excitation)) > 20


@pytest.mark.parametrize("quantizer", ["mid_tread", "mid_rise"])
def test_fast_path_equals_reference_for_unaligned_sizes(quantizer):
    """Sizes that are not multiples of 16 (padded blocks), another μ-law depth, either code convention."""
    torch.manual_seed(1)
    model = LPCNet(gru_a_size=20, gru_b_size=5, frame_channels=8, sample_embedding_size=8,
                   pitch_embedding_size=4, mulaw_bits=6, mulaw_quantizer=quantizer).double()
    with torch.no_grad():
        model.dual_fc.scale.mul_(4.0)
    features = _features(2, 3, seed=9)
    lpc = lpc_from_cepstrum(features[..., :18], order=16)
    reference = synthesize_reference(model, features, lpc=lpc, seed=1)
    fast = synthesize_fast(model, features, lpc=lpc, seed=1)
    np.testing.assert_array_equal(fast.excitation, reference.excitation)
    np.testing.assert_allclose(fast.signal, reference.signal, rtol=0, atol=1e-12)
    assert reference.excitation.max() < 64 and len(np.unique(reference.excitation)) > 10
    # the signal is the prediction plus the decoded code of this convention
    decoded = mulaw_decode(reference.excitation, 6, quantizer)
    np.testing.assert_allclose(reference.signal, reference.prediction + decoded, rtol=0, atol=1e-15)


def test_fast_path_threads_and_batch_independence(sparse_model, synthesis_inputs, reference):
    features, lpc = synthesis_inputs
    threaded = synthesize_fast(sparse_model, features, lpc=lpc, seed=5, threads=2)
    np.testing.assert_array_equal(threaded.excitation, reference.excitation)
    uniforms = sampling_uniforms(5, 5, 1600)[1:2]
    alone = synthesize_fast(sparse_model, features[1:2], lpc=lpc[1:2], uniforms=uniforms)
    np.testing.assert_array_equal(alone.excitation[0], reference.excitation[1])


def test_synthesis_prediction_is_lpc_of_own_output(synthesis_inputs, reference):
    _, lpc = synthesis_inputs
    expected = lpc_predict(reference.signal, lpc, hop_length=160)
    np.testing.assert_allclose(reference.prediction, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(reference.waveform, np.clip(deemphasis(reference.signal), -1, 1), atol=1e-7)
    first_codes = mulaw_encode(reference.prediction[:, :1])
    assert np.all(first_codes == 128)  # s_{<0} = 0: the first prediction is the mid level


def test_lpcnet_synthesize_single_utterance(sparse_model, synthesis_inputs):
    features, lpc = synthesis_inputs
    from_cepstrum = lpcnet_synthesize(sparse_model, features[0], seed=2)
    explicit = lpcnet_synthesize(sparse_model, features[0], lpc=lpc[0], seed=2)
    assert from_cepstrum.shape == (1600,) and from_cepstrum.dtype == np.float32
    np.testing.assert_array_equal(from_cepstrum, explicit)
    assert np.abs(from_cepstrum).max() <= 1.0
    with pytest.raises(ValueError, match="backend"):
        lpcnet_synthesize(sparse_model, features[0], backend="cuda")
