"""Dense CPU GRU recurrence over precomputed input projections, and GRU_A's table-built inputs.

:func:`gru_sequence` is ``nn.GRU`` (torch's gate order and equations) given ``input_gates = W_ih x +
b_ih``: the ``h W_hhᵀ`` products go through torch, the elementwise step through the fused numba
kernels of :mod:`vocoder.layers._gru_kernels`; a GRU of at most ``SMALL_GRU_MAX_HIDDEN`` units runs
its whole recurrence in one compiled loop. The batch is split over threads that never synchronize
inside the time loop. :func:`input_gates_from_tables` assembles LPCNet's GRU_A input projections
from per-code tables and per-frame terms. The block-sparse twin is
:func:`vocoder.layers.sparse_gru_sequence`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from vocoder.layers._gru_kernels import (
    SMALL_GRU_MAX_HIDDEN,
    gru_backward_step,
    gru_forward_step,
    input_gates_backward,
    input_gates_forward,
    small_gru_backward,
    small_gru_forward,
)
from vocoder.layers._sparse_gru import gru_parameter_grads
from vocoder.layers._threads import run_in_threads, split_range


def _chunks(size: int) -> list[tuple[int, int]]:
    """Split ``range(size)`` into one contiguous chunk per intra-op thread."""
    return split_range(size, torch.get_num_threads())


def _run_chunks(work: Callable[[int, int], None], chunks: list[tuple[int, int]]) -> None:
    """Run ``work(first, last)`` for every chunk, in parallel threads with one torch thread each.

    For the recurrence each chunk is an independent slice of the batch, so the threads never wait
    for each other inside the time loop; multi-threaded small matrix products would synchronize at
    every step instead (and stall whenever another process takes a core). The kernels release the
    GIL, torch releases it in its ops.
    """
    if len(chunks) == 1:
        work(*chunks[0])
        return
    threads_before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_in_threads(work, chunks)
    finally:
        torch.set_num_threads(threads_before)


class _InputGates(torch.autograd.Function):
    """GRU_A's input projections assembled from code tables and per-frame terms (CPU)."""

    @staticmethod
    def forward(ctx, tables: torch.Tensor, codes: torch.Tensor, frame_gates: torch.Tensor,
                hop: int) -> torch.Tensor:
        n_steps, batch, _ = codes.shape
        tables = tables.detach().contiguous()
        frame_gates = frame_gates.detach().contiguous()
        output = tables.new_empty(n_steps, batch, tables.shape[-1])
        arrays = (tables.numpy(), codes.numpy(), frame_gates.numpy(), hop, output.numpy())
        _run_chunks(lambda first, last: input_gates_forward(*arrays, first, last), _chunks(n_steps))
        ctx.save_for_backward(codes)
        ctx.hop = hop
        ctx.shapes = (tables.shape, frame_gates.shape)
        return output

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (codes,) = ctx.saved_tensors
        table_shape, frame_shape = ctx.shapes
        grad_output = grad_output.detach().contiguous()
        grad_tables = grad_output.new_zeros(table_shape)
        grad_frame = grad_output.new_zeros(frame_shape)
        arrays = (grad_output.numpy(), codes.numpy(), ctx.hop, grad_tables.numpy(), grad_frame.numpy())
        _run_chunks(lambda first, last: input_gates_backward(*arrays, first, last), _chunks(table_shape[-1]))
        return grad_tables, None, grad_frame, None


class _GRUSequence(torch.autograd.Function):
    """Time-major GRU recurrence over precomputed input projections (CPU, float32/float64)."""

    @staticmethod
    def forward(ctx, input_gates: torch.Tensor, h0: torch.Tensor, weight_hh: torch.Tensor,
                bias_hh: torch.Tensor) -> torch.Tensor:
        n_steps, batch, three_hidden = input_gates.shape
        hidden = three_hidden // 3
        x = input_gates.detach().contiguous()
        h0 = h0.detach().contiguous()
        weight_t = weight_hh.detach().t()
        bias = bias_hh.detach()
        output = x.new_empty(n_steps, batch, hidden)
        gates = x.new_empty(n_steps, batch, three_hidden)
        candidate_hidden = x.new_empty(n_steps, batch, hidden)
        hidden_gates = x.new_empty(batch, three_hidden)
        if hidden <= SMALL_GRU_MAX_HIDDEN:  # the whole recurrence in one compiled loop per chunk
            small = (x.numpy(), h0.numpy(), weight_t.contiguous().numpy(), bias.contiguous().numpy(),
                     hidden_gates.numpy(), gates.numpy(), candidate_hidden.numpy(), output.numpy())
            _run_chunks(lambda first, last: small_gru_forward(*small, first, last), _chunks(batch))
            ctx.save_for_backward(h0, weight_hh, gates, candidate_hidden, output)
            return output
        arrays = (x.numpy(), hidden_gates.numpy(), h0.numpy(), gates.numpy(), candidate_hidden.numpy(),
                  output.numpy())

        def work(first: int, last: int) -> None:
            steps = [h0[first:last]] + [step[first:last] for step in output.unbind(0)]
            chunk_gates = hidden_gates[first:last]
            for t in range(n_steps):
                torch.addmm(bias, steps[t], weight_t, out=chunk_gates)
                gru_forward_step(*arrays, t, first, last)

        _run_chunks(work, _chunks(batch))
        ctx.save_for_backward(h0, weight_hh, gates, candidate_hidden, output)
        return output

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        h0, weight_hh, gates, candidate_hidden, output = ctx.saved_tensors
        n_steps, batch, hidden = output.shape
        weight = weight_hh.detach()
        grad_output = grad_output.detach().contiguous()
        grad_input_gates = grad_output.new_empty(n_steps, batch, 3 * hidden)
        grad_candidate_hidden = grad_output.new_empty(n_steps, batch, hidden)
        grad_hidden_gates = grad_output.new_empty(batch, 3 * hidden)
        grad_h = grad_output.new_zeros(batch, hidden)
        arrays = (grad_output.numpy(), gates.numpy(), candidate_hidden.numpy(), output.numpy(), h0.numpy(),
                  grad_h.numpy(), grad_hidden_gates.numpy(), grad_input_gates.numpy(),
                  grad_candidate_hidden.numpy())

        if hidden <= SMALL_GRU_MAX_HIDDEN:
            small = (*arrays, weight.contiguous().numpy())
            _run_chunks(lambda first, last: small_gru_backward(*small, first, last), _chunks(batch))
        else:
            def work(first: int, last: int) -> None:
                chunk_grad_h = grad_h[first:last]
                chunk_grad_gates = grad_hidden_gates[first:last]
                for t in range(n_steps - 1, -1, -1):
                    gru_backward_step(*arrays, t, first, last)
                    chunk_grad_h.addmm_(chunk_grad_gates, weight)

            _run_chunks(work, _chunks(batch))

        grad_weight = grad_bias = None
        if ctx.needs_input_grad[2] or ctx.needs_input_grad[3]:
            grad_weight, grad_bias = gru_parameter_grads(grad_input_gates, grad_candidate_hidden, output, h0)
        return grad_input_gates, grad_h, grad_weight, grad_bias


def gru_sequence(input_gates: torch.Tensor, h0: torch.Tensor, weight_hh: torch.Tensor,
                 bias_hh: torch.Tensor) -> torch.Tensor:
    """Run a GRU (torch's gate order and equations) over precomputed input projections.

    Equivalent to ``nn.GRU`` given ``input_gates = W_ih x + b_ih``; differentiable with respect to
    every argument. CPU tensors of float32 or float64 only.

    Args:
        input_gates: ``(N, B, 3H)`` time-major input projections (gates ``r, z, n``).
        h0: ``(B, H)`` initial state.
        weight_hh: ``(3H, H)`` recurrent weights.
        bias_hh: ``(3H,)`` recurrent bias.

    Returns:
        ``(N, B, H)`` hidden states ``h_1 … h_N``.
    """
    if input_gates.device.type != "cpu" or input_gates.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"gru_sequence runs on CPU float32/float64 tensors, got {input_gates.device} "
                         f"{input_gates.dtype}")
    dtypes = {t.dtype for t in (input_gates, h0, weight_hh, bias_hh)}
    if len(dtypes) != 1:
        raise ValueError(f"gru_sequence needs one dtype, got {sorted(map(str, dtypes))}")
    return _GRUSequence.apply(input_gates, h0, weight_hh, bias_hh)


def input_gates_from_tables(tables: torch.Tensor, codes: torch.Tensor, frame_gates: torch.Tensor,
                            hop: int) -> torch.Tensor:
    """GRU_A's input projections: per-code table rows plus each sample's frame term (CPU).

    Args:
        tables: ``(S, L, 3H)`` table of each input slot ``s`` (embedding × input weights) over the
            ``L`` μ-law levels.
        codes: ``(N, B, S)`` int64 codes of each sample's input slots, time-major.
        frame_gates: ``(F, B, 3H)`` per-frame input terms (``F = N / hop``), bias included.
        hop: samples per frame.

    Returns:
        ``(N, B, 3H)``: ``Σ_s tables[s, codes[t, b, s]] + frame_gates[t // hop, b]``; differentiable
        with respect to ``tables`` and ``frame_gates``.
    """
    return _InputGates.apply(tables, codes, frame_gates, hop)
