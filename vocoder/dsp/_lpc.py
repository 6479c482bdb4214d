"""Linear prediction in numpy: batched Levinson-Durbin and frame-wise LPC prediction.

Convention throughout: the prediction-error filter is ``A(z) = 1 + Σ_{k=1..p} a_k z^-k``, so the
prediction of a sample from its past is ``p[n] = −Σ_k a_k s[n − k]`` and the residual is
``e[n] = s[n] − p[n]``. The differentiable torch twin of :func:`lpc_predict` is ``lpc_predict_torch``
(``vocoder/dsp/_lpc_torch.py``).
"""

from __future__ import annotations

import numpy as np


def levinson_durbin(
    autocorr: np.ndarray,
    order: int | None = None,
    *,
    min_error_ratio: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Solve the autocorrelation normal equations for LPC coefficients, batched over leading dims.

    The recursion loops over the order only; every step is vectorized over the leading dimensions.
    A frame whose remaining prediction error is zero to working precision (below ``1e-10 · r_0``,
    e.g. an all-zero autocorrelation or a sum of fewer than ``p / 2`` sinusoids) gets reflection
    coefficients 0 from that order on instead of dividing by (almost) zero, so the output is always
    finite and keeps the exact lower-order predictor. Reflection coefficients are clipped to
    ``|k| < 1`` so that an autocorrelation that is not quite positive definite (rounding) still
    yields a stable, minimum-phase ``A(z)``.

    Args:
        autocorr: ``(..., p + 1)`` autocorrelation ``r_0 … r_p`` (any real float dtype).
        order: prediction order ``p``; defaults to ``autocorr.shape[-1] − 1``.
        min_error_ratio: stop improving a frame (all further reflection coefficients 0) once its
            prediction error drops below ``min_error_ratio · r_0``. xiph's LPCNet uses ``1e-3``
            ("bail out once we get 30 dB gain"); ``0`` runs the full recursion, which then equals
            the Toeplitz solution of the normal equations.

    Returns:
        ``(lpc, error)``: ``lpc`` ``(..., p)`` coefficients ``a_1 … a_p`` of ``A(z)`` (float64 unless
        the input is float32, then float32) and ``error`` ``(...)``, the final prediction error
        ``r_0 · Π (1 − k_i²)``.
    """
    autocorr = np.asarray(autocorr)
    out_dtype = np.float32 if autocorr.dtype == np.float32 else np.float64
    r = autocorr.astype(np.float64, copy=False)
    if order is None:
        order = r.shape[-1] - 1
    if order < 0 or order > r.shape[-1] - 1:
        raise ValueError(f"order must be in [0, {r.shape[-1] - 1}], got {order}")
    batch_shape = r.shape[:-1]
    r = r.reshape(-1, r.shape[-1])
    r0 = r[:, 0]
    a = np.zeros((r.shape[0], order), dtype=np.float64)
    error = r0.copy()
    # A reflection coefficient must stay strictly inside the unit circle for A(z) to be minimum
    # phase; |k| ≤ 1 − 1e-12 keeps the error positive for a (numerically) perfectly predictable frame.
    k_max = 1.0 - 1e-12
    # Once the error is at rounding level (100 dB below r_0) the remaining normal equations are
    # singular to working precision: further reflection coefficients would be rounding noise
    # amplified without bound, so the frame keeps its exact lower-order predictor.
    threshold = max(min_error_ratio, 1e-10) * r0
    for i in range(order):
        # acc = r_{i+1} + Σ_{j=1..i} a_j r_{i+1−j}
        acc = r[:, i + 1] + np.einsum("bj,bj->b", a[:, :i], r[:, i:0:-1])
        active = error > threshold
        k = np.divide(-acc, error, out=np.zeros_like(acc), where=active)
        np.clip(k, -k_max, k_max, out=k)
        if i:
            a[:, :i] += k[:, None] * a[:, i - 1::-1]
        a[:, i] = k
        error *= 1.0 - k * k
    return a.reshape(*batch_shape, order).astype(out_dtype, copy=False), error.reshape(batch_shape).astype(
        out_dtype, copy=False
    )


def lpc_predict(
    signal: np.ndarray,
    lpc: np.ndarray,
    hop_length: int = 160,
    history: np.ndarray | None = None,
) -> np.ndarray:
    """Frame-wise linear prediction ``p[n] = −Σ_k a_k[n // hop] · s[n − k]`` of each sample from its past.

    Loops over the prediction order only; each step is one vectorized multiply-add over all samples.

    Args:
        signal: ``(N,)`` or ``(B, N)`` samples ``s``.
        lpc: ``(F, p)`` or ``(B, F, p)`` coefficients ``a_1 … a_p`` of ``A(z) = 1 + Σ a_k z^-k`` per
            frame, ``F ≥ ceil(N / hop_length)``; frame ``f`` applies to samples
            ``[f · hop_length, (f + 1) · hop_length)``.
        hop_length: samples per frame.
        history: ``(p,)`` or ``(B, p)`` samples preceding ``signal[..., 0]`` (oldest first); zeros
            (``s[n < 0] = 0``) if omitted.

    Returns:
        Predictions with the shape of ``signal`` (float64, or float32 when both inputs are float32).
    """
    signal = np.asarray(signal)
    lpc = np.asarray(lpc)
    unbatched = signal.ndim == 1
    if unbatched != (lpc.ndim == 2) or signal.ndim not in (1, 2):
        raise ValueError(f"expected signal (N,) with lpc (F, p) or (B, N) with (B, F, p); got "
                         f"{signal.shape} and {lpc.shape}")
    out_dtype = np.float32 if signal.dtype == np.float32 and lpc.dtype == np.float32 else np.float64
    s = np.atleast_2d(signal).astype(np.float64, copy=False)
    a = (lpc[None] if unbatched else lpc).astype(np.float64, copy=False)
    batch, length = s.shape
    frames, order = a.shape[-2:]
    if a.shape[0] != batch:
        raise ValueError(f"batch mismatch: signal {signal.shape}, lpc {lpc.shape}")
    n_frames = -(-length // hop_length)
    if frames < n_frames:
        raise ValueError(f"{frames} LPC frames cover fewer than the {n_frames} frames of {length} samples "
                         f"at hop {hop_length}")
    if history is None:
        past = np.zeros((batch, order), dtype=np.float64)
    else:
        past = np.atleast_2d(np.asarray(history, dtype=np.float64)).reshape(batch, order)
    # Zero-pad the tail to whole frames so that every lag becomes a (B, F, hop) view multiplied by
    # the (B, F, 1) coefficient of its frame: no per-sample gather of coefficients.
    padded_len = n_frames * hop_length
    padded = np.concatenate([past, s, np.zeros((batch, padded_len - length))], axis=1)
    prediction = np.zeros((batch, n_frames, hop_length), dtype=np.float64)
    for k in range(1, order + 1):
        lagged = padded[:, order - k:order - k + padded_len].reshape(batch, n_frames, hop_length)
        prediction -= a[:, :n_frames, k - 1:k] * lagged
    prediction = prediction.reshape(batch, padded_len)[:, :length].astype(out_dtype, copy=False)
    return prediction[0] if unbatched else prediction
