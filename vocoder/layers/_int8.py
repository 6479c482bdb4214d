"""8-bit matrix–vector products for the int8 LPCNet sampler: int8 weights, int8 activations, int32 sums.

The arithmetic (what every implementation below computes exactly, so that they agree bit for bit
with each other and with a float64 reference):

* weights are quantized per output row: ``scale_r = max_c |W[r, c]| / 127``,
  ``Wq[r, c] = round(W[r, c] / scale_r)`` ∈ [-127, 127] (:func:`quantize_rows`);
* activations in [-1, 1] (GRU states) are quantized with the fixed step 1/127:
  ``xq = floor(127·x + ½)`` ∈ [-127, 127] (:func:`quantize_activations`);
* the product is the exact integer ``acc_r = Σ_c Wq[r, c]·xq[c]`` (|acc| < 2³¹ for any width
  below 133,000), added to the float output as ``y_r += acc_r · s_r`` with ``s_r = scale_r / 127``
  (one fused multiply–add).

Layout (:func:`pack_int8_blocks`): the matrix is cut into LPCNet's 16×1 blocks (16 consecutive
output rows × one input column); the non-zero blocks of each 16-row block row are taken four at a
time (padded with zero blocks to a multiple of four) and stored as 64 bytes, lane-major: the four
weights of output row ``i`` are bytes ``4i … 4i + 3``. That is the operand shape of the x86 byte dot
products (four int8 products summed into each 32-bit lane), while pruned blocks cost nothing.

:func:`int8_block_gemv` is the product (:func:`int8_aligned_gemv` the same for groups of four
consecutive, 4-aligned columns — one 32-bit activation load instead of a gather —, and
:func:`int8_dense_gemv` for a matrix with every block kept). Three implementations of each, chosen for
numba's compile target (:func:`int8_isa` says which one it gets):

* ``avx512vnni`` (AVX-512 BW + VBMI + VNNI: Ice Lake and later Xeons, AMD Zen 4 and later): one
  ``vpdpbusd`` (unsigned × signed bytes, four products summed into each of 16 int32 lanes, no
  saturation) per group of four blocks. The activations are biased to unsigned bytes ``xq + 128``
  and the bias is taken back out with the stored row sums (``acc − 128·Σ_c Wq[r, c]``). The four
  activations of each group are gathered 16 groups at a time with ``vpermi2b`` byte permutes from
  the activation vector (128 bytes per permute) instead of four scalar loads per group;
* ``avx2``: written in LLVM IR with ``vpsignb`` / ``vpmaddubsw`` / ``vpmaddwd`` (xiph's AVX2
  dot-product build multiplies unsigned activations with signed weights the same way; moving the
  activations' sign onto the weights keeps every 16-bit pair sum ≤ 2·127·127 < 2¹⁵, so nothing
  saturates and the sums stay exact);
* ``generic``: a plain integer loop.
"""

from __future__ import annotations

import functools

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils, config
from numba.extending import intrinsic, overload

#: Output rows per block (LPCNet's 16×1 blocks) and input columns per stored group.
INT8_BLOCK_ROWS = 16
INT8_GROUP = 4
#: The activation quantization step is 1 / ACTIVATION_LEVELS.
ACTIVATION_LEVELS = 127


#: Target features the ``avx512vnni`` product needs (byte permutes, byte dot products, 512-bit bytes).
VNNI_FEATURES = ("+avx512f", "+avx512bw", "+avx512vbmi", "+avx512vnni")


def int8_isa() -> str:
    """The product numba's target CPU gets: ``"avx512vnni"``, ``"avx2"`` or ``"generic"``.

    The target is what numba compiles for: ``NUMBA_CPU_FEATURES`` if set, else the host's features
    (``NUMBA_CPU_NAME`` alone does not change numba's feature string).
    """
    import platform

    import llvmlite.binding as ll

    if platform.machine().lower() not in ("x86_64", "amd64"):
        return "generic"
    features = config.CPU_FEATURES
    if features is None:
        features = ll.get_host_cpu_features().flatten()
    flags = set(features.split(","))
    if all(flag in flags for flag in VNNI_FEATURES):
        return "avx512vnni"
    return "avx2" if "+avx2" in flags else "generic"


def quantize_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row symmetric int8 quantization.

    Args:
        matrix: ``(rows, cols)`` float weights.

    Returns:
        ``(Wq, scale)``: ``(rows, cols)`` int8 with ``W ≈ Wq · scale[:, None]``, and ``(rows,)``
        float64 ``scale_r = max |W[r]| / 127`` (0 for an all-zero row, whose ``Wq`` is 0).
    """
    matrix = np.asarray(matrix, np.float64)
    peak = np.abs(matrix).max(axis=1) if matrix.shape[1] else np.zeros(matrix.shape[0])
    scale = peak / 127.0
    safe = np.where(scale > 0, scale, 1.0)
    quantized = np.clip(np.rint(matrix / safe[:, None]), -127, 127).astype(np.int8)
    return quantized, scale


def quantize_activations_reference(x: np.ndarray) -> np.ndarray:
    """``floor(127·x + ½)`` clipped to [-127, 127], as int64 (the float64 reference of the kernels)."""
    return np.clip(np.floor(ACTIVATION_LEVELS * np.asarray(x, np.float64) + 0.5), -127, 127).astype(np.int64)


@njit(inline="always")
def quantize_activations(x, xq):
    """``xq[i] = floor(127·x[i] + ½)`` (int8) for ``x`` in [-1, 1] (values outside are clipped)."""
    levels = x.dtype.type(ACTIVATION_LEVELS)
    half = x.dtype.type(0.5)
    for i in range(x.shape[0]):
        value = np.floor(levels * x[i] + half)
        value = min(max(value, -levels), levels)
        xq[i] = np.int8(value)


def pack_int8_blocks(quantized: np.ndarray, keep: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pack an int8 matrix into the grouped 16×1 block layout of :func:`int8_block_gemv`.

    Args:
        quantized: ``(rows, cols)`` int8 weights (rows are zero-padded to a multiple of 16).
        keep: ``(ceil(rows/16), cols)`` bool, the blocks to store (default: every block with a non-zero
            weight). Pass all-True for a dense matrix.

    Returns:
        ``row_ptr`` ``(ceil(rows/16) + 1,)`` int32 (in groups of four blocks); ``col_idx``
        ``(4·groups + 64,)`` int32, entries ``4g … 4g + 3`` the columns of group ``g`` (padding
        entries repeat a stored column and have zero weights; the 64 entries after the last group
        are 0, so that the AVX-512 product may read 16 groups' columns at once); ``weights``
        ``(64·groups,)`` int8, group ``g`` at ``64g``, row ``i`` of it at ``64g + 4i``; ``row_sum``
        ``(16·ceil(rows/16),)`` int32, the sum of each (padded) row's stored weights.
    """
    quantized = np.asarray(quantized)
    rows, cols = quantized.shape
    n_block_rows = -(-rows // INT8_BLOCK_ROWS)
    padded = np.zeros((n_block_rows * INT8_BLOCK_ROWS, cols), np.int8)
    padded[:rows] = quantized
    grouped = padded.reshape(n_block_rows, INT8_BLOCK_ROWS, cols)
    if keep is None:
        keep = np.any(grouped != 0, axis=1)
    row_ptr = np.zeros(n_block_rows + 1, np.int32)
    columns: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    for block_row in range(n_block_rows):
        live = np.flatnonzero(keep[block_row])
        n_groups = -(-live.shape[0] // INT8_GROUP)
        row_ptr[block_row + 1] = row_ptr[block_row] + n_groups
        if n_groups == 0:
            continue
        filler = live[-1] if live.shape[0] else 0
        padded_columns = np.full(n_groups * INT8_GROUP, filler, np.int64)
        padded_columns[: live.shape[0]] = live
        block = grouped[block_row][:, padded_columns].astype(np.int8)  # (16, 4·groups)
        block[:, live.shape[0]:] = 0
        # (16, groups, 4) → (groups, 16, 4): lane-major within a group
        weights.append(block.reshape(INT8_BLOCK_ROWS, n_groups, INT8_GROUP).transpose(1, 0, 2).reshape(-1))
        columns.append(padded_columns.astype(np.int32))
    columns.append(np.zeros(4 * INT8_BLOCK_ROWS, np.int32))
    col_idx = np.concatenate(columns)
    packed = np.concatenate(weights) if weights else np.zeros(0, np.int8)
    row_sum = np.zeros(n_block_rows * INT8_BLOCK_ROWS, np.int32)
    for block_row in range(n_block_rows):
        groups = packed[64 * row_ptr[block_row] : 64 * row_ptr[block_row + 1]].astype(np.int32)
        row_sum[16 * block_row : 16 * block_row + 16] = groups.reshape(-1, 16, 4).sum(axis=(0, 2))
    return row_ptr, col_idx, np.ascontiguousarray(packed, dtype=np.int8), row_sum


@njit(nogil=True, cache=True)
def int8_block_gemv_generic(row_ptr, col_idx, weights, row_sum, xq, scale, y):
    """Portable :func:`int8_block_gemv` (integer loops; ``row_sum`` is not needed)."""
    acc = np.zeros(16, np.int32)
    for block_row in range(row_ptr.shape[0] - 1):
        acc[:] = 0
        for group in range(row_ptr[block_row], row_ptr[block_row + 1]):
            base = 4 * group
            x0 = np.int32(xq[col_idx[base]])
            x1 = np.int32(xq[col_idx[base + 1]])
            x2 = np.int32(xq[col_idx[base + 2]])
            x3 = np.int32(xq[col_idx[base + 3]])
            w = weights[64 * group : 64 * group + 64]
            for i in range(16):
                acc[i] += (np.int32(w[4 * i]) * x0 + np.int32(w[4 * i + 1]) * x1
                           + np.int32(w[4 * i + 2]) * x2 + np.int32(w[4 * i + 3]) * x3)
        for i in range(16):
            row = 16 * block_row + i
            y[row] += acc[i] * scale[row]


def _is_vector(array, dtype) -> bool:
    return isinstance(array, types.Array) and array.ndim == 1 and array.dtype == dtype


def _product_types(row_ptr, col_idx, weights, row_sum, xq, scale, y) -> bool:
    return (_is_vector(row_ptr, types.int32) and _is_vector(col_idx, types.int32)
            and _is_vector(weights, types.int8) and _is_vector(row_sum, types.int32)
            and _is_vector(xq, types.int8)
            and isinstance(y, types.Array) and y.ndim == 1 and y.dtype in (types.float32, types.float64)
            and _is_vector(scale, y.dtype))


def _llvm_function(module, name: str, result, *arguments):
    """Declare (once) the LLVM function or intrinsic ``name`` in ``module``."""
    return cgutils.get_or_insert_function(module, ir.FunctionType(result, list(arguments)), name)


#: How a product finds the four activations of a group: ``gather`` (any four columns, the general
#: layout), ``aligned`` (the columns are ``c … c + 3`` with ``c = col_idx[4g]`` a multiple of 4: one
#: 32-bit load) or ``dense`` (every block kept: group ``j`` of a block row holds columns ``4j … 4j + 3``).
COLUMN_MODES = ("gather", "aligned", "dense")


def _make_int8_gemv_avx2(columns: str):
    """The AVX2 product; ``columns`` one of :data:`COLUMN_MODES`."""
    if columns not in COLUMN_MODES:
        raise ValueError(f"columns must be one of {COLUMN_MODES}, got {columns!r}")
    dense, aligned = columns == "dense", columns == "aligned"

    @intrinsic
    def int8_gemv_avx2(typingctx, row_ptr, col_idx, weights, row_sum, xq, scale, y):
        if not _product_types(row_ptr, col_idx, weights, row_sum, xq, scale, y):
            return None

        def codegen(context, builder, signature, args):
            i8, i16, i32, i64 = ir.IntType(8), ir.IntType(16), ir.IntType(32), ir.IntType(64)
            bytes32, words16, ints8 = ir.VectorType(i8, 32), ir.VectorType(i16, 16), ir.VectorType(i32, 8)
            floats8 = ir.VectorType(context.get_value_type(signature.args[6].dtype), 8)
            function = functools.partial(_llvm_function, builder.module)
            psign = function("llvm.x86.avx2.psign.b", bytes32, bytes32, bytes32)
            pabs = function("llvm.abs.v32i8", bytes32, bytes32, ir.IntType(1))
            maddubs = function("llvm.x86.avx2.pmadd.ub.sw", words16, bytes32, bytes32)
            maddwd = function("llvm.x86.avx2.pmadd.wd", ints8, words16, words16)
            suffix = "f32" if signature.args[6].dtype == types.float32 else "f64"
            fma = function(f"llvm.fma.v8{suffix}", floats8, floats8, floats8, floats8)
            arrays = [context.make_array(signature.args[k])(context, builder, args[k]) for k in range(7)]
            ptr_a, idx_a, w_a, _, x_a, scale_a, y_a = arrays
            n_rows = builder.sub(cgutils.unpack_tuple(builder, ptr_a.shape)[0], ir.Constant(i64, 1))
            ones = ir.Constant(words16, [1] * 16)
            splat = ir.Constant(ints8, [0] * 8)

            def const(value):
                return ir.Constant(i64, value)

            def load_i64(array, position):
                return builder.sext(builder.load(builder.gep(array.data, [position])), i64)

            accumulators = [cgutils.alloca_once(builder, ints8) for _ in range(2)]
            with cgutils.for_range(builder, n_rows) as row_loop:
                row = row_loop.index
                start = load_i64(ptr_a, row)
                end = load_i64(ptr_a, builder.add(row, const(1)))
                for accumulator in accumulators:
                    builder.store(ir.Constant(ints8, None), accumulator)
                with cgutils.for_range(builder, builder.sub(end, start)) as group_loop:
                    group = builder.add(start, group_loop.index)
                    if dense or aligned:  # four consecutive activations: one 32-bit load
                        first = (builder.mul(group_loop.index, const(4)) if dense
                                 else load_i64(idx_a, builder.mul(group, const(4))))
                        pointer = builder.gep(x_a.data, [first])
                        packed = builder.load(builder.bitcast(pointer, i32.as_pointer()), align=1)
                    else:  # gather the four activations of the group's columns
                        packed = ir.Constant(i32, 0)
                        for k in range(4):
                            column = load_i64(idx_a, builder.add(builder.mul(group, const(4)), const(k)))
                            byte = builder.zext(builder.load(builder.gep(x_a.data, [column])), i32)
                            packed = builder.or_(packed, builder.shl(byte, ir.Constant(i32, 8 * k)))
                    undefined = ir.Constant(ints8, ir.Undefined)
                    vector = builder.insert_element(undefined, packed, ir.Constant(i32, 0))
                    vector = builder.shuffle_vector(vector, undefined, splat)
                    x_bytes = builder.bitcast(vector, bytes32)
                    x_abs = builder.call(pabs, [x_bytes, ir.Constant(ir.IntType(1), 0)])
                    base = builder.mul(group, const(64))
                    for half in range(2):
                        pointer = builder.gep(w_a.data, [builder.add(base, const(32 * half))])
                        w = builder.load(builder.bitcast(pointer, bytes32.as_pointer()), align=1)
                        # the activations' signs moved onto the weights: |x| · (±w), pair sums < 2^15
                        pairs = builder.call(maddubs, [x_abs, builder.call(psign, [w, x_bytes])])
                        quads = builder.call(maddwd, [pairs, ones])
                        total = builder.add(builder.load(accumulators[half]), quads)
                        builder.store(total, accumulators[half])
                for half in range(2):  # y += float(acc) · scale
                    offset = builder.add(builder.mul(row, const(16)), const(8 * half))
                    y_pointer = builder.bitcast(builder.gep(y_a.data, [offset]), floats8.as_pointer())
                    s_pointer = builder.bitcast(builder.gep(scale_a.data, [offset]), floats8.as_pointer())
                    total = builder.sitofp(builder.load(accumulators[half]), floats8)
                    result = builder.call(fma, [total, builder.load(s_pointer, align=1),
                                                builder.load(y_pointer, align=1)])
                    builder.store(result, y_pointer, align=1)
            return context.get_dummy_value()

        return types.void(row_ptr, col_idx, weights, row_sum, xq, scale, y), codegen

    return int8_gemv_avx2


int8_block_gemv_avx2 = _make_int8_gemv_avx2("gather")
int8_aligned_gemv_avx2 = _make_int8_gemv_avx2("aligned")
int8_dense_gemv_avx2 = _make_int8_gemv_avx2("dense")


def _make_int8_gemv_vnni(columns: str):
    """The AVX-512 VNNI product (see the module docstring); ``columns`` one of :data:`COLUMN_MODES`."""
    if columns not in COLUMN_MODES:
        raise ValueError(f"columns must be one of {COLUMN_MODES}, got {columns!r}")
    dense, aligned = columns == "dense", columns == "aligned"

    @intrinsic
    def int8_gemv_vnni(typingctx, row_ptr, col_idx, weights, row_sum, xq, scale, y):
        if not _product_types(row_ptr, col_idx, weights, row_sum, xq, scale, y):
            return None

        def codegen(context, builder, signature, args):
            i1, i8, i32, i64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
            bytes64, ints16, mask64 = ir.VectorType(i8, 64), ir.VectorType(i32, 16), ir.VectorType(i1, 64)
            index64 = ir.VectorType(i32, 64)
            float_type = context.get_value_type(signature.args[6].dtype)
            floats16 = ir.VectorType(float_type, 16)
            function = functools.partial(_llvm_function, builder.module)
            dpbusd = function("llvm.x86.avx512.vpdpbusd.512", ints16, ints16, ints16, ints16)
            permute2 = function("llvm.x86.avx512.vpermi2var.qi.512", bytes64, bytes64, bytes64, bytes64)
            masked_load = function("llvm.masked.load.v64i8.p0", bytes64, bytes64.as_pointer(), i32, mask64,
                                   bytes64)
            suffix = "f32" if signature.args[6].dtype == types.float32 else "f64"
            fma = function(f"llvm.fma.v16{suffix}", floats16, floats16, floats16, floats16)
            arrays = [context.make_array(signature.args[k])(context, builder, args[k]) for k in range(7)]
            ptr_a, idx_a, w_a, sum_a, x_a, scale_a, y_a = arrays
            n_rows = builder.sub(cgutils.unpack_tuple(builder, ptr_a.shape)[0], ir.Constant(i64, 1))
            n_cols = cgutils.unpack_tuple(builder, x_a.shape)[0]

            def const(value, kind=i64):
                return ir.Constant(kind, value)

            def splat(value, vector_type):
                undefined = ir.Constant(vector_type, ir.Undefined)
                vector = builder.insert_element(undefined, value, const(0, i32))
                zeros = ir.Constant(ir.VectorType(i32, vector_type.count), [0] * vector_type.count)
                return builder.shuffle_vector(vector, undefined, zeros)

            def load_i64(array, position):
                return builder.sext(builder.load(builder.gep(array.data, [position])), i64)

            bias = ir.Constant(bytes64, [-128] * 64)  # x ^ 0x80 = x + 128 as an unsigned byte
            lanes = ir.Constant(bytes64, list(range(64)))

            def biased_chunk(offset):
                """Bytes ``offset … offset + 63`` of ``xq`` (zero past its end) + 128, unsigned."""
                valid = builder.sub(n_cols, offset)
                valid = builder.select(builder.icmp_signed("<", valid, const(64)), valid, const(64))
                valid = builder.select(builder.icmp_signed("<", valid, const(0)), const(0), valid)
                mask = builder.icmp_signed("<", lanes, splat(builder.trunc(valid, i8), bytes64))
                pointer = builder.bitcast(builder.gep(x_a.data, [offset]), bytes64.as_pointer())
                loaded = builder.call(masked_load, [pointer, const(1, i32), mask, ir.Constant(bytes64, None)])
                return builder.xor(loaded, bias)

            accumulators = [cgutils.alloca_once(builder, ints16) for _ in range(4)]
            gathered = cgutils.alloca_once(builder, bytes64)
            stack_save = function("llvm.stacksave", i8.as_pointer())
            stack_restore = function("llvm.stackrestore", ir.VoidType(), i8.as_pointer())
            saved = builder.call(stack_save, [])
            # the biased activations, 64 bytes at a time, in a stack table padded to 128-byte chunks
            n_chunks = builder.udiv(builder.add(n_cols, const(127)), const(128))
            table = builder.alloca(i8, size=builder.mul(n_chunks, const(128)))

            def table_chunk(offset):
                return builder.bitcast(builder.gep(table, [offset]), bytes64.as_pointer())

            with cgutils.for_range(builder, builder.mul(n_chunks, const(2))) as fill_loop:
                offset = builder.mul(fill_loop.index, const(64))
                builder.store(biased_chunk(offset), table_chunk(offset), align=1)
            n_groups = load_i64(ptr_a, n_rows)
            if dense or aligned:  # four consecutive activations per group: no gather
                activations = table
            else:  # every group's four activations, 16 groups (64 column indices) per byte permute
                n_batches = builder.udiv(builder.add(n_groups, const(15)), const(16))
                activations = builder.alloca(i32, size=builder.mul(n_batches, const(16)))
                with cgutils.for_range(builder, n_batches) as batch_loop:
                    pointer = builder.gep(idx_a.data, [builder.mul(batch_loop.index, const(64))])
                    columns = builder.load(builder.bitcast(pointer, index64.as_pointer()), align=4)
                    low = builder.trunc(builder.and_(columns, splat(const(127, i32), index64)), bytes64)
                    high = builder.trunc(builder.lshr(columns, splat(const(7, i32), index64)), bytes64)
                    builder.store(ir.Constant(bytes64, None), gathered)
                    with cgutils.for_range(builder, n_chunks) as chunk_loop:
                        offset = builder.mul(chunk_loop.index, const(128))
                        lower = builder.load(table_chunk(offset), align=1)
                        upper = builder.load(table_chunk(builder.add(offset, const(64))), align=1)
                        picked = builder.call(permute2, [lower, low, upper])
                        chunk = splat(builder.trunc(chunk_loop.index, i8), bytes64)
                        merged = builder.select(builder.icmp_unsigned("==", high, chunk), picked,
                                                builder.load(gathered))
                        builder.store(merged, gathered)
                    target = builder.gep(activations, [builder.mul(batch_loop.index, const(16))])
                    target = builder.bitcast(target, bytes64.as_pointer())
                    builder.store(builder.load(gathered), target, align=1)
            with cgutils.for_range(builder, n_rows) as row_loop:
                row = row_loop.index
                start = load_i64(ptr_a, row)
                count = builder.sub(load_i64(ptr_a, builder.add(row, const(1))), start)
                for accumulator in accumulators:
                    builder.store(ir.Constant(ints16, None), accumulator)

                def accumulate(index, accumulator):  # the index-th group of the block row
                    group = builder.add(start, index)
                    if dense or aligned:  # dense: group j of the block row is bytes 4j … 4j + 3
                        first = (builder.mul(index, const(4)) if dense
                                 else load_i64(idx_a, builder.mul(group, const(4))))
                        pointer = builder.bitcast(builder.gep(activations, [first]), i32.as_pointer())
                    else:  # the gathered word of this group
                        pointer = builder.gep(activations, [group])
                    packed = builder.load(pointer, align=1)
                    pointer = builder.gep(w_a.data, [builder.mul(group, const(64))])
                    w = builder.load(builder.bitcast(pointer, ints16.as_pointer()), align=1)
                    total = builder.call(dpbusd, [builder.load(accumulator), splat(packed, ints16), w])
                    builder.store(total, accumulator)

                # four independent sums: one chain of dependent vpdpbusd would wait on its latency
                with cgutils.for_range(builder, builder.udiv(count, const(4))) as quad_loop:
                    for k, accumulator in enumerate(accumulators):
                        accumulate(builder.add(builder.mul(quad_loop.index, const(4)), const(k)), accumulator)
                done = builder.mul(builder.udiv(count, const(4)), const(4))
                with cgutils.for_range(builder, builder.sub(count, done)) as rest_loop:
                    accumulate(builder.add(done, rest_loop.index), accumulators[0])
                total = builder.load(accumulators[0])
                for accumulator in accumulators[1:]:
                    total = builder.add(total, builder.load(accumulator))
                # acc − 128·row sums, then y += float(acc) · scale for the 16 rows
                offset = builder.mul(row, const(16))
                sums_pointer = builder.bitcast(builder.gep(sum_a.data, [offset]), ints16.as_pointer())
                sums = builder.load(sums_pointer, align=4)
                exact = builder.sub(total, builder.shl(sums, splat(const(7, i32), ints16)))
                y_pointer = builder.bitcast(builder.gep(y_a.data, [offset]), floats16.as_pointer())
                s_pointer = builder.bitcast(builder.gep(scale_a.data, [offset]), floats16.as_pointer())
                result = builder.call(fma, [builder.sitofp(exact, floats16), builder.load(s_pointer, align=1),
                                            builder.load(y_pointer, align=1)])
                builder.store(result, y_pointer, align=1)
            builder.call(stack_restore, [saved])
            return context.get_dummy_value()

        return types.void(row_ptr, col_idx, weights, row_sum, xq, scale, y), codegen

    return int8_gemv_vnni


int8_block_gemv_vnni = _make_int8_gemv_vnni("gather")
int8_aligned_gemv_vnni = _make_int8_gemv_vnni("aligned")
int8_dense_gemv_vnni = _make_int8_gemv_vnni("dense")


def int8_block_gemv(row_ptr, col_idx, weights, row_sum, xq, scale, y):
    """``y[16r + i] += scale[16r + i] · Σ`` int8 weights × ``xq`` over the stored blocks of block row ``r``.

    The sum is exact (int32). Arrays (1-D, contiguous) from :func:`pack_int8_blocks`: ``row_ptr``,
    ``col_idx`` and ``row_sum`` int32, ``weights`` int8; ``xq`` int8 activations, ``scale`` and ``y``
    float32 or float64 of length ≥ 16·(len(row_ptr) − 1). Numba code only; the implementation is
    chosen for the compile target (:func:`int8_isa`). :func:`int8_dense_gemv` is the same for a matrix
    packed with every block kept (consecutive columns: one load per group instead of a gather).
    Called from Python it runs the portable kernel (the same exact integer sums).
    """
    int8_block_gemv_generic(row_ptr, col_idx, weights, row_sum, xq, scale, y)


def int8_dense_gemv(row_ptr, col_idx, weights, row_sum, xq, scale, y):
    """:func:`int8_block_gemv` for a matrix packed with every block kept (see there)."""
    int8_block_gemv_generic(row_ptr, col_idx, weights, row_sum, xq, scale, y)


def int8_aligned_gemv(row_ptr, col_idx, weights, row_sum, xq, scale, y):
    """:func:`int8_block_gemv` for a packing whose every group is four consecutive columns ``c … c + 3``
    with ``c`` a multiple of 4 (:func:`int8_groups_aligned`): a matrix pruned in 16×4 blocks, as xiph's
    8-bit build prunes in 8×4. One 32-bit load per group instead of a gather."""
    int8_block_gemv_generic(row_ptr, col_idx, weights, row_sum, xq, scale, y)


def int8_groups_aligned(row_ptr: np.ndarray, col_idx: np.ndarray) -> bool:
    """Whether every stored group of a :func:`pack_int8_blocks` layout is ``c … c + 3`` with ``c % 4 == 0``.

    That holds when the kept 16×1 blocks come in aligned runs of four columns (pruning in 16×4 blocks;
    :func:`int8_aligned_gemv` then applies).
    """
    n_groups = int(row_ptr[-1])
    columns = np.asarray(col_idx[: 4 * n_groups], np.int64).reshape(n_groups, 4)
    return bool(np.all(columns[:, 0] % 4 == 0) and np.all(columns - columns[:, :1] == np.arange(4)))


def _int8_overload(products):
    def typer(row_ptr, col_idx, weights, row_sum, xq, scale, y):
        product = products.get(int8_isa())
        if product is not None:
            def impl(row_ptr, col_idx, weights, row_sum, xq, scale, y):
                product(row_ptr, col_idx, weights, row_sum, xq, scale, y)
        else:
            def impl(row_ptr, col_idx, weights, row_sum, xq, scale, y):
                int8_block_gemv_generic(row_ptr, col_idx, weights, row_sum, xq, scale, y)
        return impl

    return typer


overload(int8_block_gemv, inline="always")(
    _int8_overload({"avx2": int8_block_gemv_avx2, "avx512vnni": int8_block_gemv_vnni}))
overload(int8_dense_gemv, inline="always")(
    _int8_overload({"avx2": int8_dense_gemv_avx2, "avx512vnni": int8_dense_gemv_vnni}))
overload(int8_aligned_gemv, inline="always")(
    _int8_overload({"avx2": int8_aligned_gemv_avx2, "avx512vnni": int8_aligned_gemv_vnni}))
