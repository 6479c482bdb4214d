"""xiph LPCNet feature files (``.f32``): what ``dump_data -test`` and ``lpcnet_demo -features`` write.

A file is raw native-endian float32, one row of ``NB_TOTAL_FEATURES`` = 36 floats per 10 ms frame:
18 Bark cepstral coefficients, the pitch period as ``(T − 100)/50``, the pitch correlation as
``g − 0.5`` (the 20 features the network reads, ``NB_FEATURES``), then the 16 LPC coefficients
``a_k`` of ``A(z) = 1 + Σ a_k z⁻ᵏ`` that xiph derives from the cepstrum. Our features use the same
layout (:mod:`vocoder.dsp._lpcnet_features`), so these files drive our LPCNet directly — e.g. from a
TTS front end trained to predict xiph's features. The LPC columns are optional on reading (synthesis
recomputes the predictor from the cepstrum, as xiph's ``lpcnet_synthesize`` does).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vocoder.data._errors import DataError

#: Floats per frame in xiph's files (``NB_TOTAL_FEATURES``) and those the network reads (``NB_FEATURES``).
XIPH_TOTAL_FEATURES = 36
XIPH_FEATURES = 20
XIPH_LPC_ORDER = 16


def read_xiph_features(path: str | os.PathLike, floats_per_frame: int = XIPH_TOTAL_FEATURES
                       ) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a xiph ``.f32`` feature file.

    Args:
        path: the file.
        floats_per_frame: 36 (xiph's files) or 20 (features only, e.g. ``-addlpc``'s input).

    Returns:
        ``(features, lpc)``: ``(T, 20)`` float32 and ``(T, 16)`` float32 (``None`` for 20-float rows).

    Raises:
        DataError: one line naming the file when its size is not a whole number of frames.
    """
    if floats_per_frame not in (XIPH_FEATURES, XIPH_TOTAL_FEATURES):
        raise ValueError(f"floats_per_frame must be {XIPH_FEATURES} or {XIPH_TOTAL_FEATURES}, got {floats_per_frame}")
    path = Path(path)
    try:
        data = np.fromfile(path, dtype="<f4" if np.little_endian else ">f4")
    except OSError as exc:
        raise DataError(f"{path}: cannot read xiph feature file ({exc.strerror or exc})") from None
    if data.size == 0 or data.size % floats_per_frame:
        raise DataError(f"{path}: {data.size} floats is not a whole number of {floats_per_frame}-float frames; "
                        "is it a xiph LPCNet .f32 feature file?")
    rows = data.reshape(-1, floats_per_frame).astype(np.float32)
    if not np.all(np.isfinite(rows[:, :XIPH_FEATURES])):
        raise DataError(f"{path}: non-finite feature values")
    lpc = rows[:, XIPH_FEATURES:XIPH_FEATURES + XIPH_LPC_ORDER].copy() if floats_per_frame > XIPH_FEATURES else None
    return np.ascontiguousarray(rows[:, :XIPH_FEATURES]), lpc


def write_xiph_features(path: str | os.PathLike, features: np.ndarray, lpc: np.ndarray | None = None) -> Path:
    """Write features (and LPC) as a xiph 36-float-per-frame ``.f32`` file (atomically).

    Args:
        path: output file.
        features: ``(T, 20)`` in xiph's layout (as :func:`vocoder.dsp.lpcnet_features` returns them).
        lpc: ``(T, 16)``; computed from the cepstrum when omitted.

    Returns:
        The written path.
    """
    from vocoder.dsp import lpc_from_cepstrum

    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or features.shape[1] != XIPH_FEATURES:
        raise ValueError(f"features must be (T, {XIPH_FEATURES}), got {features.shape}")
    if lpc is None:
        lpc = lpc_from_cepstrum(features[:, :18], order=XIPH_LPC_ORDER)
    lpc = np.asarray(lpc, dtype=np.float32)
    if lpc.shape != (features.shape[0], XIPH_LPC_ORDER):
        raise ValueError(f"lpc must be ({features.shape[0]}, {XIPH_LPC_ORDER}), got {lpc.shape}")
    rows = np.concatenate([features, lpc], axis=1).astype("<f4" if np.little_endian else ">f4")
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    rows.tofile(tmp)
    os.replace(tmp, path)
    return path
