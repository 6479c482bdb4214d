"""Exports: the IAF student's synthesis as TorchScript, the student and LPCNet's frame-rate network as ONNX.

``vocoder-synth checkpoint=PATH export=FILE.pt`` (or :func:`export_torchscript`) writes a
``torch.jit.ScriptModule`` that holds the student's EMA weights and the log-mel normalization of the
data it was trained on, so that an application needs only ``torch``::

    synth = torch.jit.load("student.pt")
    wave = synth(mel, 0)          # mel: (B, T, n_mels) log-mel in the cache's units, seed 0

Its output equals :meth:`vocoder.inference.IAFVocoder.synthesize` for the same log-mel and seed (same
operations, same noise). This module avoids ``from __future__ import annotations`` so that TorchScript
can read the class annotations. Only the IAF student is exported: LPCNet's fast path is a numba kernel and the
WaveNet teacher's generation is a per-sample Python loop, neither of which TorchScript represents.

``vocoder-synth checkpoint=PATH export=FILE.onnx`` (or :func:`export_onnx`) writes an ONNX graph for
onnxruntime and other ONNX runtimes: the IAF student's synthesis from log-mel and noise
(:class:`ONNXIAFSynthesizer`), or LPCNet's frame-rate network with its per-frame GRU input terms
(:class:`ONNXLPCNetFrameNetwork`), the part of LPCNet synthesis that runs once per frame::

    import onnxruntime
    session = onnxruntime.InferenceSession("student.onnx")
    wave = session.run(None, {"mel": mel, "noise": noise})[0]   # mel (B, T, n_mels), noise (B, T·hop)
"""

import io
import warnings
from pathlib import Path

import torch
from torch import nn

from vocoder.data import write_atomic


class ScriptedIAFSynthesizer(nn.Module):
    """Log-mel → waveform with the student and its normalization (the module that is scripted).

    Args:
        student: a trained :class:`~vocoder.models.IAFStudent` (eval mode).
        mel_mean: (n_mels,) mean of the training log-mel.
        mel_std: (n_mels,) standard deviation of the training log-mel.
        sample_rate: output sample rate in Hz.
        segments: time segments evaluated concurrently (threads of torch's inter-op pool).
    """

    sample_rate: int
    hop_length: int
    segments: int

    def __init__(
        self,
        student: nn.Module,
        mel_mean: torch.Tensor,
        mel_std: torch.Tensor,
        sample_rate: int,
        segments: int = 1,
    ) -> None:
        super().__init__()
        self.student = student.eval()
        self.register_buffer("mel_mean", torch.as_tensor(mel_mean, dtype=torch.float32).clone())
        self.register_buffer("mel_std", torch.as_tensor(mel_std, dtype=torch.float32).clone())
        self.sample_rate = int(sample_rate)
        self.hop_length = int(student.hop_length)
        self.segments = int(segments)

    def normalize(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, T, n_mels) log-mel in the cache's units → (B, n_mels, T) normalized network input."""
        if mel.dim() != 3 or mel.shape[2] != self.mel_mean.shape[0]:
            raise ValueError(f"mel must be (B, T, {self.mel_mean.shape[0]})")
        return ((mel.to(self.mel_mean.dtype) - self.mel_mean) / self.mel_std).transpose(1, 2).contiguous()

    def forward(self, mel: torch.Tensor, seed: int = 0) -> torch.Tensor:
        """Synthesize.

        Args:
            mel: (B, T, n_mels) log-mel frames (natural log of mel power, as the prepared cache stores).
            seed: seed of the logistic noise.

        Returns:
            (B, T · hop_length) waveform at :attr:`sample_rate`.
        """
        # the student disables gradients itself (a `with torch.no_grad()` around its forked segments
        # could be restored on another thread)
        return self.student.synthesize(self.normalize(mel).detach(), seed, 8, self.segments)

    @torch.jit.export
    def synthesize_from_noise(self, mel: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Synthesize from given standard logistic noise (B, T · hop_length)."""
        return self.student.synthesize_from_noise(
            noise.detach(), self.normalize(mel).detach(), 8, self.segments
        )


def export_torchscript(
    checkpoint: str | Path, output: str | Path, *, use_ema: bool = True, segments: int = 1
) -> Path:
    """Script an IAF student checkpoint's synthesis and save it (atomically).

    Args:
        checkpoint: trainer checkpoint of an IAF student (``recipe=slt_iaf`` / ``slt_iaf_distill``).
        output: file to write (conventionally ``.pt``).
        use_ema: export the EMA weights (default) rather than the raw ones.
        segments: time segments synthesized concurrently by the exported module.

    Returns:
        The written path.

    Raises:
        SynthesisError: the checkpoint is not an IAF student's (one line naming it).
    """
    from vocoder.inference._vocoders import IAFVocoder, SynthesisError, load

    vocoder = load(checkpoint, use_ema=use_ema)
    if not isinstance(vocoder, IAFVocoder):
        raise SynthesisError(
            f"{checkpoint}: export supports the IAF student only, "
            f"this is a {type(vocoder.model).__name__} checkpoint"
        )
    if segments < 1:
        raise SynthesisError(f"segments must be >= 1, got {segments}")
    module = ScriptedIAFSynthesizer(
        vocoder.model.float(), vocoder.mel_mean, vocoder.mel_std, vocoder.sample_rate, segments
    )
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # torch.jit's deprecation notices are about TorchScript's future, not about this file
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(module)
        return write_atomic(path, lambda stream: torch.jit.save(scripted, stream))


class ONNXIAFSynthesizer(nn.Module):
    """The IAF student as an ONNX graph: log-mel and logistic noise in, waveform out.

    ONNX has no seeded generator that matches torch's, so the noise is an input
    (:meth:`vocoder.models.IAFStudent.sample_noise` draws the one ``vocoder`` uses; any standard
    logistic noise is a valid draw). The graph is the student's parallel pass (``IAFStudent.forward``
    on the normalized log-mel: dilated convolutions over the whole utterance), which equals the
    blockwise synthesis to float rounding.

    Args:
        student: a trained :class:`~vocoder.models.IAFStudent` (eval mode, float32).
        mel_mean: (n_mels,) mean of the training log-mel.
        mel_std: (n_mels,) standard deviation of the training log-mel.
    """

    def __init__(self, student: nn.Module, mel_mean: torch.Tensor, mel_std: torch.Tensor) -> None:
        super().__init__()
        self.student = student.eval()
        self.register_buffer("mel_mean", torch.as_tensor(mel_mean, dtype=torch.float32).clone())
        self.register_buffer("mel_std", torch.as_tensor(mel_std, dtype=torch.float32).clone())

    def forward(self, mel: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Synthesize.

        Args:
            mel: (B, T, n_mels) log-mel frames in the cache's units.
            noise: (B, T · hop_length) standard logistic noise.

        Returns:
            (B, T · hop_length) waveform.
        """
        normalized = ((mel - self.mel_mean) / self.mel_std).transpose(1, 2)
        return self.student(noise, normalized)[0]


class ONNXLPCNetFrameNetwork(nn.Module):
    """LPCNet's frame-rate network and the per-frame GRU input terms, as an ONNX graph.

    What runs once per 10 ms frame of LPCNet synthesis (the sample-rate loop stays with the numba
    synthesizers): padded raw features in, the conditioning and the frame parts of GRU_A's and
    GRU_B's input products out.

    Args:
        model: a trained :class:`~vocoder.models.LPCNet` (eval mode, float32).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.eval()

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Frame-rate terms.

        Args:
            features: (B, F + 2·frame_context, n_features) raw features, the edges padded (xiph's
                layout; ``frame_context`` = 2: the first and last frame repeated twice).

        Returns:
            ``(conditioning (B, F, frame_channels), gru_a_frame (B, F, 3·H_a), gru_b_frame (B, F, 3·H_b))``,
            the GRU terms with their input biases.
        """
        conditioning = self.model.frame_rate_network(features)
        gru_a_frame, gru_b_frame = self.model.frame_projections(conditioning)
        return conditioning, gru_a_frame, gru_b_frame


def onnx_bytes(module: nn.Module, sample_rate: int, opset: int = 17) -> bytes:
    """Serialize an :class:`ONNXIAFSynthesizer` or :class:`ONNXLPCNetFrameNetwork` as an ONNX model.

    Batch and time are dynamic axes; the metadata holds ``family``, ``sample_rate`` and ``hop_length``.

    Args:
        module: the module to export (float32, eval mode).
        sample_rate: output rate of the vocoder, in Hz (metadata).
        opset: ONNX opset.

    Returns:
        The checked model's bytes (``onnxruntime.InferenceSession(data)`` takes them as they are).
    """
    import onnx

    if isinstance(module, ONNXIAFSynthesizer):
        student = module.student
        hop, frames = student.hop_length, 3
        example: tuple[torch.Tensor, ...] = (torch.zeros(1, frames, student.n_mels),
                                             torch.zeros(1, frames * hop))
        inputs, outputs = ["mel", "noise"], ["waveform"]
        axes = {"mel": {0: "batch", 1: "frames"}, "noise": {0: "batch", 1: "samples"},
                "waveform": {0: "batch", 1: "samples"}}
        family = "IAFStudent"
    elif isinstance(module, ONNXLPCNetFrameNetwork):
        model = module.model
        hop = model.hop_length
        example = (torch.zeros(1, 3 + 2 * model.frame_context, model.n_features),)
        inputs, outputs = ["features"], ["conditioning", "gru_a_frame", "gru_b_frame"]
        axes = {"features": {0: "batch", 1: "padded_frames"},
                **{name: {0: "batch", 1: "frames"} for name in outputs}}
        family = "LPCNet"
    else:
        raise TypeError(f"no ONNX export for {type(module).__name__}")
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # the TorchScript-based exporter announces its successor; the graph it writes is the same ONNX
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the shape checks become constants
        warnings.filterwarnings("ignore", message="Constant folding")  # strided slices stay ops
        torch.onnx.export(module, example, buffer, input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=opset, dynamo=False)
    graph = onnx.load_from_string(buffer.getvalue())
    for key, value in (("family", family), ("sample_rate", str(sample_rate)), ("hop_length", str(hop))):
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(graph)
    return graph.SerializeToString()


def export_onnx(checkpoint: str | Path, output: str | Path, *, use_ema: bool = True, opset: int = 17) -> Path:
    """Export an IAF student's synthesis or LPCNet's frame-rate network as an ONNX file (atomically).

    * IAF student: inputs ``mel`` (B, T, n_mels) and ``noise`` (B, T·hop), output ``waveform``
      (:class:`ONNXIAFSynthesizer`);
    * LPCNet: input ``features`` (B, F + 4, 20), outputs ``conditioning``, ``gru_a_frame``,
      ``gru_b_frame`` (:class:`ONNXLPCNetFrameNetwork`).

    See :func:`onnx_bytes` for the axes and metadata.

    Args:
        checkpoint: trainer checkpoint, weights file or ``pretrained:NAME``.
        output: file to write (conventionally ``.onnx``).
        use_ema: export the EMA weights (default) rather than the raw ones.
        opset: ONNX opset.

    Returns:
        The written path.

    Raises:
        SynthesisError: the checkpoint is neither an IAF student's nor an LPCNet's, or the ``onnx``
            package is missing (one line).
    """
    from vocoder.inference._vocoders import IAFVocoder, LPCNetVocoder, SynthesisError, load

    try:
        import onnx  # noqa: F401 (its absence is one line, not a traceback)
    except ImportError:
        raise SynthesisError("ONNX export needs the onnx package: pip install 'vocoder[export]'") from None
    vocoder = load(checkpoint, use_ema=use_ema)
    if isinstance(vocoder, IAFVocoder):
        module: nn.Module = ONNXIAFSynthesizer(vocoder.model.float(), vocoder.mel_mean, vocoder.mel_std)
    elif isinstance(vocoder, LPCNetVocoder):
        module = ONNXLPCNetFrameNetwork(vocoder.model.float())
    else:
        raise SynthesisError(f"{checkpoint}: ONNX export supports the IAF student and LPCNet's frame-rate "
                             f"network; this is a {type(vocoder.model).__name__} checkpoint")
    data = onnx_bytes(module, vocoder.sample_rate, opset)
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, lambda stream: stream.write(data))
