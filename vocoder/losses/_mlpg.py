"""Maximum-likelihood parameter generation (MLPG) as batched, differentiable torch functions.

Conventions (identical to ``nnmnkwii.paramgen`` / ``nnmnkwii.autograd`` so code can switch over):

* A window is a ``(left, right, coefficients)`` triple. Window ``k`` maps a static trajectory ``y`` (T,)
  to ``(W_k y)[t] = sum_m coefficients[m] * y[t + m - left]``; entries that fall outside ``[0, T)`` are
  dropped (the T×T window matrix is truncated, not padded).
* Features are window-major: ``D = num_windows * static_dim`` laid out as
  ``[static | delta | delta-delta | ...]``; column ``k * static_dim + d`` is window ``k`` of dimension ``d``.
* Variances are diagonal: per frame ``(T, D)`` (or ``(B, T, D)``) or one vector ``(D,)`` for all frames.
* For every window but the first, the precisions of the first and last ``max_k max(left_k, right_k)``
  frames are zero (those dynamic features would have to look past the sequence edge), as in nnmnkwii.
  (Only in the degenerate case where every window has zero extent do the two differ: nnmnkwii's
  ``precisions[-0:] = 0`` then zeroes all dynamic frames, here none.)

Per static dimension, MLPG solves the symmetric positive definite banded system
``A y = b`` with ``A = sum_k W_kᵀ P_k W_k`` and ``b = sum_k W_kᵀ P_k mu_k`` (``P_k`` the diagonal
precisions). ``A`` has half bandwidth ``w = max_k (left_k + right_k)``; it is factorised with a banded
Cholesky decomposition written as a loop over time that is vectorised over batch × static dimensions,
so the cost is O(T · w²) per dimension and everything stays on the tensors' device.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

WindowSpec = tuple[int, int, np.ndarray]
"""A dynamic-feature window ``(left, right, coefficients)`` with ``len(coefficients) == left + right + 1``."""

# Internal, hashable form of a window: python scalars only, so the same spec serves every device/dtype.
_Window = tuple[int, int, tuple[float, ...]]


def delta_windows(width: int = 1, order: int = 2) -> list[WindowSpec]:
    """Static plus regression-based delta / delta-delta windows of ``2 * width + 1`` taps.

    ``width=1`` gives the standard windows static ``[1]``, delta ``[-0.5, 0, 0.5]`` and delta-delta
    ``[1, -2, 1]``; ``width=2`` gives the 5-tap HTS windows delta ``[-0.2, -0.1, 0, 0.1, 0.2]`` and
    delta-delta ``[2, -1, -2, -1, 2] / 7``. The delta window is the least-squares slope
    ``sum_k k y[t+k] / sum_k k²`` and the delta-delta window twice the least-squares quadratic coefficient,
    so both are exact derivatives of polynomials of degree ≤ 2.

    Args:
        width: Half width of the dynamic windows in frames (≥ 1).
        order: Highest derivative order: 0 (static only), 1 (static + delta) or 2 (+ delta-delta).

    Returns:
        ``order + 1`` windows ``(left, right, coefficients)`` with float64 coefficient arrays.
    """
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    if order not in (0, 1, 2):
        raise ValueError(f"order must be 0, 1 or 2, got {order}")
    k = np.arange(-width, width + 1, dtype=np.float64)
    windows: list[WindowSpec] = [(0, 0, np.array([1.0]))]
    if order >= 1:
        windows.append((width, width, k / np.sum(k * k)))
    if order >= 2:
        centred = k * k - np.mean(k * k)
        windows.append((width, width, 2.0 * centred / np.sum(centred * centred)))
    return windows


def normalize_windows(windows: Iterable[Sequence[object]]) -> tuple[_Window, ...]:
    """Validate ``(left, right, coefficients)`` triples (numpy, list, tensor, OmegaConf) as python scalars."""
    out: list[_Window] = []
    for spec in windows:
        if len(spec) != 3:
            raise ValueError(f"a window must be a (left, right, coefficients) triple, got {spec!r}")
        left, right, coeffs = spec
        if isinstance(coeffs, torch.Tensor):
            values = tuple(float(c) for c in coeffs.detach().cpu().reshape(-1).tolist())
        elif isinstance(coeffs, np.ndarray):
            values = tuple(float(c) for c in coeffs.reshape(-1))
        else:
            values = tuple(float(c) for c in coeffs)  # type: ignore[union-attr]
        left, right = int(left), int(right)  # type: ignore[call-overload]
        if left < 0 or right < 0:
            raise ValueError(f"window extents must be non-negative, got left={left}, right={right}")
        if len(values) != left + right + 1:
            raise ValueError(
                f"window with left={left}, right={right} needs {left + right + 1} coefficients, "
                f"got {len(values)}"
            )
        out.append((left, right, values))
    if not out:
        raise ValueError("at least one window is required")
    return tuple(out)


def _edge_width(windows: Sequence[_Window]) -> int:
    """Frames at each end whose dynamic-feature precisions are zeroed (nnmnkwii's ``max_win_width``)."""
    return max(max(left, right) for left, right, _ in windows)


def _half_bandwidth(windows: Sequence[_Window]) -> int:
    """Half bandwidth of ``sum_k W_kᵀ P_k W_k``."""
    return max(left + right for left, right, _ in windows)


def _window_matrix(
    window: _Window, T: int, dtype: torch.dtype, device: torch.device | str | None
) -> torch.Tensor:
    """Dense truncated window matrix (T, T) with ``W[t, t + m - left] = c[m]``."""
    left, _, coeffs = window
    W = torch.zeros((T, T), dtype=dtype, device=device)
    for m, c in enumerate(coeffs):
        offset = m - left
        if c != 0.0 and abs(offset) < T:
            W = W + torch.diag(torch.full((T - abs(offset),), c, dtype=dtype, device=device), offset)
    return W


# A term (out_channel, in_channel, offset, coefficient, first_frame) of a sparse multichannel correlation
# along time: out[s, out_channel] += coefficient * x[s + offset, in_channel] for s >= first_frame.
_Term = tuple[int, int, int, float, int]


def _correlate(x: torch.Tensor, terms: Sequence[_Term], out_channels: int) -> torch.Tensor:
    """Apply a sparse correlation to time-major ``x`` (T, C_in, N) → (T, out_channels, N).

    Every term is one in-place scaled add between time slices, so there are no temporaries, and reads
    past either end of the sequence contribute nothing (the truncated-window convention).
    """
    T, _, N = x.shape
    out = x.new_zeros((T, out_channels, N))
    for out_ch, in_ch, offset, coeff, first in terms:
        lo, hi = max(first, -offset, 0), min(T, T - offset)
        if lo < hi:
            out[lo:hi, out_ch].add_(x[lo + offset : hi + offset, in_ch], alpha=coeff)
    return out


def _transpose_terms(terms: Sequence[_Term]) -> tuple[_Term, ...]:
    """Terms of the adjoint correlation (``o -> i`` at ``-offset``), which maps ``out`` back onto ``x``."""
    return tuple((i, o, -offset, c, first + offset) for o, i, offset, c, first in terms)


class _Correlate(torch.autograd.Function):
    """Differentiable :func:`_correlate`.

    The map is linear, so its backward is the adjoint correlation, itself applied through this Function:
    higher derivatives are exact too.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx, x: torch.Tensor, terms: tuple[_Term, ...], out_channels: int
    ) -> torch.Tensor:
        ctx.terms = terms
        ctx.in_channels = x.shape[1]
        return _correlate(x, terms, out_channels)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        return _Correlate.apply(grad, _transpose_terms(ctx.terms), ctx.in_channels), None, None


def _band_terms(windows: Sequence[_Window]) -> tuple[_Term, ...]:
    """Terms mapping precisions (T, K, N) to the lower bands (T, w + 1, N) of ``sum_k W_kᵀ P_k W_k``.

    Row t of W_k touches columns ``t - left .. t + right``, so it adds ``p_k[t] c[m] c[m']`` to
    ``A[t + m - left, t + m' - left]``; with ``s = t + m - left`` and ``j = m - m'`` that is
    ``A[s, s - j] += c[m' + j] c[m'] p_k[s + left - m' - j]``. Rows ``s < j`` hold no matrix entry
    (those products fall left of column 0 and are truncated), hence ``first_frame = j``.
    """
    merged: dict[tuple[int, int, int], float] = {}
    for k, (left, _, coeffs) in enumerate(windows):
        for j in range(len(coeffs)):
            for m2 in range(len(coeffs) - j):
                key = (j, k, left - m2 - j)
                merged[key] = merged.get(key, 0.0) + coeffs[m2 + j] * coeffs[m2]
    return tuple((j, k, offset, c, j) for (j, k, offset), c in merged.items() if c != 0.0)


def _window_transpose_terms(windows: Sequence[_Window]) -> tuple[_Term, ...]:
    """Terms computing ``sum_k W_kᵀ q_k`` (T, 1, N) from ``q`` (T, K, N).

    ``(W_kᵀ q_k)[s] = sum_m c[m] q_k[s + left - m]``: offsets ``left - m`` in ``[-right, left]``.
    """
    return tuple(
        (0, k, left - m, c, 0)
        for k, (left, _, coeffs) in enumerate(windows)
        for m, c in enumerate(coeffs)
        if c != 0.0
    )


def _precision_bands(precisions: torch.Tensor, windows: Sequence[_Window]) -> torch.Tensor:
    """Lower bands of ``A = sum_k W_kᵀ diag(p_k) W_k`` for N sequences at once.

    Args:
        precisions: Per-window precisions, time-major (T, K, N).
        windows: The K normalised windows.

    Returns:
        ``bands`` (T, w + 1, N) with ``bands[s, j, n] = A_n[s, s - j]`` and ``w`` the half bandwidth;
        entries with ``s < j`` (outside the matrix) are zero.
    """
    return _Correlate.apply(precisions, _band_terms(windows), _half_bandwidth(windows) + 1)


def _banded_cholesky(bands: torch.Tensor) -> torch.Tensor:
    """Banded Cholesky factor of SPD matrices given by their lower bands.

    Args:
        bands: (T, w + 1, N), ``bands[t, j] = A[t, t - j]`` for N independent T×T matrices.

    Returns:
        ``chol`` (T, w + 1, N) with ``chol[t, j] = L[t, t - j]`` for ``j ≥ 1`` and
        ``chol[t, 0] = 1 / L[t, t]`` (the reciprocal, so that the solves multiply instead of divide).
    """
    T, w1, N = bands.shape
    w = w1 - 1
    rows = bands.unbind(0)
    zero = bands.new_zeros(N)
    factor: list[list[torch.Tensor]] = []
    # A loop over time; every operation acts on all N systems at once.
    for t in range(T):
        a = rows[t].unbind(0)
        reach = min(w, t)
        lt = [zero] * w1
        for j in range(reach, 0, -1):
            s = a[j]
            prev = factor[t - j]
            for i in range(j + 1, reach + 1):
                s = torch.addcmul(s, lt[i], prev[i - j], value=-1.0)
            lt[j] = s * prev[0]
        d = a[0]
        for i in range(1, reach + 1):
            d = torch.addcmul(d, lt[i], lt[i], value=-1.0)
        lt[0] = torch.rsqrt(d)
        factor.append(lt)
    return torch.stack([x for lt in factor for x in lt], dim=0).view(T, w1, N)


def _banded_cholesky_solve(chol: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Solve ``L Lᵀ x = rhs`` with a factor from :func:`_banded_cholesky`.

    Args:
        chol: (T, w + 1, N1) banded factor.
        rhs: (T, N2) right-hand sides, with N1 == N2 or N1 == 1 (one matrix, many right-hand sides).

    Returns:
        ``x`` (T, N2).
    """
    T, w1, _ = chol.shape
    w = w1 - 1
    cols = [c.unbind(0) for c in chol.unbind(1)]  # cols[j][t] = L[t, t - j] (j ≥ 1), 1/L[t, t] (j = 0)
    r = rhs.unbind(0)
    # Forward substitution L z = rhs.
    z: list[torch.Tensor] = []
    for t in range(T):
        s = r[t]
        for i in range(1, min(w, t) + 1):
            s = torch.addcmul(s, cols[i][t], z[t - i], value=-1.0)
        z.append(s * cols[0][t])
    # Back substitution Lᵀ x = z, filled from the end.
    x: list[torch.Tensor] = [z[0]] * T
    for t in range(T - 1, -1, -1):
        s = z[t]
        for i in range(1, min(w, T - 1 - t) + 1):
            s = torch.addcmul(s, cols[i][t + i], x[t + i], value=-1.0)
        x[t] = s * cols[0][t]
    return torch.stack(x, dim=0)


class _BandedSPDSolve(torch.autograd.Function):
    """``x = A⁻¹ b`` for banded SPD ``A`` (T, w + 1, N lower bands) and ``b`` (T, N), with analytic backward.

    With ``v = A⁻¹ g`` for the incoming gradient ``g``: ``dL/db = v`` and, because each band entry appears
    at both ``(s, s - j)`` and ``(s - j, s)``, ``dL/dbands[s, j] = -(v[s] x[s - j] + v[s - j] x[s])``
    (``-v[s] x[s]`` on the diagonal). The backward reuses the forward's Cholesky factor; when a graph of
    the backward is requested (double backward), it solves through this Function again instead, so
    higher derivatives stay exact.
    """

    @staticmethod
    def forward(ctx, bands: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        chol = _banded_cholesky(bands)
        x = _banded_cholesky_solve(chol, rhs)
        ctx.save_for_backward(bands, chol, x)
        return x

    @staticmethod
    def backward(ctx, grad_x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:  # type: ignore[override]
        bands, chol, x = ctx.saved_tensors
        if torch.is_grad_enabled():
            v = _BandedSPDSolve.apply(bands, grad_x)
        else:
            v = _banded_cholesky_solve(chol, grad_x)
        grad_bands = None
        if ctx.needs_input_grad[0]:
            T, w1, _ = bands.shape
            cols = [-(v * x)]
            for j in range(1, w1):
                # Rows s < j hold no matrix entry; their gradient is zero.
                off = -(v[j:] * x[: T - j] + v[: T - j] * x[j:])
                cols.append(torch.cat([off.new_zeros((T - off.shape[0], off.shape[1])), off], dim=0))
            grad_bands = torch.stack(cols, dim=1)
        return grad_bands, (v if ctx.needs_input_grad[1] else None)


def _banded_spd_solve(bands: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Differentiable ``A⁻¹ rhs`` for SPD banded ``A``; bands (T, w + 1, N), rhs (T, N) → (T, N)."""
    return _BandedSPDSolve.apply(bands, rhs)


def _valid_frames(
    lengths: torch.Tensor | Sequence[int] | None, B: int, T: int, device: torch.device
) -> torch.Tensor:
    """Boolean (B, T) mask of frames inside each sequence (all True without lengths)."""
    if lengths is None:
        return torch.ones((B, T), dtype=torch.bool, device=device)
    lengths = torch.as_tensor(lengths, device=device)
    if lengths.shape != (B,):
        raise ValueError(f"lengths must have shape ({B},), got {tuple(lengths.shape)}")
    return torch.arange(T, device=device)[None, :] < lengths[:, None]


def _mlpg_system(
    means: torch.Tensor,
    variances: torch.Tensor,
    windows: Sequence[_Window],
    lengths: torch.Tensor | Sequence[int] | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Banded normal equations of MLPG for every (sequence, static dimension) pair, time-major.

    Args:
        means: (B, T, D) window-major means.
        variances: Variances broadcast to (B, T, D).
        windows: The K normalised windows.
        lengths: Optional (B,) valid lengths.

    Returns:
        ``bands`` (T, w + 1, N) with ``bands[s, j, n] = A_n[s, s - j]`` and ``rhs`` (T, N), where
        ``A_n = sum_k W_kᵀ P_k W_k``, ``rhs_n = sum_k W_kᵀ P_k mu_k`` and ``n = b * static_dim + d``.
    """
    B, T, D = means.shape
    K = len(windows)
    static_dim = D // K
    N = B * static_dim
    dtype, device = means.dtype, means.device
    edge = _edge_width(windows)
    w = _half_bandwidth(windows)
    frames = torch.arange(T, device=device)
    valid = _valid_frames(lengths, B, T, device)  # (B, T)
    seq_len = valid.sum(dim=1, keepdim=True)
    interior = valid & (frames[None, :] >= edge) & (frames[None, :] < seq_len - edge)
    # Precisions in use per (frame, window, sequence): (T, K, B, 1) against features (T, K, B, static_dim).
    keep = torch.stack([valid] + [interior] * (K - 1), dim=0).permute(2, 0, 1)[..., None]
    mu = means.reshape(B, T, K, static_dim).permute(1, 2, 0, 3)
    var = variances.reshape(B, T, K, static_dim).permute(1, 2, 0, 3)
    zero = torch.zeros((), dtype=dtype, device=device)
    if lengths is not None:
        # Padding may hold anything: substitute harmless values before dividing so that masked entries
        # produce neither NaN values nor NaN gradients.
        var = torch.where(keep, var, torch.ones((), dtype=dtype, device=device))
        mu = torch.where(keep, mu, zero)
    prec = keep.to(dtype) / var  # zero where masked, 1/variance elsewhere
    weighted = (prec * mu).reshape(T, K, N)
    bands = _precision_bands(prec.reshape(T, K, N), windows)  # (T, w + 1, N)
    rhs = _Correlate.apply(weighted, _window_transpose_terms(windows), 1)[:, 0]  # (T, N)
    if lengths is not None:
        # Frames past a sequence's end become decoupled identity rows with zero right-hand side: the
        # solution there is 0 and the valid block is exactly the unpadded sequence's system.
        valid_n = valid.t()[:, :, None].expand(T, B, static_dim).reshape(T, N)
        diag = (torch.arange(w + 1, device=device) == 0).to(dtype)[None, :, None]
        bands = torch.where(valid_n[:, None, :], bands, diag)
        rhs = torch.where(valid_n, rhs, zero)
    return bands, rhs


def mlpg_banded_system(
    means: torch.Tensor,
    variances: torch.Tensor | np.ndarray | None,
    windows: Sequence[WindowSpec],
    lengths: torch.Tensor | Sequence[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The banded normal equations :func:`mlpg` solves, for references and benchmarks.

    Args:
        means: (T, D) or (B, T, D) window-major means (``D = K · static_dim``).
        variances: broadcastable to ``means`` (``None``: unit variances).
        windows: the K ``(left, right, coefficients)`` windows.
        lengths: optional (B,) valid frames per sequence.

    Returns:
        ``bands`` (T, w + 1, N) with ``bands[s, j, n] = A_n[s, s − j]`` and ``rhs`` (T, N), one system per
        (sequence, static dimension) pair ``n = b · static_dim + d``; the solution of
        ``A_n c = rhs_n`` is :func:`mlpg`'s output.
    """
    means, variances, wins, _ = _prepare_mlpg_inputs(means, variances, windows, lengths)
    return _mlpg_system(means, variances, wins, lengths)


def _prepare_mlpg_inputs(
    means: torch.Tensor,
    variances: torch.Tensor | np.ndarray | None,
    windows: Sequence[WindowSpec],
    lengths: torch.Tensor | Sequence[int] | None,
) -> tuple[torch.Tensor, torch.Tensor, tuple[_Window, ...], bool]:
    """Validate MLPG arguments; returns batched means, broadcast variances, windows and ``unbatched``."""
    wins = normalize_windows(windows)
    K = len(wins)
    unbatched = means.dim() == 2
    if unbatched:
        if lengths is not None:
            raise ValueError("lengths is only meaningful for batched (B, T, D) means")
        means = means.unsqueeze(0)
    if means.dim() != 3:
        raise ValueError(f"means must be (T, D) or (B, T, D), got shape {tuple(means.shape)}")
    if means.shape[-1] % K != 0:
        raise ValueError(f"feature dim {means.shape[-1]} is not a multiple of the number of windows {K}")
    if variances is None:
        variances = torch.ones((), dtype=means.dtype, device=means.device)
    elif not isinstance(variances, torch.Tensor):
        variances = torch.as_tensor(np.asarray(variances))
    variances = variances.to(dtype=means.dtype, device=means.device)
    try:
        variances = torch.broadcast_to(variances, means.shape)
    except RuntimeError as err:
        raise ValueError(
            f"variances of shape {tuple(variances.shape)} do not broadcast to means {tuple(means.shape)}"
        ) from err
    return means, variances, wins, unbatched


def mlpg(
    means: torch.Tensor,
    variances: torch.Tensor | np.ndarray | None,
    windows: Sequence[WindowSpec],
    lengths: torch.Tensor | Sequence[int] | None = None,
) -> torch.Tensor:
    """Maximum-likelihood parameter generation, differentiable w.r.t. means and variances.

    Drop-in for ``nnmnkwii.autograd.mlpg`` / ``nnmnkwii.paramgen.mlpg`` (same argument order, window
    layout and edge handling) that also accepts a batch and runs on any device. For each static dimension
    it returns ``y = (Wᵀ P W)⁻¹ Wᵀ P mu``, solved with a banded Cholesky factorisation
    (O(T · bandwidth²) per dimension); the backward pass reuses the factor for one more banded solve.

    Args:
        means: Static + dynamic means, (T, D) or (B, T, D), ``D = len(windows) * static_dim`` window-major.
        variances: Positive, finite variances broadcastable to ``means``: (D,) for all frames, (T, D) per
            frame, (B, T, D) per sequence and frame. ``None`` means unit variances. Static variances that
            are not positive make the system indefinite and the result NaN.
        windows: ``(left, right, coefficients)`` triples; the first is the static window.
        lengths: Valid frames per sequence (B,) for a padded batch; frames past a sequence's length are
            ignored (their means/variances may hold anything, even NaN) and get output 0. Each sequence is
            generated exactly as if it were passed alone at its own length.

    Returns:
        Static trajectories (T, static_dim) or (B, T, static_dim), in the dtype of ``means``.
    """
    means, variances, wins, unbatched = _prepare_mlpg_inputs(means, variances, windows, lengths)
    B, T, D = means.shape
    static_dim = D // len(wins)
    bands, rhs = _mlpg_system(means, variances, wins, lengths)  # time-major: all N systems side by side
    y = _banded_spd_solve(bands, rhs)  # (T, N)
    y = y.view(T, B, static_dim).permute(1, 0, 2)
    return y[0] if unbatched else y


def unit_variance_mlpg_matrix(
    windows: Sequence[WindowSpec],
    T: int,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """MLPG matrix ``R = (Wᵀ P W)⁻¹ Wᵀ P`` for unit variances (``P`` zeroes dynamic edge frames).

    Same layout and values as ``nnmnkwii.paramgen.unit_variance_mlpg_matrix``: column ``k * T + t``
    multiplies window ``k``'s mean at frame ``t``. Computed in float64 with the banded solver, then cast.

    Args:
        windows: ``(left, right, coefficients)`` triples; the first is the static window.
        T: Number of frames.
        dtype: Result dtype (default: ``torch.get_default_dtype()``).
        device: Result device.

    Returns:
        ``R`` (T, len(windows) * T).
    """
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    wins = normalize_windows(windows)
    K = len(wins)
    edge = _edge_width(wins)
    frames = torch.arange(T, device=device)
    interior = ((frames >= edge) & (frames < T - edge)).to(torch.float64)
    mask = torch.stack([torch.ones_like(interior)] + [interior] * (K - 1), dim=0)  # (K, T)
    bands = _precision_bands(mask.t()[:, :, None], wins)  # (T, w + 1, 1)
    chol = _banded_cholesky(bands)  # one factor for all right-hand sides
    # Wᵀ P as a (T, K·T) matrix: block k is W_kᵀ diag(mask_k).
    rhs = torch.cat(
        [_window_matrix(wins[k], T, torch.float64, device).t() * mask[k][None, :] for k in range(K)], dim=1
    )
    R = _banded_cholesky_solve(chol, rhs)
    return R.to(dtype=dtype or torch.get_default_dtype())


def unit_variance_mlpg(R: torch.Tensor | np.ndarray, means: torch.Tensor) -> torch.Tensor:
    """Unit-variance MLPG ``y = R mu`` (differentiable; a matrix product, so fast on any device).

    Drop-in for ``nnmnkwii.autograd.unit_variance_mlpg``.

    Args:
        R: MLPG matrix (T, K·T) from :func:`unit_variance_mlpg_matrix` (a numpy array is accepted too).
        means: (T, D) window-major, (T·K, static_dim) already reshaped (window-major rows ``k * T + t``),
            or the batched versions (B, T, D) / (B, T·K, static_dim).

    Returns:
        (T, static_dim), or (B, T, static_dim) for batched means.
    """
    R = torch.as_tensor(R).to(dtype=means.dtype, device=means.device)
    if R.dim() != 2 or R.shape[1] % R.shape[0] != 0:
        raise ValueError(f"R must be (T, num_windows * T), got shape {tuple(R.shape)}")
    T = R.shape[0]
    K = R.shape[1] // T
    unbatched = means.dim() == 2
    if unbatched:
        means = means.unsqueeze(0)
    if means.dim() != 3:
        raise ValueError(f"means must be 2-D or 3-D, got shape {tuple(means.shape)}")
    B, frames, D = means.shape
    if frames == T:
        if D % K != 0:
            raise ValueError(f"feature dim {D} is not a multiple of the number of windows {K}")
        static_dim = D // K
        stacked = means.reshape(B, T, K, static_dim).transpose(1, 2).reshape(B, K * T, static_dim)
    elif frames == K * T:
        stacked = means
    else:
        raise ValueError(f"means have {frames} rows; R expects {T} frames or {K * T} reshaped rows")
    y = torch.matmul(R, stacked)
    return y[0] if unbatched else y
