"""TorchScript export of the IAF student's synthesis: a self-contained file, loadable without vocoder.

``vocoder-synth checkpoint=PATH export=FILE.pt`` (or :func:`export_torchscript`) writes a
``torch.jit.ScriptModule`` that holds the student's EMA weights and the log-mel normalization of the
data it was trained on, so that an application needs only ``torch``::

    synth = torch.jit.load("student.pt")
    wave = synth(mel, 0)          # mel: (B, T, n_mels) log-mel in the cache's units, seed 0

Its output equals :meth:`vocoder.inference.IAFVocoder.synthesize` for the same log-mel and seed (same
operations, same noise). This module avoids ``from __future__ import annotations`` so that TorchScript
can read the class annotations. Only the IAF student is exported: LPCNet's fast path is a numba kernel and the
WaveNet teacher's generation is a per-sample Python loop, neither of which TorchScript represents.
"""

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
