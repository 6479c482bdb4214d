"""GRU recurrence whose recurrent matrix is block-sparse: training that gets faster as it prunes.

:func:`sparse_gru_sequence` is ``gru_sequence(input_gates, h0, weight_hh ⊙ mask, bias_hh)`` for a
keep-mask made of LPCNet's 16×1 blocks plus the per-gate diagonal (what
:class:`~vocoder.layers.BlockSparsifier` holds): the value is that of the masked matrix and the
weight gradient is the dense gradient with the mask applied. Only the kept blocks cost anything:

* forward, per time step: ``W_hh h_{t−1}`` as the per-gate diagonal times ``h_{t−1}`` plus a 16×1
  block product over the kept blocks (:func:`vocoder.layers.block_gemv4`, four batch rows per
  weight load), fused with the elementwise step (:func:`vocoder.layers.gru_forward_step`) in one
  numba loop over time per batch chunk;
* backward, per time step: ``∂L/∂h_{t−1} += W_hhᵀ g`` over the kept blocks only (column-major
  block lists, 16-lane dot products) after :func:`vocoder.layers.gru_backward_step`;
* weight gradient: ``Σ_t g_t h_{t−1}ᵀ`` for the kept blocks and the diagonal only, in tiles of
  samples that stay in cache (zeros elsewhere: the mask stays exact).

Batch rows are split over threads as in the dense recurrence (independent chunks, no per-step
synchronization); the weight gradient (with the bias gradient) is split by samples, each thread
summing into its own buffers, added at the end.
"""

from __future__ import annotations

import numpy as np
import torch
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from vocoder.layers._gru_kernels import gru_backward_step, gru_forward_step
from vocoder.layers._simd import (
    BLOCK_ROWS,
    FASTMATH,
    _float_vectors,
    _int_vectors,
    _VectorCode,
    block_gemv,
    block_gemv2,
    block_gemv4,
)
from vocoder.layers._threads import run_in_threads, split_range

# samples per tile of the weight-gradient kernel: the tile's gradients and states stay in L2 (paper-size
# GRU_A, float32: 147 KB of gradients + 49 KB of states per thread, beside 177 KB of block gradients at 10 %,
# within the 512 KB of L2 per core of the smallest CPU we target)
_TILE = 32


def live_blocks(mask: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The kept off-diagonal 16×1 blocks of a ``(3H, H)`` keep-mask, in compressed block-row form.

    Args:
        mask: ``(3H, H)`` bool (16×1 blocks, plus the per-gate diagonal which is handled apart).

    Returns:
        ``row_ptr`` ``(3H/16 + 1,)`` int32 and ``col_idx`` ``(nnz,)`` int32 (row-major order).
    """
    mask = np.asarray(mask.cpu() if isinstance(mask, torch.Tensor) else mask, bool).copy()
    rows, hidden = mask.shape
    if rows % BLOCK_ROWS or rows != 3 * hidden:
        raise ValueError(f"mask must be (3H, H) with 3H a multiple of {BLOCK_ROWS}, got {mask.shape}")
    gate_rows = np.arange(rows)
    mask[gate_rows, gate_rows % hidden] = False
    present = mask.reshape(rows // BLOCK_ROWS, BLOCK_ROWS, hidden).any(axis=1)
    row_ptr = np.zeros(rows // BLOCK_ROWS + 1, np.int32)
    row_ptr[1:] = np.cumsum(present.sum(axis=1))
    _, column = np.nonzero(present)
    return row_ptr, column.astype(np.int32)


def _transpose(row_ptr: np.ndarray, col_idx: np.ndarray, hidden: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column-major lists of the same blocks: ``col_ptr``, block row and entry index per block."""
    block_row = np.repeat(np.arange(row_ptr.shape[0] - 1), np.diff(row_ptr))
    order = np.argsort(col_idx, kind="stable")
    col_ptr = np.zeros(hidden + 1, np.int32)
    col_ptr[1:] = np.cumsum(np.bincount(col_idx, minlength=hidden))
    return col_ptr, block_row[order].astype(np.int32), order.astype(np.int32)


@njit(cache=True, nogil=True)
def gather_blocks(weight, row_ptr, col_idx, blocks):
    """``blocks[16e : 16e + 16] = weight[16r : 16r + 16, col_idx[e]]`` for the entries ``e`` of row ``r``."""
    for r in range(row_ptr.shape[0] - 1):
        for e in range(row_ptr[r], row_ptr[r + 1]):
            c = col_idx[e]
            for i in range(16):
                blocks[16 * e + i] = weight[16 * r + i, c]


@njit(inline="always")
def _block_product(group, row_ptr, col_idx, blocks, x, x_stride, y, y_stride):
    if group == 4:
        block_gemv4(row_ptr, col_idx, blocks, x, x_stride, y, y_stride)
    elif group == 2:
        block_gemv2(row_ptr, col_idx, blocks, x, x_stride, y, y_stride)
    else:
        block_gemv(row_ptr, col_idx, blocks, x, x_stride, y, y_stride)


@njit(cache=True, nogil=True, fastmath=set(FASTMATH), error_model="numpy")
def sparse_gru_forward(input_gates, h0, row_ptr, col_idx, blocks, diagonal, bias, hidden_gates,
                       gates, hidden_candidate, output, first, last):
    """The whole forward recurrence for batch rows ``[first, last)``.

    ``hidden_gates[b] = bias + diagonal ⊙ h_{t−1} + blocks · h_{t−1}`` (flattened per row: the block
    product reads ``h_{t−1}`` rows of length H and writes rows of length 3H), then
    :func:`~vocoder.layers.gru_forward_step`. Buffers as there; ``hidden_gates`` ``(B, 3H)``.
    """
    n_steps = input_gates.shape[0]
    hidden = h0.shape[1]
    three = 3 * hidden
    flat_gates = hidden_gates.reshape(-1)
    for t in range(n_steps):
        previous = h0 if t == 0 else output[t - 1]
        for b in range(first, last):
            h = previous[b]
            g = hidden_gates[b]
            for gate in range(3):
                offset = gate * hidden
                for j in range(hidden):
                    g[offset + j] = bias[offset + j] + diagonal[offset + j] * h[j]
        flat_previous = previous.reshape(-1)
        b = first
        while b < last:
            group = 4 if last - b >= 4 else (2 if last - b >= 2 else 1)
            _block_product(group, row_ptr, col_idx, blocks, flat_previous[b * hidden :], hidden,
                           flat_gates[b * three :], three)
            b += group
        gru_forward_step(input_gates, hidden_gates, h0, gates, hidden_candidate, output, t, first, last)


def _horizontal_sum(builder, vector):
    """Pairwise sum of a vector's lanes (fixed order: deterministic)."""
    width = vector.type.count
    while width > 1:
        half = width // 2
        low = builder.shuffle_vector(vector, vector, ir.Constant(ir.VectorType(ir.IntType(32), half),
                                                                 list(range(half))))
        high = builder.shuffle_vector(vector, vector, ir.Constant(ir.VectorType(ir.IntType(32), half),
                                                                  list(range(half, width))))
        vector = builder.fadd(low, high)
        width = half
    return builder.extract_element(vector, ir.Constant(ir.IntType(32), 0))


def _make_block_gemv_t(group: int):
    """``y[c] += Σ_blocks(·, c) blockᵀ g[16r : 16r + 16]`` for ``group`` rows at once (column-major lists)."""

    @intrinsic
    def block_gemv_t(typingctx, col_ptr, block_row, entry, blocks, g, g_stride, y, y_stride):
        if not (_float_vectors(blocks, g, y) and _int_vectors(col_ptr, block_row, entry)
                and isinstance(g_stride, types.Integer) and isinstance(y_stride, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            code = _VectorCode(context, builder, signature.args[3].dtype)
            ptr_a, row_a, entry_a, blk_a, g_a = (code.array(signature.args[i], args[i]) for i in range(5))
            y_a = code.array(signature.args[6], args[6])
            g_step = context.cast(builder, args[5], signature.args[5], types.int64)
            y_step = context.cast(builder, args[7], signature.args[7], types.int64)
            n_columns = builder.sub(code.length(ptr_a), code.const(1))
            accumulators = code.accumulators(group)
            with cgutils.for_range(builder, n_columns) as column_loop:
                column = column_loop.index
                start = code.load_index(ptr_a, column)
                end = code.load_index(ptr_a, builder.add(column, code.const(1)))
                for accumulator in accumulators:
                    builder.store(code.zero(), accumulator)
                with cgutils.for_range(builder, builder.sub(end, start)) as block_loop:
                    k = builder.add(start, block_loop.index)
                    weights = code.load(code.vector_pointer(
                        blk_a, builder.mul(code.load_index(entry_a, k), code.const(BLOCK_ROWS))))
                    base = builder.mul(code.load_index(row_a, k), code.const(BLOCK_ROWS))
                    for u in range(group):
                        offset = builder.add(builder.mul(code.const(u), g_step), base)
                        vector = code.load(code.vector_pointer(g_a, offset))
                        code.fma_into(accumulators[u], weights, vector)
                for u in range(group):
                    pointer = builder.gep(y_a.data, [builder.add(builder.mul(code.const(u), y_step), column)])
                    total = _horizontal_sum(builder, builder.load(accumulators[u]))
                    builder.store(builder.fadd(builder.load(pointer), total), pointer)
            return context.get_dummy_value()

        return types.void(col_ptr, block_row, entry, blocks, g, g_stride, y, y_stride), codegen

    return block_gemv_t


block_gemv_t = _make_block_gemv_t(1)
block_gemv_t2 = _make_block_gemv_t(2)
block_gemv_t4 = _make_block_gemv_t(4)

# independent accumulators of the outer-product kernel (hide the FMA latency)
_OUTER_UNROLL = 4


@intrinsic
def block_outer(typingctx, g, g_stride, g_offset, x, x_stride, x_offset, count, acc, acc_offset):
    """``acc[acc_offset : +16] += Σ_{n < count} g[n·g_stride + g_offset : +16] · x[n·x_stride + x_offset]``

    (16-lane fused multiply–adds, four interleaved accumulators).
    """
    if not (_float_vectors(g, x, acc) and all(isinstance(a, types.Integer) for a in
                                                (g_stride, g_offset, x_stride, x_offset, count, acc_offset))):
        return None

    def codegen(context, builder, signature, args):
        code = _VectorCode(context, builder, signature.args[0].dtype)
        g_a, x_a, acc_a = code.array(signature.args[0], args[0]), code.array(signature.args[3], args[3]), \
            code.array(signature.args[7], args[7])
        g_step, g_off, _, x_step, x_off, n = (
            context.cast(builder, args[i], signature.args[i], types.int64) for i in range(1, 7))
        acc_off = context.cast(builder, args[8], signature.args[8], types.int64)
        accumulators = code.accumulators(_OUTER_UNROLL)
        out_pointer = code.vector_pointer(acc_a, acc_off)
        builder.store(code.load(out_pointer), accumulators[0])
        for accumulator in accumulators[1:]:
            builder.store(code.zero(), accumulator)

        def accumulate(u, sample):
            vector = code.load(code.vector_pointer(g_a, builder.add(builder.mul(sample, g_step), g_off)))
            scalar = code.broadcast(x_a, builder.add(builder.mul(sample, x_step), x_off))
            code.fma_into(accumulators[u], vector, scalar)

        rounds = builder.udiv(n, code.const(_OUTER_UNROLL))
        with cgutils.for_range(builder, rounds) as loop:
            base = builder.mul(loop.index, code.const(_OUTER_UNROLL))
            for u in range(_OUTER_UNROLL):
                accumulate(u, builder.add(base, code.const(u)))
        tail = builder.mul(rounds, code.const(_OUTER_UNROLL))
        with cgutils.for_range(builder, builder.sub(n, tail)) as loop:
            accumulate(0, builder.add(tail, loop.index))
        code.store(code.sum(accumulators), out_pointer)
        return context.get_dummy_value()

    return types.void(g, g_stride, g_offset, x, x_stride, x_offset, count, acc, acc_offset), codegen


@intrinsic
def block_outer4(typingctx, g, g_offset, x, col_idx, entry, count, acc):
    """``block_outer`` for the four blocks ``entry … entry + 3`` of one block row of a tile.

    ``g`` is the row's gradients (16 per sample, from ``g_offset``), ``x`` the tile's states column
    major (``_TILE`` per column), block ``e`` reads column ``col_idx[e]`` and accumulates into
    ``acc[16e : 16e + 16]``. Each gradient vector is loaded once for the four blocks (and two samples
    per round, eight independent accumulators), instead of once per block.
    """
    if not (_float_vectors(g, x, acc) and isinstance(col_idx, types.Array)
            and all(isinstance(a, types.Integer) for a in (g_offset, entry, count))):
        return None

    def codegen(context, builder, signature, args):
        code = _VectorCode(context, builder, signature.args[0].dtype)
        g_a, x_a, col_a, acc_a = (code.array(signature.args[i], args[i]) for i in (0, 2, 3, 6))
        g_off, first, n = (context.cast(builder, args[i], signature.args[i], types.int64) for i in (1, 4, 5))
        x_offsets, out_pointers, accumulators = [], [], []
        for k in range(4):
            e = builder.add(first, code.const(k))
            x_offsets.append(builder.mul(code.load_index(col_a, e), code.const(_TILE)))
            out_pointers.append(code.vector_pointer(acc_a, builder.mul(e, code.const(16))))
            pair = code.accumulators(2)
            builder.store(code.load(out_pointers[k]), pair[0])
            builder.store(code.zero(), pair[1])
            accumulators.append(pair)

        def accumulate(u, sample):
            offset = builder.add(builder.mul(sample, code.const(16)), g_off)
            vector = code.load(code.vector_pointer(g_a, offset))
            for k in range(4):
                scalar = code.broadcast(x_a, builder.add(x_offsets[k], sample))
                code.fma_into(accumulators[k][u], vector, scalar)

        rounds = builder.udiv(n, code.const(2))
        with cgutils.for_range(builder, rounds) as loop:
            base = builder.mul(loop.index, code.const(2))
            accumulate(0, base)
            accumulate(1, builder.add(base, code.const(1)))
        tail = builder.mul(rounds, code.const(2))
        with cgutils.for_range(builder, builder.sub(n, tail)) as loop:
            accumulate(0, builder.add(tail, loop.index))
        for k in range(4):
            code.store(code.sum(accumulators[k]), out_pointers[k])
        return context.get_dummy_value()

    return types.void(g, g_offset, x, col_idx, entry, count, acc), codegen


@njit(inline="always")
def _block_product_t(group, col_ptr, block_row, entry, blocks, g, g_stride, y, y_stride):
    if group == 4:
        block_gemv_t4(col_ptr, block_row, entry, blocks, g, g_stride, y, y_stride)
    elif group == 2:
        block_gemv_t2(col_ptr, block_row, entry, blocks, g, g_stride, y, y_stride)
    else:
        block_gemv_t(col_ptr, block_row, entry, blocks, g, g_stride, y, y_stride)


@njit(cache=True, nogil=True, fastmath=set(FASTMATH), error_model="numpy")
def _transposed_product(col_ptr, block_row, entry, blocks, diagonal, grad_gates, grad_h, first, last):
    """``grad_h[b] += (diagonal ⊙ g_b folded per gate) + Σ_blocks blockᵀ g_b[16r : 16r + 16]``."""
    hidden = grad_h.shape[1]
    three = 3 * hidden
    for b in range(first, last):
        g = grad_gates[b]
        out = grad_h[b]
        for j in range(hidden):
            out[j] += (diagonal[j] * g[j] + diagonal[hidden + j] * g[hidden + j]
                       + diagonal[2 * hidden + j] * g[2 * hidden + j])
    flat_g = grad_gates.reshape(-1)
    flat_h = grad_h.reshape(-1)
    b = first
    while b < last:
        group = 4 if last - b >= 4 else (2 if last - b >= 2 else 1)
        _block_product_t(group, col_ptr, block_row, entry, blocks, flat_g[b * three :], three,
                         flat_h[b * hidden :], hidden)
        b += group


@njit(cache=True, nogil=True, fastmath=set(FASTMATH), error_model="numpy")
def sparse_gru_backward(grad_output, gates, hidden_candidate, output, h0, grad_h, grad_hidden_gates,
                        grad_input_gates, grad_candidate_hidden, col_ptr, block_row, entry, blocks, diagonal,
                        first, last):
    """The whole backward recurrence for batch rows ``[first, last)`` (buffers as in the step kernel)."""
    n_steps = grad_output.shape[0]
    for t in range(n_steps - 1, -1, -1):
        gru_backward_step(grad_output, gates, hidden_candidate, output, h0, grad_h, grad_hidden_gates,
                          grad_input_gates, grad_candidate_hidden, t, first, last)
        _transposed_product(col_ptr, block_row, entry, blocks, diagonal, grad_hidden_gates, grad_h,
                            first, last)


@njit(cache=True, nogil=True, fastmath=set(FASTMATH), error_model="numpy")
def sparse_weight_grad(grad_input_gates, grad_candidate_hidden, output, h0, row_ptr, col_idx,
                       grad_blocks, grad_diagonal, grad_bias, first, last):
    """Kept-block, diagonal and bias sums ``Σ_s g_s h_{s−B}ᵀ``, ``Σ_s g_s`` over samples ``[first, last)``.

    Samples are time-major (``s = t·B + b``, ``h_{s−B}`` the state before step ``t``). ``g`` is
    ``grad_input_gates`` for the reset/update rows and ``grad_candidate_hidden`` for the candidate rows
    (see the dense backward pass). ``grad_blocks`` ``(16·nnz,)``, ``grad_diagonal`` and ``grad_bias``
    ``(3H,)`` are overwritten with this range's sums (threads split the samples and add their sums, so
    the float rounding depends on the thread count). Samples are taken in tiles so that a tile's
    gradients and states stay in cache while all its blocks are accumulated; every sum is formed per
    tile first, then added to the total (two-level summation).
    """
    n_steps, batch, hidden = output.shape
    n_rows = row_ptr.shape[0] - 1
    grad_blocks[:] = 0.0
    grad_diagonal[:] = 0.0
    grad_bias[:] = 0.0
    # per tile, copies in the product's order: gradients block-row major (r, n, 16), states column
    # major (c, n); the products then stream through contiguous memory
    tile_g = np.empty(n_rows * _TILE * 16, grad_blocks.dtype)
    tile_x = np.empty(hidden * _TILE, grad_blocks.dtype)
    tile_diagonal = np.empty(3 * hidden, grad_blocks.dtype)
    tile_bias = np.empty(3 * hidden, grad_blocks.dtype)
    for start in range(first, last, _TILE):
        count = min(_TILE, last - start)
        tile_diagonal[:] = 0.0
        tile_bias[:] = 0.0
        for n in range(count):
            t = (start + n) // batch
            b = start + n - t * batch
            h = h0[b] if t == 0 else output[t - 1, b]
            for c in range(hidden):
                tile_x[c * _TILE + n] = h[c]
            g_rz = grad_input_gates[t, b]
            g_n = grad_candidate_hidden[t, b]
            for j in range(hidden):  # the diagonal: Σ_n g[n, j] h_{n−B}[j mod H]
                tile_diagonal[j] += g_rz[j] * h[j]
                tile_diagonal[hidden + j] += g_rz[hidden + j] * h[j]
                tile_diagonal[2 * hidden + j] += g_n[j] * h[j]
            for r in range(n_rows):
                row0 = 16 * r
                base = (r * _TILE + n) * 16
                if row0 >= 2 * hidden:
                    for i in range(16):
                        value = g_n[row0 - 2 * hidden + i]
                        tile_g[base + i] = value
                        tile_bias[row0 + i] += value
                else:
                    for i in range(16):
                        value = g_rz[row0 + i]
                        tile_g[base + i] = value
                        tile_bias[row0 + i] += value
        for j in range(3 * hidden):
            grad_diagonal[j] += tile_diagonal[j]
            grad_bias[j] += tile_bias[j]
        for r in range(n_rows):
            g_offset = r * _TILE * 16
            e, end = row_ptr[r], row_ptr[r + 1]
            while e + 4 <= end:
                block_outer4(tile_g, g_offset, tile_x, col_idx, e, count, grad_blocks)
                e += 4
            for rest in range(e, end):
                block_outer(tile_g, 16, g_offset, tile_x, 1, col_idx[rest] * _TILE, count, grad_blocks,
                            16 * rest)


def gru_parameter_grads(grad_input_gates: torch.Tensor, grad_candidate_hidden: torch.Tensor,
                        output: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense ``(∂L/∂W_hh, ∂L/∂b_hh)`` of a GRU recurrence from its backward buffers (torch products).

    ``Σ_t g_t h_{t−1}ᵀ`` and ``Σ_t g_t``, where ``g`` is ``grad_input_gates`` for the reset/update rows
    and ``grad_candidate_hidden`` for the candidate rows (see :func:`~vocoder.layers.gru_backward_step`);
    ``h_{t−1}`` is ``h0`` at ``t = 0``, else ``output[t − 1]``. An empty sequence gives zeros.
    """
    n_steps, _, hidden = output.shape
    grad_weight = output.new_empty(3 * hidden, hidden)
    previous = output[:-1].reshape(-1, hidden)
    for rows, grads in ((slice(0, 2 * hidden), grad_input_gates[..., : 2 * hidden]),
                        (slice(2 * hidden, 3 * hidden), grad_candidate_hidden)):
        if n_steps == 0:  # an empty sequence: no gradient
            grad_weight[rows] = 0
            continue
        block = grads[0].t() @ h0
        if n_steps > 1:
            block = block + grads[1:].reshape(-1, grads.shape[-1]).t() @ previous
        grad_weight[rows] = block
    grad_bias = torch.cat([grad_input_gates[..., : 2 * hidden].sum((0, 1)),
                           grad_candidate_hidden.sum((0, 1))])
    return grad_weight, grad_bias


def _chunks(size: int) -> list[tuple[int, int]]:
    """One contiguous chunk per intra-op thread."""
    return split_range(size, torch.get_num_threads())


class _SparseGRUSequence(torch.autograd.Function):
    """Time-major GRU recurrence with a block-sparse recurrent matrix (CPU, float32/float64)."""

    @staticmethod
    def forward(ctx, input_gates: torch.Tensor, h0: torch.Tensor, weight_hh: torch.Tensor,
                bias_hh: torch.Tensor, mask: torch.Tensor, dense_weight_grad: bool) -> torch.Tensor:
        n_steps, batch, three_hidden = input_gates.shape
        hidden = three_hidden // 3
        x = input_gates.detach().contiguous()
        h0 = h0.detach().contiguous()
        weight = (weight_hh.detach() * mask).contiguous()
        row_ptr, col_idx = live_blocks(mask)
        weight_np = weight.numpy()
        gate_rows = np.arange(three_hidden)
        diagonal = np.ascontiguousarray(weight_np[gate_rows, gate_rows % hidden])
        off_diagonal = weight_np.copy()
        off_diagonal[gate_rows, gate_rows % hidden] = 0
        blocks = np.empty(16 * col_idx.shape[0], weight_np.dtype)
        gather_blocks(off_diagonal, row_ptr, col_idx, blocks)
        output = x.new_empty(n_steps, batch, hidden)
        gates = x.new_empty(n_steps, batch, three_hidden)
        candidate_hidden = x.new_empty(n_steps, batch, hidden)
        hidden_gates = x.new_empty(batch, three_hidden)
        arrays = (x.numpy(), h0.numpy(), row_ptr, col_idx, blocks, diagonal,
                  bias_hh.detach().contiguous().numpy(), hidden_gates.numpy(), gates.numpy(),
                  candidate_hidden.numpy(), output.numpy())
        run_in_threads(lambda first, last: sparse_gru_forward(*arrays, first, last), _chunks(batch))
        ctx.save_for_backward(h0, gates, candidate_hidden, output, mask)
        ctx.sparse = (row_ptr, col_idx, blocks, diagonal)
        ctx.dense_weight_grad = dense_weight_grad
        return output

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        h0, gates, candidate_hidden, output, mask = ctx.saved_tensors
        row_ptr, col_idx, blocks, diagonal = ctx.sparse
        n_steps, batch, hidden = output.shape
        grad_output = grad_output.detach().contiguous()
        grad_input_gates = grad_output.new_empty(n_steps, batch, 3 * hidden)
        grad_candidate_hidden = grad_output.new_empty(n_steps, batch, hidden)
        grad_hidden_gates = grad_output.new_empty(batch, 3 * hidden)
        grad_h = grad_output.new_zeros(batch, hidden)
        col_ptr, block_row, entry = _transpose(row_ptr, col_idx, hidden)
        arrays = (grad_output.numpy(), gates.numpy(), candidate_hidden.numpy(), output.numpy(), h0.numpy(),
                  grad_h.numpy(), grad_hidden_gates.numpy(), grad_input_gates.numpy(),
                  grad_candidate_hidden.numpy(), col_ptr, block_row, entry, blocks, diagonal)
        run_in_threads(lambda first, last: sparse_gru_backward(*arrays, first, last), _chunks(batch))

        grad_weight = grad_bias = summed_bias = None
        if ctx.needs_input_grad[2] and ctx.dense_weight_grad:
            # every weight's gradient (pruned ones may regrow), as the dense recurrence forms it
            grad_weight, grad_bias = gru_parameter_grads(grad_input_gates, grad_candidate_hidden, output, h0)
        elif ctx.needs_input_grad[2]:
            # the samples split over threads, each summing into its own buffers (added below)
            chunks = _chunks(n_steps * batch)
            partial_blocks = np.empty((len(chunks), blocks.shape[0]), blocks.dtype)
            partial_diagonal = np.empty((len(chunks), diagonal.shape[0]), diagonal.dtype)
            partial_bias = np.empty((len(chunks), diagonal.shape[0]), diagonal.dtype)
            weight_arrays = (grad_input_gates.numpy(), grad_candidate_hidden.numpy(), output.numpy(),
                             h0.numpy(), row_ptr, col_idx)
            slot = {chunk: k for k, chunk in enumerate(chunks)}

            def weight_work(first: int, last: int) -> None:
                k = slot[first, last]
                sparse_weight_grad(*weight_arrays, partial_blocks[k], partial_diagonal[k], partial_bias[k],
                                   first, last)

            run_in_threads(weight_work, chunks)
            grad_blocks, grad_diagonal, summed_bias = (part.sum(axis=0) for part in
                                                       (partial_blocks, partial_diagonal, partial_bias))
            grad_weight = grad_output.new_zeros(mask.shape)
            if col_idx.shape[0]:
                block_row = np.repeat(np.arange(row_ptr.shape[0] - 1), np.diff(row_ptr))
                rows = torch.from_numpy(16 * block_row[:, None] + np.arange(16)[None, :])  # (nnz, 16)
                columns = torch.from_numpy(np.repeat(col_idx[:, None], 16, axis=1).astype(np.int64))
                grad_weight[rows, columns] = torch.from_numpy(grad_blocks.reshape(-1, 16))
            gate_rows = torch.arange(3 * hidden)
            grad_weight[gate_rows, gate_rows % hidden] = torch.from_numpy(grad_diagonal)  # once, not twice
            grad_weight.mul_(mask)  # exact zeros outside the mask (also inside partly kept blocks)
        if ctx.needs_input_grad[3]:
            if summed_bias is not None:  # summed with the weight gradient
                grad_bias = torch.from_numpy(summed_bias)
            elif grad_bias is None:  # the weight needs no gradient
                grad_bias = gru_parameter_grads(grad_input_gates, grad_candidate_hidden, output, h0)[1]
        return grad_input_gates, grad_h, grad_weight, grad_bias, None, None


def sparse_gru_sequence(input_gates: torch.Tensor, h0: torch.Tensor, weight_hh: torch.Tensor,
                        bias_hh: torch.Tensor, mask: torch.Tensor, dense_weight_grad: bool = False
                        ) -> torch.Tensor:
    """:func:`vocoder.layers.gru_sequence` with the recurrent matrix ``weight_hh ⊙ mask``.

    Differentiable with respect to the first four arguments; the weight gradient is the dense one
    with ``mask`` applied (zero on pruned weights), or with ``dense_weight_grad`` the full gradient
    ``Σ_t g_t h_{t−1}ᵀ`` of every weight (for schedules whose pruned weights regrow from their
    gradients; the recurrent products still skip the pruned blocks). CPU float32/float64 tensors.

    Args:
        input_gates: ``(N, B, 3H)`` time-major input projections (gates ``r, z, n``).
        h0: ``(B, H)`` initial state.
        weight_hh: ``(3H, H)`` recurrent weights.
        bias_hh: ``(3H,)`` recurrent bias.
        mask: ``(3H, H)`` bool keep-mask of 16×1 blocks (and, optionally, each gate's diagonal),
            e.g. :meth:`vocoder.layers.BlockSparsifier.mask`.
        dense_weight_grad: see above.

    Returns:
        ``(N, B, H)`` hidden states ``h_1 … h_N``.
    """
    if input_gates.device.type != "cpu" or input_gates.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"sparse_gru_sequence runs on CPU float32/float64 tensors, got {input_gates.device} "
                         f"{input_gates.dtype}")
    if mask.shape != weight_hh.shape:
        raise ValueError(f"mask {tuple(mask.shape)} does not match weight_hh {tuple(weight_hh.shape)}")
    return _SparseGRUSequence.apply(input_gates, h0, weight_hh, bias_hh, mask, bool(dense_weight_grad))
