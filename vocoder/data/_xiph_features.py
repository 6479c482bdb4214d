"""xiph LPCNet feature files (``.f32``): what ``dump_data -test`` and ``lpcnet_demo -features`` write.

A file is raw native-endian float32, one row of ``NB_TOTAL_FEATURES`` = 36 floats per 10 ms frame:
18 Bark cepstral coefficients, the pitch period as ``(T − 100)/50``, the pitch correlation as
``g − 0.5`` (the 20 features the network reads, ``NB_FEATURES``), then the 16 LPC coefficients
``a_k`` of ``A(z) = 1 + Σ a_k z⁻ᵏ`` that xiph derives from the cepstrum. Our features use the same
layout (:mod:`vocoder.dsp._lpcnet_features`), so these files drive our LPCNet directly — e.g. from a
TTS front end trained to predict xiph's features. The LPC columns are optional on reading (synthesis
recomputes the predictor from the cepstrum, as xiph's ``lpcnet_synthesize`` does).

**Where xiph's rows lie in time.** Our frame ``k`` describes samples ``[160k, 160k + 160)`` and is
analysed on the 320-sample window ``[160k − 80, 160k + 240)`` (:mod:`vocoder.dsp._bark`). xiph's
row ``k`` is analysed on an earlier window, by a fixed number of samples, the *delay* of the file
(:func:`xiph_feature_delay`), which follows from xiph's buffering (xiph/LPCNet, ``src/``):

* ``frame_analysis`` (``lpcnet_enc.c``) windows ``[analysis_mem, in]``: the ``OVERLAP_SIZE`` = 160
  samples before the frame it is given, then that frame (``FRAME_SIZE`` = 160; ``freq.h``). A frame
  handed over as input samples ``[160j, 160j + 160)`` is thus analysed on ``[160j − 160, 160j + 160)``.
* ``dump_data`` hands over the frame it read one iteration *before*: its loop copies ``x[i] = tmp[i]``
  and only then reads the next frame into ``tmp`` (``dump_data.c``, the main loop), so row ``k``
  analyses input frame ``j = k − 1`` (row 0: the zeros ``tmp`` starts with) on ``[160k − 320, 160k)``,
  240 samples before our window ``[160k − 80, 160k + 240)``. Its training output agrees: the PCM it
  writes for row ``k`` is that frame delayed by ``TRAINING_OFFSET`` = 80, samples ``[160k − 240,
  160k − 80)``, 240 before our frame ``k``.
* ``lpcnet_demo -features`` hands each frame over as it reads it (``lpcnet_demo.c``, ``MODE_FEATURES``:
  ``fread`` then ``lpcnet_compute_single_frame_features``): row ``k`` analyses ``[160k − 160, 160k +
  160)``, 80 samples before ours.

Synthesizing row ``k`` as our frame ``k`` therefore gives output that is ``delay`` samples late; it is
exact to drop the first ``delay`` output samples (``vocoder-synth`` does, per ``xiph_writer``), and what
remains is aligned with the recording: output sample ``n`` is recording sample ``n``. Both programs
write ``⌊N / 160⌋`` rows for ``N`` input samples, so the aligned output is ``delay`` samples shorter
than ``160 ⌊N / 160⌋``. Files written by :func:`write_xiph_features` hold our frames at our positions
(``writer="vocoder"``, delay 0).
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

#: xiph's ``FRAME_SIZE`` (``src/freq.h``: ``80*FRAME_SIZE_5MS``): samples per row, our hop.
XIPH_FRAME_SIZE = 160
#: xiph's ``OVERLAP_SIZE`` (``src/freq.h``: ``80*OVERLAP_SIZE_5MS``): samples of the previous frame in
#: the analysis window (``frame_analysis`` in ``src/lpcnet_enc.c``: ``RNN_COPY(x, st->analysis_mem,
#: OVERLAP_SIZE); RNN_COPY(&x[OVERLAP_SIZE], in, FRAME_SIZE)``).
XIPH_OVERLAP_SIZE = 160
#: Where our analysis window of frame ``k`` starts relative to ``160k`` (``vocoder.dsp._bark``: it
#: covers ``[160k − 80, 160k + 240)``, centred on the frame).
OUR_WINDOW_START = -XIPH_FRAME_SIZE // 2
#: Frames by which each program hands a frame to the analysis after reading it: ``dump_data`` one
#: (``src/dump_data.c`` main loop: ``x[i] = tmp[i]`` before ``fread(tmp, ...)``, then
#: ``compute_frame_features(st, x)``), ``lpcnet_demo -features`` none (``src/lpcnet_demo.c``,
#: ``MODE_FEATURES``: ``fread(pcm, ...)`` then ``lpcnet_compute_single_frame_features(net, pcm, ...)``);
#: ``vocoder``: files of :func:`write_xiph_features`, at our own positions.
XIPH_INPUT_LAG = {"dump_data": 1, "lpcnet_demo": 0}
#: The programs whose files :func:`xiph_feature_delay` knows (``vocoder-synth xiph_writer=``).
XIPH_WRITERS = ("dump_data", "lpcnet_demo", "vocoder")


def xiph_feature_delay(writer: str = "dump_data") -> int:
    """Samples by which the rows of a ``.f32`` file written by ``writer`` lie before our frames.

    Row ``k`` of xiph's program is analysed on input samples starting at
    ``160 (k − lag) − OVERLAP_SIZE`` (``lag`` = :data:`XIPH_INPUT_LAG`), ours at ``160k − 80``: the
    delay is ``OVERLAP_SIZE − 80 + 160 · lag`` (module docstring). Synthesizing the rows as our frames
    gives output this many samples late.

    Args:
        writer: ``dump_data`` (``dump_data -test`` / ``-train``), ``lpcnet_demo``
            (``lpcnet_demo -features``) or ``vocoder`` (:func:`write_xiph_features`).

    Returns:
        240 for ``dump_data``, 80 for ``lpcnet_demo``, 0 for ``vocoder``.

    Raises:
        ValueError: an unknown ``writer``.
    """
    if writer not in XIPH_WRITERS:
        raise ValueError(f"unknown xiph feature writer {writer!r}; expected one of {', '.join(XIPH_WRITERS)}")
    if writer == "vocoder":
        return 0
    xiph_window_start = -XIPH_FRAME_SIZE * XIPH_INPUT_LAG[writer] - XIPH_OVERLAP_SIZE  # relative to 160k
    return OUR_WINDOW_START - xiph_window_start


def read_xiph_features(path: str | os.PathLike, floats_per_frame: int = XIPH_TOTAL_FEATURES
                       ) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a xiph ``.f32`` feature file, its rows as stored.

    Row ``k`` lies :func:`xiph_feature_delay` samples before our frame ``k`` (240 for ``dump_data``'s
    files, see the module docstring): synthesized as they are, the rows give output that many samples
    late, and dropping that many leading output samples aligns it exactly (``vocoder-synth`` does).

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

    The rows are our frames at our positions (frame ``k`` describes samples ``[160k, 160k + 160)``),
    not shifted to where ``dump_data`` would put them: read them back with
    ``xiph_feature_delay("vocoder")`` = 0 (``vocoder-synth xiph_writer=vocoder``).

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
