"""Vectorizable numba building blocks: exp/sigmoid/tanh and the 16-lane block matrix–vector product.

Numba here has no vector math library (SVML), so ``math.exp`` inside a loop stays scalar and a
``for k in range(16)`` accumulation is not turned into SIMD either (numba arrays may alias). The
functions below fix both:

* :func:`vexp`, :func:`vsigmoid`, :func:`vtanh` are polynomial implementations (Cody–Waite range
  reduction, Taylor polynomial, exponent built by bit-casting) that LLVM vectorizes inside ordinary
  loops. They are accurate to about 1 ulp in float32 (degree 7) and float64 (degree 13), so a float64
  run agrees with torch to ~1e-16 — what lets the fast synthesis path reproduce the torch reference
  sample for sample. Their inputs are clamped to ``[-87, 87]`` (float32) / ``[-708, 708]`` (float64),
  which only matters where the results are already 0 or 1 to working precision.
* :func:`block_gemv` is ``y += W x`` for a matrix stored as 16×1 blocks (16 consecutive output rows
  × one input column, LPCNet's sparsity pattern), written directly in LLVM IR with 16-wide vector
  fused multiply–adds and four independent accumulators per block row, so the products stay in
  registers instead of round-tripping through memory; :func:`dense_gemv` is its dense counterpart
  (transposed weights, tiles of output vectors kept in registers, no index loads). The ``…2`` /
  ``…4`` variants advance 2 / 4 utterances at once, loading every weight once for all of them.

Callers compile with ``fastmath=set(FASTMATH)`` (contraction only: ``reassoc`` would let LLVM fold
the two-constant range reduction back into one and cost the float64 accuracy) and
``error_model="numpy"`` (numba's default Python error model guards every division with a branch,
which keeps the loops scalar).
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

# Fused multiply–add and signed-zero freedom only: no reassociation (see the module docstring).
# A tuple (immutable); pass ``fastmath=set(FASTMATH)`` to numba.
FASTMATH = ("contract", "nsz")

#: Output rows per block of :func:`block_gemv` (LPCNet's 16×1 blocks).
BLOCK_ROWS = 16
# Independent accumulators per block row: hides the 4-cycle FMA latency.
_UNROLL = 4


@intrinsic
def _bits_to_float(typingctx, bits):
    """Reinterpret an int32 (int64) bit pattern as a float32 (float64)."""
    if bits == types.int32:
        sig = types.float32(bits)
    elif bits == types.int64:
        sig = types.float64(bits)
    else:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(signature.return_type))

    return sig, codegen


def one_like(x):
    """The constant 1 in the float type of ``x`` (numba promotes ``1 - float32`` to float64)."""
    return 1.0


@overload(one_like, inline="always")
def _one_like_overload(x):
    if x == types.float32:
        one32 = np.float32(1.0)
        return lambda x: one32
    if x == types.float64:
        return lambda x: 1.0
    return None


def vexp(x):
    """``exp(x)`` for float32/float64 scalars inside numba code (vectorizable, ~1 ulp)."""
    return math.exp(x)


@overload(vexp, inline="always", jit_options={"fastmath": set(FASTMATH)})
def _vexp_overload(x):
    if x == types.float32:
        f32 = np.float32
        low, high = f32(-87.0), f32(87.0)
        log2e, half = f32(1.4426950408889634), f32(0.5)
        # ln 2 split so that k·ln2_hi is exact for |k| < 2^12 (Cody–Waite)
        ln2_hi, ln2_lo = f32(0.693359375), f32(-2.12194440e-4)
        c = [f32(1.0 / math.factorial(i)) for i in range(8)]
        c0, c1, c2, c3, c4, c5, c6, c7 = c

        def impl32(x):
            x = min(max(x, low), high)
            k = np.floor(x * log2e + half)
            r = x - k * ln2_hi - k * ln2_lo
            p = c0 + r * (c1 + r * (c2 + r * (c3 + r * (c4 + r * (c5 + r * (c6 + r * c7))))))
            return p * _bits_to_float(np.int32((np.int32(k) + 127) << 23))

        return impl32
    if x == types.float64:
        d = [1.0 / math.factorial(i) for i in range(14)]
        d0, d1, d2, d3, d4, d5, d6, d7, d8, d9, d10, d11, d12, d13 = d
        ln2_hi, ln2_lo = 6.93147180369123816490e-01, 1.90821492927058770002e-10

        def impl64(x):
            x = min(max(x, -708.0), 708.0)
            k = np.floor(x * 1.4426950408889634 + 0.5)
            r = (x - k * ln2_hi) - k * ln2_lo
            p = d0 + r * (d1 + r * (d2 + r * (d3 + r * (d4 + r * (d5 + r * (d6 + r * (
                d7 + r * (d8 + r * (d9 + r * (d10 + r * (d11 + r * (d12 + r * d13))))))))))))
            return p * _bits_to_float(np.int64((np.int64(k) + 1023) << 52))

        return impl64
    return None


def vsigmoid(x):
    """Logistic sigmoid ``1 / (1 + exp(-x))`` inside numba code (vectorizable; dtype of ``x``)."""
    return 1.0 / (1.0 + math.exp(-x))


@overload(vsigmoid, inline="always", jit_options={"fastmath": set(FASTMATH)})
def _vsigmoid_overload(x):
    if x not in (types.float32, types.float64):
        return None
    one = np.float32(1.0) if x == types.float32 else 1.0

    def impl(x):
        return one / (one + vexp(-x))

    return impl


def vtanh(x):
    """``tanh(x)`` inside numba code: ``sign(x)·(1 − e)/(1 + e)``, ``e = exp(−2|x|)`` (abs. error ~1 ulp)."""
    return math.tanh(x)


@overload(vtanh, inline="always", jit_options={"fastmath": set(FASTMATH)})
def _vtanh_overload(x):
    if x not in (types.float32, types.float64):
        return None
    one = np.float32(1.0) if x == types.float32 else 1.0
    minus_two = np.float32(-2.0) if x == types.float32 else -2.0

    def impl(x):
        e = vexp(minus_two * abs(x))
        return math.copysign((one - e) / (one + e), x)

    return impl


class _VectorCode:
    """LLVM IR helpers for 16-lane vectors of one float dtype (used by the gemv intrinsics)."""

    def __init__(self, context, builder, dtype) -> None:
        self.context, self.builder = context, builder
        self.i64 = ir.IntType(64)
        self.vec = ir.VectorType(context.get_value_type(dtype), BLOCK_ROWS)
        suffix = "f32" if dtype == types.float32 else "f64"
        self.fma_function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(self.vec, [self.vec] * 3), f"llvm.fma.v{BLOCK_ROWS}{suffix}"
        )
        self.splat = ir.Constant(ir.VectorType(ir.IntType(32), BLOCK_ROWS), [0] * BLOCK_ROWS)

    def const(self, value: int) -> ir.Constant:
        return ir.Constant(self.i64, value)

    def array(self, array_type, value):
        return self.context.make_array(array_type)(self.context, self.builder, value)

    def length(self, array) -> ir.Value:
        return cgutils.unpack_tuple(self.builder, array.shape)[0]

    def load_index(self, array, position) -> ir.Value:
        value = self.builder.load(self.builder.gep(array.data, [position]))
        return self.builder.sext(value, self.i64) if value.type.width < 64 else value

    def broadcast(self, array, position) -> ir.Value:
        scalar = self.builder.load(self.builder.gep(array.data, [position]))
        lane = ir.Constant(ir.IntType(32), 0)
        vector = self.builder.insert_element(ir.Constant(self.vec, ir.Undefined), scalar, lane)
        return self.builder.shuffle_vector(vector, ir.Constant(self.vec, ir.Undefined), self.splat)

    def vector_pointer(self, array, position):
        """Pointer to the 16 elements starting at ``position`` (unaligned access)."""
        return self.builder.bitcast(self.builder.gep(array.data, [position]), self.vec.as_pointer())

    def load(self, pointer) -> ir.Value:
        return self.builder.load(pointer, align=1)

    def store(self, value, pointer) -> None:
        self.builder.store(value, pointer, align=1)

    def fma_into(self, accumulator, a, b) -> None:
        """``accumulator += a · b`` (accumulator: an alloca'd vector, promoted to a register)."""
        builder = self.builder
        builder.store(builder.call(self.fma_function, [a, b, builder.load(accumulator)]), accumulator)

    def accumulators(self, count: int) -> list:
        return [cgutils.alloca_once(self.builder, self.vec) for _ in range(count)]

    def sum(self, accumulators: list) -> ir.Value:
        """Pairwise sum of the loaded accumulators."""
        values = [self.builder.load(a) for a in accumulators]
        while len(values) > 1:
            values = [self.builder.fadd(values[i], values[i + 1]) if i + 1 < len(values) else values[i]
                      for i in range(0, len(values), 2)]
        return values[0]

    def zero(self) -> ir.Constant:
        return ir.Constant(self.vec, None)


def _float_vectors(*arrays) -> bool:
    return all(isinstance(a, types.Array) and a.ndim == 1 for a in arrays) and len(
        {a.dtype for a in arrays}) == 1 and arrays[0].dtype in (types.float32, types.float64)


def _int_vectors(*arrays) -> bool:
    return all(isinstance(a, types.Array) and a.ndim == 1 and isinstance(a.dtype, types.Integer)
               for a in arrays)


def _make_block_gemv(group: int):
    """The block-sparse product for ``group`` utterances at once (weights loaded once for all)."""
    unroll = max(1, _UNROLL // group)  # independent accumulators per utterance and block row

    @intrinsic
    def block_gemv_group(typingctx, row_ptr, col_idx, blocks, x, x_stride, y, y_stride):
        if not (_float_vectors(blocks, x, y) and _int_vectors(row_ptr, col_idx)
                and isinstance(x_stride, types.Integer) and isinstance(y_stride, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            code = _VectorCode(context, builder, signature.args[2].dtype)
            ptr_a, idx_a, blk_a, x_a = (code.array(signature.args[i], args[i]) for i in range(4))
            y_a = code.array(signature.args[5], args[5])
            x_step = context.cast(builder, args[4], signature.args[4], types.int64)
            y_step = context.cast(builder, args[6], signature.args[6], types.int64)
            n_rows = builder.sub(code.length(ptr_a), code.const(1))
            accumulators = [code.accumulators(unroll) for _ in range(group)]

            def accumulate(u, entry):
                weights = code.load(code.vector_pointer(blk_a, builder.mul(entry, code.const(BLOCK_ROWS))))
                column = code.load_index(idx_a, entry)
                for g in range(group):
                    x_g = code.broadcast(x_a, builder.add(builder.mul(code.const(g), x_step), column))
                    code.fma_into(accumulators[g][u], weights, x_g)

            with cgutils.for_range(builder, n_rows) as row_loop:
                row = row_loop.index
                start = code.load_index(ptr_a, row)
                end = code.load_index(ptr_a, builder.add(row, code.const(1)))
                out_ptrs = [code.vector_pointer(y_a, builder.add(builder.mul(code.const(g), y_step),
                                                                 builder.mul(row, code.const(BLOCK_ROWS))))
                            for g in range(group)]
                for g in range(group):
                    builder.store(code.load(out_ptrs[g]), accumulators[g][0])
                    for accumulator in accumulators[g][1:]:
                        builder.store(code.zero(), accumulator)
                groups = builder.udiv(builder.sub(end, start), code.const(unroll))
                with cgutils.for_range(builder, groups) as group_loop:
                    base = builder.add(start, builder.mul(group_loop.index, code.const(unroll)))
                    for u in range(unroll):
                        accumulate(u, builder.add(base, code.const(u)))
                tail = builder.add(start, builder.mul(groups, code.const(unroll)))
                with cgutils.for_range(builder, builder.sub(end, tail)) as tail_loop:
                    accumulate(0, builder.add(tail, tail_loop.index))
                for g in range(group):
                    code.store(code.sum(accumulators[g]), out_ptrs[g])
            return context.get_dummy_value()

        return types.void(row_ptr, col_idx, blocks, x, x_stride, y, y_stride), codegen

    return block_gemv_group


def _make_dense_gemv(group: int):
    """The dense product for ``group`` utterances at once (weights loaded once for all)."""
    # (output vectors per tile, interleaved column accumulators): at most 8 accumulators in flight
    plans = {1: ((4, 1), (2, 2), (1, 4)), 2: ((4, 1), (2, 1), (1, 2)), 4: ((2, 1), (1, 1))}[group]

    @intrinsic
    def dense_gemv_group(typingctx, weights_t, x, x_stride, y, y_stride):
        if not (_float_vectors(weights_t, x, y) and isinstance(x_stride, types.Integer)
                and isinstance(y_stride, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            code = _VectorCode(context, builder, signature.args[0].dtype)
            w_a, x_a = code.array(signature.args[0], args[0]), code.array(signature.args[1], args[1])
            y_a = code.array(signature.args[3], args[3])
            x_step = context.cast(builder, args[2], signature.args[2], types.int64)
            y_step = context.cast(builder, args[4], signature.args[4], types.int64)
            n_out, n_in = y_step, x_step
            n_vectors = builder.udiv(n_out, code.const(BLOCK_ROWS))
            largest = max(v * i for v, i in plans) * group
            pool = code.accumulators(largest)

            def tile(first_vector, vectors: int, interleave: int) -> None:
                """Outputs ``[16·first_vector, 16·(first_vector + vectors))`` over all inputs."""
                def slot(g: int, v: int, u: int):
                    return pool[(g * vectors + v) * interleave + u]

                rows = [builder.mul(builder.add(first_vector, code.const(v)), code.const(BLOCK_ROWS))
                        for v in range(vectors)]
                out_ptrs = [[code.vector_pointer(y_a, builder.add(builder.mul(code.const(g), y_step), row))
                             for row in rows] for g in range(group)]
                for g in range(group):
                    for v in range(vectors):
                        builder.store(code.load(out_ptrs[g][v]), slot(g, v, 0))
                        for u in range(1, interleave):
                            builder.store(code.zero(), slot(g, v, u))

                def column(j, u: int) -> None:
                    base = builder.mul(j, n_out)
                    weights = [code.load(code.vector_pointer(w_a, builder.add(base, row))) for row in rows]
                    for g in range(group):
                        x_j = code.broadcast(x_a, builder.add(builder.mul(code.const(g), x_step), j))
                        for v in range(vectors):
                            code.fma_into(slot(g, v, u), weights[v], x_j)

                groups = builder.udiv(n_in, code.const(interleave))
                with cgutils.for_range(builder, groups) as group_loop:
                    base_column = builder.mul(group_loop.index, code.const(interleave))
                    for u in range(interleave):
                        column(builder.add(base_column, code.const(u)), u)
                tail = builder.mul(groups, code.const(interleave))
                with cgutils.for_range(builder, builder.sub(n_in, tail)) as tail_loop:
                    column(builder.add(tail, tail_loop.index), 0)
                for g in range(group):
                    for v in range(vectors):
                        code.store(code.sum([slot(g, v, u) for u in range(interleave)]), out_ptrs[g][v])

            (full, full_interleave), *remainders = plans
            full_tiles = builder.udiv(n_vectors, code.const(full))
            with cgutils.for_range(builder, full_tiles) as tile_loop:
                tile(builder.mul(tile_loop.index, code.const(full)), full, full_interleave)
            done = cgutils.alloca_once_value(builder, builder.mul(full_tiles, code.const(full)))
            for vectors, interleave in remainders:  # binary decomposition of the remainder
                end = builder.add(builder.load(done), code.const(vectors))
                fits = builder.icmp_unsigned("<=", end, n_vectors)
                with builder.if_then(fits):
                    tile(builder.load(done), vectors, interleave)
                    builder.store(builder.add(builder.load(done), code.const(vectors)), done)
            return context.get_dummy_value()

        return types.void(weights_t, x, x_stride, y, y_stride), codegen

    return dense_gemv_group


#: Utterances that the grouped products below handle at once.
GROUP_SIZES = (1, 2, 4)

block_gemv = _make_block_gemv(1)
block_gemv.__doc__ = """``y += W x`` for ``W`` stored as 16×1 blocks in compressed block-row form.

Signature ``(row_ptr, col_idx, blocks, x, x_stride, y, y_stride)``. Block row ``r`` covers outputs
``y[16r : 16r + 16]``; its blocks are entries ``e ∈ [row_ptr[r], row_ptr[r + 1])`` with input column
``col_idx[e]`` and the 16 weights ``blocks[16e : 16e + 16]`` (flat). ``len(y) ≥ 16·(len(row_ptr) − 1)``.
Integer arrays may be int32 or int64; the float arrays (1-D, contiguous) share one dtype, float32 or
float64. The products of a block row are summed by four interleaved accumulators. The strides are
unused here; :data:`block_gemv2` / :data:`block_gemv4` take 2 / 4 utterances stored every
``x_stride`` / ``y_stride`` elements of ``x`` / ``y`` and load each weight block once for all.
"""
block_gemv2 = _make_block_gemv(2)
block_gemv4 = _make_block_gemv(4)

dense_gemv = _make_dense_gemv(1)
dense_gemv.__doc__ = """``y += W x`` for a dense ``W`` given transposed: ``weights_t[j·R + i] = W[i, j]``.

Signature ``(weights_t, x, x_stride, y, y_stride)``: ``x_stride`` is the input size and
``y_stride = R`` the (16-padded) output size; :data:`dense_gemv2` / :data:`dense_gemv4` take 2 / 4
utterances stored every ``x_stride`` / ``y_stride`` elements of ``x`` / ``y``. Outputs
are processed in tiles of output vectors that stay in registers for the whole pass over ``x`` (one
weight load feeds every utterance, one broadcast of ``x[j]`` every vector of the tile).
"""
dense_gemv2 = _make_dense_gemv(2)
dense_gemv4 = _make_dense_gemv(4)


def pack_dense(matrix: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Layout of :func:`dense_gemv`: rows zero-padded to a multiple of 16, transposed, flattened.

    Args:
        matrix: ``(rows, cols)`` weights.
        dtype: float dtype.

    Returns:
        ``(cols · padded_rows,)`` with ``out[j · padded_rows + i] = matrix[i, j]``.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    rows, cols = matrix.shape
    padded = np.zeros((-(-rows // BLOCK_ROWS) * BLOCK_ROWS, cols))
    padded[:rows] = matrix
    return np.ascontiguousarray(padded.T, dtype=dtype).reshape(-1)


def pack_blocks(matrix: np.ndarray, dtype: np.dtype, keep_zero_blocks: bool = False
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pack a dense matrix into the compressed 16×1 block-row form read by :func:`block_gemv`.

    Rows are zero-padded to a multiple of 16. A block (16 rows × 1 column) is stored when any of its
    weights is non-zero (or always with ``keep_zero_blocks``).

    Args:
        matrix: ``(rows, cols)`` weights.
        dtype: float dtype of the packed weights.
        keep_zero_blocks: store all-zero blocks too (dense layout).

    Returns:
        ``row_ptr`` ``(ceil(rows/16) + 1,)`` int32, ``col_idx`` ``(nnz,)`` int32 and ``blocks``
        ``(16·nnz,)`` of ``dtype``.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    rows, cols = matrix.shape
    n_block_rows = -(-rows // BLOCK_ROWS)
    padded = np.zeros((n_block_rows * BLOCK_ROWS, cols))
    padded[:rows] = matrix
    grouped = padded.reshape(n_block_rows, BLOCK_ROWS, cols)  # (block row, lane, column)
    present = np.ones((n_block_rows, cols), bool) if keep_zero_blocks else np.any(grouped != 0, axis=1)
    row_ptr = np.zeros(n_block_rows + 1, np.int32)
    row_ptr[1:] = np.cumsum(present.sum(axis=1))
    block_row, column = np.nonzero(present)  # row-major order: block row, then column
    blocks = grouped[block_row, :, column]  # (nnz, 16)
    return row_ptr, column.astype(np.int32), np.ascontiguousarray(blocks, dtype=dtype).reshape(-1)
