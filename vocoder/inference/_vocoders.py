"""Synthesis from a trainer checkpoint: ``vocoder.inference.load(path).synthesize(...)``.

The checkpoint carries the resolved config, so the network is rebuilt from it (``config.model``
with its ``_target_``), the EMA weights are loaded, and the feature settings of the data it was
trained on decide how conditioning is computed from a waveform (copy synthesis).
"""

from __future__ import annotations

import abc
import contextlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from vocoder.checkpoints import load_weights, model_family, rebuild_model
from vocoder.data import FeatureSettings
from vocoder.inference._errors import SynthesisError
from vocoder.inference._streaming import IAFStream, LPCNetStream, SynthesisStream


class Vocoder(abc.ABC):
    """A trained network plus its feature settings: conditioning in, waveform out.

    Args:
        model: the network, in eval mode.
        features: feature settings of the data it was trained on.
    """

    #: conditioning kind read from a prepared cache entry (``features`` or ``mel``)
    conditioning_key: ClassVar[str]
    #: whether several utterances can be synthesized in one call
    batched: ClassVar[bool] = True

    def __init__(self, model: nn.Module, features: FeatureSettings) -> None:
        self.model = model.eval()
        self.features = features

    @property
    def sample_rate(self) -> int:
        return self.features.sample_rate

    @abc.abstractmethod
    def analyze(self, wave: np.ndarray) -> np.ndarray:
        """Conditioning ``(T, C)`` of a waveform at :attr:`sample_rate` (copy synthesis)."""

    @abc.abstractmethod
    def synthesize(self, conditioning: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
        """Waveforms (float32, ``T · hop`` samples each) for a list of ``(T, C)`` conditionings."""

    def copy_synthesize(self, waves: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
        """Analyze and resynthesize waveforms."""
        return self.synthesize([self.analyze(w) for w in waves], seed=seed)

    def stream(self, seed: int = 0) -> SynthesisStream:
        """A stream of one utterance: ``push(frames (T, C)) -> audio``, ``flush() -> audio``.

        See :mod:`vocoder.inference._streaming`; its output is :meth:`synthesize` of the same frames.

        Raises:
            SynthesisError: this model family has no streaming synthesis.
        """
        name = f"{type(self).__name__} ({type(self.model).__name__})"
        raise SynthesisError(f"{name} has no streaming synthesis")

    @classmethod
    def from_checkpoint(
        cls, model: nn.Module, features: FeatureSettings, module_state: dict[str, Any], **options: Any
    ) -> Vocoder:
        """Wrap a network rebuilt from a checkpoint.

        Args:
            model: the network with the checkpoint's weights.
            features: feature settings of the data it was trained on.
            module_state: the checkpoint's training-module state (``checkpoint["module"]``, e.g.
                normalization statistics the training module kept outside the network).
            options: family-specific options.

        Returns:
            The vocoder.
        """
        return cls(model, features, **options)


def _pad_frames(items: list[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """Stack ``(T_i, C)`` arrays into ``(B, max T, C)`` by repeating each last frame."""
    lengths = [len(x) for x in items]
    longest = max(lengths)
    batch = np.stack([np.concatenate([x, np.repeat(x[-1:], longest - len(x), axis=0)]) for x in items])
    return batch, lengths


#: LPCNet synthesizers: numba float, 8-bit weights and products (DualFC included / xiph's split with a
#: float DualFC), the torch reference loop.
LPCNET_BACKENDS = ("fast", "int8", "int8_xiph", "torch")


class LPCNetVocoder(Vocoder):
    """LPCNet: 20 features per 10 ms frame → waveform via the fast numba sampler."""

    conditioning_key = "features"

    def __init__(self, model: nn.Module, features: FeatureSettings, backend: str = "fast", threads: int = 1,
                 tempering: str = "xiph"):
        from vocoder.inference._lpcnet_sampling import TEMPERING

        super().__init__(model, features)
        if tempering not in TEMPERING:
            raise SynthesisError(f"tempering={tempering!r}: must be one of {', '.join(TEMPERING)}")
        if backend not in LPCNET_BACKENDS:
            raise SynthesisError(f"backend={backend!r}: must be one of {', '.join(LPCNET_BACKENDS)}")
        # the numba/int8 synthesizers implement the DualFC heads (softmax and tree); dual_softmax uses torch
        self.backend = backend if getattr(model, "output_head", "dualfc") != "dual_softmax" else "torch"
        self.threads = threads
        self.tempering = tempering

    def analyze(self, wave: np.ndarray) -> np.ndarray:
        from vocoder.dsp import lpcnet_features

        feats, _ = lpcnet_features(wave, self.sample_rate, self.features.preemphasis, self.features.lpc_order,
                                   pitch_correlation=self.features.pitch_correlation)
        return feats

    @torch.no_grad()
    def synthesize(self, conditioning: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
        from vocoder.inference._lpcnet_backends import lpcnet_synthesize

        batch, lengths = _pad_frames([np.asarray(c, dtype=np.float32) for c in conditioning])
        waves = lpcnet_synthesize(self.model, batch, seed=seed, backend=self.backend, threads=self.threads,
                                  tempering=self.tempering)
        hop = self.features.hop_length
        return [np.asarray(waves[i, : n * hop], dtype=np.float32) for i, n in enumerate(lengths)]

    def stream(self, seed: int = 0) -> SynthesisStream:
        """Frame-by-frame synthesis with this vocoder's backend and tempering: sample for sample
        ``synthesize([frames], seed)`` whatever the pushes (delay: ``frame_context`` frames)."""
        return LPCNetStream(self.model, self.sample_rate, backend=self.backend, tempering=self.tempering,
                            seed=seed)


class _MelVocoder(Vocoder):
    """Log-mel conditioned networks (WaveNet teacher, IAF student) normalized with their training statistics.

    Args:
        model: the network, in eval mode.
        features: feature settings of the data it was trained on.
        mel_mean: (n_mels,) per-band mean the network's input was normalized with.
        mel_std: (n_mels,) per-band standard deviation.
        threads: torch intra-op threads while synthesizing (restored afterwards).
    """

    conditioning_key = "mel"

    def __init__(self, model: nn.Module, features: FeatureSettings, mel_mean: torch.Tensor,
                 mel_std: torch.Tensor, threads: int = 1) -> None:
        super().__init__(model, features)
        self.mel_mean = torch.as_tensor(mel_mean, dtype=torch.float32)
        self.mel_std = torch.as_tensor(mel_std, dtype=torch.float32)
        if threads < 1:
            raise SynthesisError(f"threads must be >= 1, got {threads}")
        self.threads = threads

    @contextlib.contextmanager
    def _threads(self):
        previous = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)

    @classmethod
    def from_checkpoint(
        cls, model: nn.Module, features: FeatureSettings, module_state: dict[str, Any], **options: Any
    ) -> Vocoder:
        if "mel_mean" not in module_state or "mel_std" not in module_state:
            raise SynthesisError(
                f"{type(model).__name__} checkpoint has no mel statistics (module.mel_mean/mel_std); "
                "was it written by vocoder-train with its WaveNet/IAF training module?"
            )
        return cls(model, features, module_state["mel_mean"], module_state["mel_std"], **options)

    def analyze(self, wave: np.ndarray) -> np.ndarray:
        from vocoder.data import log_mel_frames

        hop = self.features.hop_length
        trimmed = np.ascontiguousarray(np.asarray(wave, dtype=np.float32)[: len(wave) // hop * hop])
        with torch.no_grad():
            return log_mel_frames(torch.from_numpy(trimmed), self.features).numpy()

    def _network_input(self, mel: np.ndarray) -> torch.Tensor:
        """A (T, n_mels) log-mel as the normalized (1, n_mels, T) network input on the model's device."""
        device = next(self.model.parameters()).device
        tensor = torch.from_numpy(np.ascontiguousarray(np.asarray(mel, dtype=np.float32).T)).unsqueeze(0)
        return ((tensor - self.mel_mean[:, None]) / self.mel_std[:, None]).to(device)


class WaveNetVocoder(_MelVocoder):
    """WaveNet teacher: log-mel → waveform by autoregressive generation (one sample at a time: slow)."""

    batched = False

    @torch.no_grad()
    def synthesize(self, conditioning: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
        waves = []
        with self._threads():
            for i, mel in enumerate(conditioning):
                net_input = self._network_input(mel)
                generator = torch.Generator(device=net_input.device).manual_seed(seed + i)
                wave = self.model.generate(net_input, generator=generator)[0]
                waves.append(wave.float().cpu().numpy())
        return waves


class IAFVocoder(_MelVocoder):
    """IAF student: log-mel → waveform in one parallel pass; utterances of any lengths batched by padding."""

    @torch.no_grad()
    def synthesize(self, conditioning: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
        # padding repeats each last frame. Each output sample depends on the noise up to its own time
        # and (with the repeat upsampler) on its own frame only, so the padding does not reach the
        # real frames' samples; their noise draws differ from an unbatched call's (another row
        # layout of the same generator), not their distribution
        batch, lengths = _pad_frames([np.asarray(c, dtype=np.float32) for c in conditioning])
        net_input = torch.cat([self._network_input(mel) for mel in batch])
        with self._threads():
            # one time segment per thread (exact: see IAFStudent.synthesize_from_noise)
            waves = self.model.synthesize(net_input, seed=seed, segments=self.threads)
        hop = self.features.hop_length
        return [waves[i, : n * hop].float().cpu().numpy() for i, n in enumerate(lengths)]

    def stream(self, seed: int = 0) -> SynthesisStream:
        """Frame-by-frame synthesis: ``synthesize([mel], seed)`` up to float rounding whatever the
        pushes (delay: the upsampler's look-ahead)."""
        return IAFStream(self.model, self.mel_mean, self.mel_std, self.sample_rate, seed=seed,
                         threads=self.threads)


#: model class name → vocoder class; model families register here
VOCODERS: dict[str, type[Vocoder]] = {"LPCNet": LPCNetVocoder, "WaveNetTeacher": WaveNetVocoder,
                                      "IAFStudent": IAFVocoder}


def load(checkpoint: str | Path, use_ema: bool = True, device: str = "cpu", **options: Any) -> Vocoder:
    """Rebuild the network of a trainer checkpoint and wrap it for synthesis.

    Args:
        checkpoint: path of a ``.pt`` written by the trainer, a weights file
            (:func:`vocoder.checkpoints.export_weights`) or ``pretrained:NAME`` (a packaged model).
        use_ema: load the EMA weights (default) rather than the raw ones.
        device: where the network lives.
        options: passed to the model family's :class:`Vocoder` (e.g. ``backend="torch"``).

    Raises:
        SynthesisError / CheckpointError: one-line messages.
    """
    label = str(checkpoint)
    state = load_weights(checkpoint, map_location=device)
    model_cfg, target = model_family(state["config"], label)
    family = target.rsplit(".", 1)[-1]
    if family not in VOCODERS:
        raise SynthesisError(f"{label}: unknown model {target!r}; known: {', '.join(sorted(VOCODERS))}")
    try:
        feature_cfg = dict(state["config"]["data"]["features"])
    except (KeyError, TypeError):
        raise SynthesisError(f"{label}: checkpoint has no data config; was it written by vocoder-train?") from None
    model, state = rebuild_model(checkpoint, use_ema=use_ema, device=device, label=label, state=state)
    features = FeatureSettings(**feature_cfg)
    try:
        return VOCODERS[family].from_checkpoint(model, features, state.get("module", {}), **options)
    except SynthesisError as exc:
        raise SynthesisError(f"{checkpoint}: {exc}") from None
    except TypeError as exc:  # an option another model family does not have (e.g. tempering= for IAF)
        raise SynthesisError(f"{checkpoint}: a {family} does not take these options "
                             f"({', '.join(sorted(options))}): {exc}") from None
