"""One entry point for every LPCNet synthesizer: fast (numba float), int8, int8_xiph and the torch loop."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from vocoder.inference._lpcnet_fast import synthesize_fast
from vocoder.inference._lpcnet_int8 import synthesize_int8
from vocoder.inference._lpcnet_sampling import synthesize_reference
from vocoder.models import LPCNet


def lpcnet_synthesize(model: LPCNet, features: np.ndarray | torch.Tensor,
                      lpc: np.ndarray | torch.Tensor | None = None, seed: int = 0,
                      backend: Literal["fast", "int8", "int8_xiph", "torch"] = "fast",
                      dtype: np.dtype | type | None = None, threads: int = 1, tempering: str = "xiph"
                      ) -> np.ndarray:
    """Synthesize audio from LPCNet features.

    Args:
        model: the network (e.g. the EMA copy).
        features: ``(T, n_features)`` or ``(B, T, n_features)`` raw features.
        lpc: ``(T, order)`` / ``(B, T, order)`` predictor per frame; from the cepstra when omitted.
        seed: RNG seed; utterance ``b`` of a batch uses the stream ``[seed, b]``.
        backend: ``"fast"`` (numba, :func:`synthesize_fast`), ``"int8"`` (numba with 8-bit products,
            :func:`~vocoder.inference._lpcnet_int8.synthesize_int8`), ``"int8_xiph"`` (xiph's split: 8 bits
            in the GRUs only, the DualFC float) or ``"torch"`` (the reference loop).
        dtype: network arithmetic of the fast backend (model dtype if omitted; float32 for int8).
        threads: threads of the fast backend (utterances are split over them).
        tempering: ``xiph`` (default), ``raw`` or ``none``; see
            :func:`~vocoder.inference._lpcnet_sampling.sampling_exponent`.

    Returns:
        ``(T · hop,)`` or ``(B, T · hop)`` float32 waveform in [-1, 1].
    """
    single = np.ndim(features) == 2
    if single:
        features = features[None]
        lpc = None if lpc is None else lpc[None]
    if backend != "torch" and getattr(model, "output_head", "dualfc") == "dual_softmax":
        raise ValueError(f"backend={backend!r} synthesizes LPCNet's DualFC μ-law heads only; this model has "
                         f"output_head={model.output_head!r}: use backend='torch'")
    if backend == "fast":
        result = synthesize_fast(model, features, lpc, seed=seed, dtype=dtype, threads=threads,
                                 tempering=tempering)
    elif backend in ("int8", "int8_xiph"):
        result = synthesize_int8(model, features, lpc, seed=seed, dtype=dtype or np.float32, threads=threads,
                                 tempering=tempering,
                                 dual_fc="int8" if backend == "int8" else "float")
    elif backend == "torch":
        result = synthesize_reference(model, features, lpc, seed=seed, tempering=tempering)
    else:
        raise ValueError(f"backend must be 'fast', 'int8', 'int8_xiph' or 'torch', got {backend!r}")
    return result.waveform[0] if single else result.waveform
