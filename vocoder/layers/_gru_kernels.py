"""Numba kernels that train LPCNet on the CPU: GRU steps and GRU_A's input projections.

torch's ``nn.GRU`` on the CPU runs each time step as a dozen small autograd ops; for LPCNet's
2,400-step sequences that bookkeeping costs more than the matrix products. The LPCNet model instead
runs its own recurrence (:func:`vocoder.layers.gru_sequence`): the ``h W_hhᵀ`` products go
to torch (oneDNN/MKL), and everything elementwise of one step — gates, candidate, state update, and
in the backward pass all the local derivatives — is one fused call to the kernels below. A GRU of at
most :data:`SMALL_GRU_MAX_HIDDEN` units (LPCNet's GRU_B) runs its whole recurrence, products included,
in one call (:func:`small_gru_forward`, :func:`small_gru_backward`).

GRU_A's input projections are assembled by :func:`input_gates_forward` from three rows of per-code
tables and the per-frame term (and scattered back by :func:`input_gates_backward`), instead of a
product of the 512 concatenated inputs with the input weights.

The kernels release the GIL and work on a range of batch rows (time steps, columns), so that they
run as independent chunks in parallel threads (one core each, no per-step synchronization).

Layout: time-major, C-contiguous ``(N, B, ·)`` arrays; gates are in torch's order (reset ``r``,
update ``z``, candidate ``n``); ``h_t = (1 − z) n + z h_{t−1}`` with
``n = tanh(x_n + r ⊙ (W_hn h_{t−1} + b_hn))`` (torch's "reset after" form).
"""

from __future__ import annotations

from numba import njit

from vocoder.layers._simd import FASTMATH, one_like, vsigmoid, vtanh


@njit(cache=True, nogil=True, fastmath=set(FASTMATH), error_model="numpy")
def gru_forward_step(input_gates, hidden_gates, h0, gates, hidden_candidate, output, t, first, last):
    """Advance the GRU by one step.

    Args:
        input_gates: ``(N, B, 3H)`` input projections ``W_ih x_t + b_ih`` (read at ``t``).
        hidden_gates: ``(B, 3H)`` ``W_hh h_{t−1} + b_hh``.
        h0: ``(B, H)`` initial state (used when ``t == 0``).
        gates: ``(N, B, 3H)`` out: activated ``r, z, n`` at ``t`` (kept for the backward pass).
        hidden_candidate: ``(N, B, H)`` out: ``W_hn h_{t−1} + b_hn`` at ``t`` (kept for backward).
        output: ``(N, B, H)`` out: ``h_t`` at ``t`` (``h_{t−1}`` is read from ``t − 1``).
        t: the time step.
        first, last: the batch rows ``[first, last)`` to process (threads split the batch).
    """
    hidden = h0.shape[1]
    previous = h0 if t == 0 else output[t - 1]
    for b in range(first, last):
        # 1-D row views: LLVM vectorizes these loops, not the 2-D indexed form
        x = input_gates[t, b]
        gh = hidden_gates[b]
        g = gates[t, b]
        hn = hidden_candidate[t, b]
        h = output[t, b]
        h_previous = previous[b]
        x_r, x_z, x_n = x[:hidden], x[hidden : 2 * hidden], x[2 * hidden :]
        gh_r, gh_z, gh_n = gh[:hidden], gh[hidden : 2 * hidden], gh[2 * hidden :]
        g_r, g_z, g_n = g[:hidden], g[hidden : 2 * hidden], g[2 * hidden :]
        for j in range(hidden):
            r = vsigmoid(x_r[j] + gh_r[j])
            z = vsigmoid(x_z[j] + gh_z[j])
            candidate_hidden = gh_n[j]
            n = vtanh(x_n[j] + r * candidate_hidden)
            g_r[j] = r
            g_z[j] = z
            g_n[j] = n
            hn[j] = candidate_hidden
            h[j] = n + z * (h_previous[j] - n)


@njit(cache=True, nogil=True, fastmath=set(FASTMATH), error_model="numpy")
def gru_backward_step(grad_output, gates, hidden_candidate, output, h0, grad_h, grad_hidden_gates,
                      grad_input_gates, grad_candidate_hidden, t, first, last):
    """Local derivatives of one GRU step (the ``W_hh`` products are left to the caller).

    On entry ``grad_h`` ``(B, H)`` holds ∂L/∂h_t coming from step ``t + 1``; ``grad_output[t]`` is
    added to it. On exit ``grad_h`` holds only the direct part ``∂L/∂h_t · z`` of ∂L/∂h_{t−1}; the
    caller adds ``grad_hidden_gates @ W_hh``.

    Args:
        grad_output: ``(N, B, H)`` ∂L/∂output.
        gates, hidden_candidate, output: forward buffers (see :func:`gru_forward_step`).
        h0: ``(B, H)`` initial state.
        grad_h: ``(B, H)`` in/out as described above.
        grad_hidden_gates: ``(B, 3H)`` out: ∂L/∂(W_hh h_{t−1} + b_hh) at ``t``.
        grad_input_gates: ``(N, B, 3H)`` out: ∂L/∂input_gates at ``t``.
        grad_candidate_hidden: ``(N, B, H)`` out: the candidate part of ``grad_hidden_gates`` at
            ``t`` (kept to form the ``W_hn`` gradient in one product after the loop).
        t: the time step.
        first, last: the batch rows ``[first, last)`` to process.
    """
    hidden = h0.shape[1]
    previous = h0 if t == 0 else output[t - 1]
    one = one_like(h0[0, 0])
    for b in range(first, last):
        g = gates[t, b]
        g_r, g_z, g_n = g[:hidden], g[hidden : 2 * hidden], g[2 * hidden :]
        hn = hidden_candidate[t, b]
        go = grad_output[t, b]
        gx = grad_input_gates[t, b]
        gx_r, gx_z, gx_n = gx[:hidden], gx[hidden : 2 * hidden], gx[2 * hidden :]
        gg = grad_hidden_gates[b]
        gg_r, gg_z, gg_n = gg[:hidden], gg[hidden : 2 * hidden], gg[2 * hidden :]
        ghn = grad_candidate_hidden[t, b]
        dh_b = grad_h[b]
        h_previous = previous[b]
        for j in range(hidden):
            r = g_r[j]
            z = g_z[j]
            n = g_n[j]
            dh = dh_b[j] + go[j]
            dn = dh * (one - z) * (one - n * n)
            dz = dh * (h_previous[j] - n) * z * (one - z)
            dr = dn * hn[j] * r * (one - r)
            dhn = dn * r
            gx_r[j] = dr
            gx_z[j] = dz
            gx_n[j] = dn
            gg_r[j] = dr
            gg_z[j] = dz
            gg_n[j] = dhn
            ghn[j] = dhn
            dh_b[j] = dh * z


#: Largest hidden size that :func:`vocoder.layers.gru_sequence` runs through :func:`small_gru_forward`
#: and :func:`small_gru_backward` (the whole recurrence in one compiled loop). Above it the per-step
#: ``h W_hhᵀ`` product is worth a BLAS call; at LPCNet's GRU_B size (16) the per-step call overheads of
#: a torch product plus a kernel call dwarf the arithmetic.
SMALL_GRU_MAX_HIDDEN = 64


@njit(cache=True, nogil=True, fastmath=set(FASTMATH), error_model="numpy")
def small_gru_forward(input_gates, h0, weight_t, bias, hidden_gates, gates, hidden_candidate, output,
                      first, last):
    """The whole forward recurrence for batch rows ``[first, last)``, the recurrent product included.

    Per step ``hidden_gates[b] = bias + h_{t−1} W_hhᵀ`` (``weight_t`` = ``W_hhᵀ`` ``(H, 3H)``,
    accumulated one input at a time in increasing order), then :func:`gru_forward_step`. Buffers as
    there; ``hidden_gates`` ``(B, 3H)``.
    """
    n_steps = input_gates.shape[0]
    hidden = h0.shape[1]
    three = 3 * hidden
    for t in range(n_steps):
        previous = h0 if t == 0 else output[t - 1]
        for b in range(first, last):
            h = previous[b]
            g = hidden_gates[b]
            for i in range(three):
                g[i] = bias[i]
            for k in range(hidden):
                w = weight_t[k]
                value = h[k]
                for i in range(three):
                    g[i] += value * w[i]
        gru_forward_step(input_gates, hidden_gates, h0, gates, hidden_candidate, output, t, first, last)


@njit(cache=True, nogil=True, fastmath=set(FASTMATH), error_model="numpy")
def small_gru_backward(grad_output, gates, hidden_candidate, output, h0, grad_h, grad_hidden_gates,
                       grad_input_gates, grad_candidate_hidden, weight, first, last):
    """The whole backward recurrence for batch rows ``[first, last)``: per step
    :func:`gru_backward_step`, then ``grad_h[b] += grad_hidden_gates[b] W_hh`` (``weight`` ``(3H, H)``,
    accumulated one gate row at a time in increasing order). Buffers as there.
    """
    n_steps = grad_output.shape[0]
    three = weight.shape[0]
    hidden = weight.shape[1]
    for t in range(n_steps - 1, -1, -1):
        gru_backward_step(grad_output, gates, hidden_candidate, output, h0, grad_h, grad_hidden_gates,
                          grad_input_gates, grad_candidate_hidden, t, first, last)
        for b in range(first, last):
            g = grad_hidden_gates[b]
            out = grad_h[b]
            for i in range(three):
                w = weight[i]
                value = g[i]
                for j in range(hidden):
                    out[j] += value * w[j]


@njit(cache=True, nogil=True, fastmath=set(FASTMATH), error_model="numpy")
def input_gates_forward(tables, codes, frame_gates, hop, output, first, last):
    """GRU_A input projections from per-code tables and per-frame terms, for steps ``[first, last)``.

    ``output[t, b] = frame_gates[t // hop, b] + Σ_k tables[k, codes[t, b, k]]``.

    Args:
        tables: ``(K, L, G)`` projections of every code per input slot.
        codes: ``(N, B, K)`` int64 codes.
        frame_gates: ``(F, B, G)`` per-frame terms.
        hop: samples per frame.
        output: ``(N, B, G)`` out.
        first, last: the time steps to fill.
    """
    batch = codes.shape[1]
    slots = codes.shape[2]
    width = output.shape[2]
    for t in range(first, last):
        frame = frame_gates[t // hop]
        for b in range(batch):
            out = output[t, b]
            out[:] = frame[b]
            for k in range(slots):
                row = tables[k, codes[t, b, k]]
                for i in range(width):
                    out[i] += row[i]


@njit(cache=True, nogil=True, fastmath=set(FASTMATH), error_model="numpy")
def input_gates_backward(grad_output, codes, hop, grad_tables, grad_frame_gates, first, last):
    """Gradients of :func:`input_gates_forward` for the columns ``[first, last)`` (accumulated).

    Args:
        grad_output: ``(N, B, G)`` ∂L/∂output.
        codes: ``(N, B, K)`` int64 codes.
        hop: samples per frame.
        grad_tables: ``(K, L, G)`` in/out: ∂L/∂tables is added.
        grad_frame_gates: ``(F, B, G)`` in/out: ∂L/∂frame_gates is added.
        first, last: the columns to process (threads split the columns: no write conflicts).
    """
    n_steps, batch, slots = codes.shape
    for t in range(n_steps):
        frame = grad_frame_gates[t // hop]
        for b in range(batch):
            grad = grad_output[t, b, first:last]
            frame_row = frame[b, first:last]
            for i in range(last - first):
                frame_row[i] += grad[i]
            for k in range(slots):
                table_row = grad_tables[k, codes[t, b, k], first:last]
                for i in range(last - first):
                    table_row[i] += grad[i]
