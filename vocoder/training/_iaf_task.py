"""The IAF student's training modules: direct (spectral/L1/ModSpec) and distilled from a WaveNet teacher.

Both draw standard logistic noise ``z`` (torch's global generator, which the trainer checkpoints and
forks for validation), run the student over ``history + frames`` frames of a segment and score the
last ``frames`` frames. Every loss term is computed only when it is named in ``terms`` — the CLI
passes the keys of ``loss.weights`` (``terms: ${oc.dict.keys:loss.weights}``), so a term is turned
on by giving it a weight (weight 0 logs it without training on it).

Terms (nats per sample for ``kl``; others as documented in :mod:`vocoder.losses`):

* ``mel_l1`` — mean absolute difference of the natural-log mel (HiFi-GAN's reconstruction loss) of
  the student's output and of the recording, both analyzed exactly as the cache analyzes audio
  (:func:`vocoder.dsp.log_mel_spectrogram` with the data's settings and ``mel_floor``, the last
  centred frame dropped): the spectral envelope, which is what intelligibility needs.
* ``l1`` — mean absolute difference between the student's sample and the recording (inert for a
  noise-driven student: its phase is not the recording's; kept as an option).
* ``stft_sc`` / ``stft_mag`` — multi-resolution STFT spectral convergence / log-magnitude distance
  (:class:`vocoder.losses.STFTLoss`, settings in ``stft``).
* ``power`` — Parallel WaveNet's power loss (:class:`vocoder.losses.PowerLoss`, settings in ``power``).
* ``stft_frame`` — ClariNet's per-frame STFT-magnitude loss (:class:`vocoder.losses.FrameMagnitudeLoss`,
  settings in ``stft_frame``).
* ``modspec`` — :class:`vocoder.losses.ModSpecLoss` between the log-mel trajectories of the student's
  output and of the recording, both analyzed exactly as the cache analyzes audio
  (:func:`vocoder.dsp.log_mel_spectrogram` with the data's settings, the last centred frame dropped).
* ``kl`` (distillation only) — Monte-Carlo ``KL(student ‖ teacher)``
  (:class:`vocoder.losses.DistillationKL`, settings in ``kl``), the frozen teacher scoring the
  student's own sample in one teacher-forced pass.

Segments: ``history`` unscored frames (by default the receptive field: the student's for the direct
task; for distillation the teacher's *plus* the student's, so that every sample in the teacher's
window of a scored sample is itself an exact student sample), the ``frames`` scored frames, and the
student's conditioning look-ahead (``model.cond_lookahead_frames``, unscored).

Output level: with ``output_rms="data"`` the untrained student's output is put at the RMS of the
train split's audio (:meth:`vocoder.models.IAFStudent.set_output_log_scale`) instead of
``Logistic(0, 1)`` noise, ~35 dB louder than ARCTIC speech.

Gradient shares: every ``grad_share_every`` steps (and at step 1) the gradient of each weighted term
``w_i · ∇ L_i`` with respect to the student's parameters is computed separately; its norm
(``grad_norm/<term>``) and its share of the sum of the norms (``grad_share/<term>``) are logged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vocoder.checkpoints import CheckpointError
from vocoder.data import FeatureSettings, log_mel_frames
from vocoder.dsp import mel_filterbank
from vocoder.errors import ConfigError
from vocoder.losses import (
    DistillationKL,
    FrameMagnitudeLoss,
    ModSpecLoss,
    PowerLoss,
    STFTLoss,
    sample_logistic,
)
from vocoder.training._frozen import FrozenModule
from vocoder.training._wavenet_task import MelConditionedTask, history_frames_for, normalize_mel

AUXILIARY_TERMS = ("mel_l1", "l1", "stft_sc", "stft_mag", "power", "stft_frame", "modspec")
# standard deviation of the standard logistic distribution
LOGISTIC_STD = math.pi / math.sqrt(3.0)
# feature settings that decide what the teacher's conditioning means
MEL_SETTINGS = ("sample_rate", "hop_length", "n_fft", "win_length", "n_mels", "fmin", "fmax", "mel_floor")


def _build(cls: type[nn.Module], options: dict[str, Any] | None, key: str) -> nn.Module:
    """A loss module from its ``loss.<key>`` settings; bad settings → one-line :class:`ConfigError`."""
    try:
        return cls(**(options or {}))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"loss.{key}: {exc}") from None


class _StudentTask(MelConditionedTask):
    """Noise → student sample, and the auxiliary loss terms shared by both student objectives."""

    known_terms: tuple[str, ...] = AUXILIARY_TERMS

    def __init__(
        self,
        model: nn.Module,
        cache_dir: str,
        features: FeatureSettings,
        terms: Sequence[str],
        frames: int,
        history_frames: int | None,
        stft: dict[str, Any] | None,
        power: dict[str, Any] | None,
        modspec: ModSpecLoss | dict[str, Any] | None,
        example_seconds: float,
        stft_frame: dict[str, Any] | None = None,
        output_rms: float | str | None = None,
        grad_share_every: int = 0,
        term_weights: dict[str, float] | None = None,
    ) -> None:
        super().__init__(model, cache_dir, features, frames, history_frames, example_seconds)
        terms = list(terms)
        unknown = [t for t in terms if t not in self.known_terms]
        if unknown:
            raise ConfigError(
                f"loss.weights.{unknown[0]}: {type(self).__name__} has no loss term {unknown[0]!r} "
                f"(known: {', '.join(self.known_terms)})"
            )
        if not terms:
            raise ConfigError(f"loss.weights: empty; give a weight to one of {', '.join(self.known_terms)}")
        self.terms = tuple(terms)
        self.stft_loss = _build(STFTLoss, stft, "stft") if {"stft_sc", "stft_mag"} & set(terms) else None
        self.power_loss = _build(PowerLoss, power, "power") if "power" in terms else None
        self.frame_loss = (
            _build(FrameMagnitudeLoss, stft_frame, "stft_frame") if "stft_frame" in terms else None
        )
        if grad_share_every < 0:
            raise ConfigError(f"loss.grad_share_every: must be >= 0, got {grad_share_every}")
        self.grad_share_every = grad_share_every
        self.term_weights = {name: float(value) for name, value in (term_weights or {}).items()}
        self._grad_scalars: dict[str, float] = {}
        self.output_rms = self._set_output_level(output_rms)
        self.modspec_loss: ModSpecLoss | None = None
        if "modspec" in terms:
            self.modspec_loss = (
                modspec if isinstance(modspec, ModSpecLoss) else _build(ModSpecLoss, modspec, "modspec")
            )
            if self.modspec_loss.n < frames:
                raise ConfigError(
                    f"loss.modspec.n={self.modspec_loss.n} is shorter than loss.frames={frames}; "
                    "raise loss.modspec.n"
                )
        if {"modspec", "mel_l1"} & set(terms):
            # the cache's mel filter bank, built once (it follows .to(device) as a buffer)
            basis = mel_filterbank(
                features.sample_rate, features.n_fft, features.n_mels, features.fmin, features.fmax
            )
            self.register_buffer("mel_basis", basis.float(), persistent=False)

    def _set_output_level(self, output_rms: float | str | None) -> float | None:
        """Put the untrained student's output at ``output_rms`` (``"data"``: the train audio's RMS)."""
        if output_rms is None:
            return None
        if output_rms == "data":
            squares, count = 0.0, 0
            for utt in self.train_dataset("train").utterances:
                audio = utt.audio.astype("float64")
                squares += float((audio * audio).sum())
                count += audio.size
            rms = math.sqrt(squares / max(count, 1))
        elif isinstance(output_rms, str):
            raise ConfigError(f"loss.output_rms: a number, 'data' or null, got {output_rms!r}")
        else:
            rms = float(output_rms)
        if not rms > 0:
            raise ConfigError(f"loss.output_rms: must be > 0, got {rms}")
        if not hasattr(self.model, "set_output_log_scale"):
            raise ConfigError(f"loss.output_rms: {type(self.model).__name__} has no set_output_log_scale")
        self.model.set_output_log_scale(math.log(rms / LOGISTIC_STD))
        return rms

    @property
    def scored(self) -> slice:
        """The scored samples of a segment (after the history, before the look-ahead)."""
        start = self.history_samples
        return slice(start, start + self.frames * self.features.hop_length)

    def gradient_shares(self, terms: dict[str, torch.Tensor]) -> dict[str, float]:
        """Norm of each weighted term's gradient and its share of the sum of the norms.

        Args:
            terms: named scalar loss terms of one batch (their graphs are kept for the total's backward).

        Returns:
            ``grad_norm/<term>`` = ``‖w · ∇ L‖₂`` over the student's parameters and
            ``grad_share/<term>`` = that norm over the sum of all terms' norms.
        """
        params = [p for p in self.trainable_parameters()]
        norms: dict[str, float] = {}
        for name, value in terms.items():
            weight = self.term_weights.get(name, 1.0)
            if weight == 0 or not value.requires_grad:
                norms[name] = 0.0
                continue
            grads = torch.autograd.grad(value.float() * weight, params, retain_graph=True, allow_unused=True)
            norms[name] = math.sqrt(sum(float(g.double().square().sum()) for g in grads if g is not None))
        total = sum(norms.values())
        scalars = {f"grad_norm/{name}": value for name, value in norms.items()}
        scalars.update(
            {f"grad_share/{name}": value / total if total > 0 else 0.0 for name, value in norms.items()}
        )
        return scalars

    def _maybe_grad_shares(self, terms: dict[str, torch.Tensor], step: int) -> None:
        every = self.grad_share_every
        if every and (step == 1 or step % every == 0) and torch.is_grad_enabled():
            self._grad_scalars = self.gradient_shares(terms)

    def after_optimizer_step(self, step: int) -> dict[str, float]:
        scalars, self._grad_scalars = self._grad_scalars, {}
        return scalars

    def log_mel_frames(self, wave: torch.Tensor) -> torch.Tensor:
        """Log-mel trajectories (B, F, n_mels) of (B, F · hop) waveforms, as the cache computes them."""
        return log_mel_frames(wave, self.features, self.mel_basis.to(wave.dtype))

    def student_sample(
        self, model: nn.Module, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The student's sample over a whole segment (history included) from fresh logistic noise.

        Args:
            model: the student (``self.model`` or its EMA copy).
            batch: ``"mel"`` (B, n_mels, F) cached log-mel and ``"audio"`` (B, F · hop) waveform.

        Returns:
            ``(x, mu, log_s)``, each (B, (history + frames) · hop).
        """
        audio = batch["audio"]
        z = sample_logistic(list(audio.shape), audio.dtype, audio.device)
        return model(z, self.normalize(batch["mel"]))

    def auxiliary_terms(self, generated: torch.Tensor, natural: torch.Tensor) -> dict[str, torch.Tensor]:
        """The requested auxiliary loss terms between the scored parts of two waveforms.

        Args:
            generated: (B, frames · hop) the student's output.
            natural: (B, frames · hop) the recording.

        Returns:
            Scalar terms named as in ``terms`` (those of ``AUXILIARY_TERMS`` that were requested).
        """
        generated = generated.float()
        terms: dict[str, torch.Tensor] = {}
        if "mel_l1" in self.terms:
            terms["mel_l1"] = (self.log_mel_frames(generated) - self.log_mel_frames(natural)).abs().mean()
        if "l1" in self.terms:
            terms["l1"] = (generated - natural).abs().mean()
        if self.stft_loss is not None:
            convergence, log_magnitude = self.stft_loss(generated, natural)
            if "stft_sc" in self.terms:
                terms["stft_sc"] = convergence
            if "stft_mag" in self.terms:
                terms["stft_mag"] = log_magnitude
        if self.power_loss is not None:
            terms["power"] = self.power_loss(generated, natural)
        if self.frame_loss is not None:
            terms["stft_frame"] = self.frame_loss(generated, natural)
        if self.modspec_loss is not None:
            terms["modspec"] = self.modspec_loss(self.log_mel_frames(generated), self.log_mel_frames(natural))
        return terms

    def generate_example(self, model: nn.Module, mel: torch.Tensor) -> torch.Tensor:
        return model.synthesize(mel, seed=0)[0]


class IAFTask(_StudentTask):
    """Trains :class:`vocoder.models.IAFStudent` directly on recordings (no teacher).

    The student's sample from fresh noise is compared with the recording; terms ``mel_l1``, ``l1``,
    ``stft_sc``, ``stft_mag``, ``power``, ``stft_frame`` and ``modspec`` (module docstring), each
    computed only when named in ``terms``.

    Args:
        model: the IAF student.
        cache_dir: prepared feature cache.
        features: the cache's feature settings.
        terms: loss terms to compute (the keys of ``loss.weights``).
        frames: scored frames per training segment.
        history_frames: unscored frames of past per segment (``None``: the student's receptive field).
        stft: :class:`vocoder.losses.STFTLoss` keyword arguments (``resolutions``, ``floor``).
        power: :class:`vocoder.losses.PowerLoss` keyword arguments.
        modspec: a :class:`vocoder.losses.ModSpecLoss` (e.g. built by Hydra from
            ``configs/loss/terms/modspec.yaml``) or its keyword arguments (``n`` ≥ ``frames``).
        example_seconds: length of the dev excerpts synthesized for TensorBoard.
        stft_frame: :class:`vocoder.losses.FrameMagnitudeLoss` keyword arguments.
        output_rms: initial output RMS of the student: ``"data"`` (the train audio's), a number, or
            ``None`` (unchanged: ``Logistic(0, 1)`` noise).
        grad_share_every: log each term's gradient norm and share every this many steps (0: never).
        term_weights: the loss weights (``loss.weights``) the gradient shares are weighted with.
    """

    def __init__(
        self,
        model: nn.Module,
        cache_dir: str,
        features: FeatureSettings,
        terms: list[str] | tuple[str, ...] = ("l1",),
        frames: int = 20,
        history_frames: int | None = None,
        stft: dict[str, Any] | None = None,
        power: dict[str, Any] | None = None,
        modspec: ModSpecLoss | dict[str, Any] | None = None,
        example_seconds: float = 2.0,
        stft_frame: dict[str, Any] | None = None,
        output_rms: float | str | None = None,
        grad_share_every: int = 0,
        term_weights: dict[str, float] | None = None,
    ) -> None:
        super().__init__(
            model,
            cache_dir,
            features,
            terms,
            frames,
            history_frames,
            stft,
            power,
            modspec,
            example_seconds,
            stft_frame=stft_frame,
            output_rms=output_rms,
            grad_share_every=grad_share_every,
            term_weights=term_weights,
        )

    def _terms(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x, _, _ = self.student_sample(model, batch)
        scored = self.scored
        return self.auxiliary_terms(x[:, scored], batch["audio"][:, scored])

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        terms = self._terms(self.model, batch)
        self._maybe_grad_shares(terms, step)
        return terms

    @torch.no_grad()
    def validation_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self._terms(model, batch)


def load_teacher(checkpoint: str | Path, features: FeatureSettings):
    """Load a trained WaveNet teacher (EMA weights) for distillation, checked against the data.

    Args:
        checkpoint: a ``vocoder-train`` checkpoint of a :class:`vocoder.models.WaveNetTeacher`.
        features: the feature settings of the student's data; the teacher's mel settings must equal them.

    Returns:
        The :class:`vocoder.inference.WaveNetVocoder` (rebuilt network in eval mode, its feature
        settings and its mel statistics).

    Raises:
        CheckpointError: one line, for a missing, unreadable, foreign or mismatching checkpoint.
    """
    from vocoder.inference import SynthesisError, WaveNetVocoder, load

    try:
        vocoder = load(checkpoint, use_ema=True)
    except SynthesisError as exc:
        raise CheckpointError(f"loss.teacher_checkpoint: {exc}") from None
    except CheckpointError as exc:
        raise CheckpointError(f"loss.teacher_checkpoint: {exc}") from None
    if not isinstance(vocoder, WaveNetVocoder):
        raise CheckpointError(
            f"loss.teacher_checkpoint: {checkpoint} holds a model of class {type(vocoder.model).__name__}, "
            "not a WaveNet teacher (train one with recipe=slt_wavenet)"
        )
    differing = [
        f"{key} {getattr(vocoder.features, key)} vs {getattr(features, key)}"
        for key in MEL_SETTINGS
        if getattr(vocoder.features, key) != getattr(features, key)
    ]
    if differing:
        raise CheckpointError(
            f"loss.teacher_checkpoint: {checkpoint} was trained on other mel features "
            f"({'; '.join(differing)}); distill on data prepared with the teacher's data.features"
        )
    return vocoder


class IAFDistillTask(_StudentTask):
    """Trains :class:`vocoder.models.IAFStudent` by probability density distillation (Parallel WaveNet).

    The teacher is rebuilt from ``teacher_checkpoint`` (its config's ``model`` section, EMA weights),
    frozen (eval mode, no gradients to its parameters; re-frozen after every ``train()`` call) and
    held next to ``self.model``, never inside it: it is not in :meth:`trainable_parameters`, the
    optimizer, the EMA or the checkpoints' ``model``/``ema`` state. Gradients still flow through it
    to the student's sample. It is fed with its own checkpoint's mel statistics.

    Loss terms: ``kl`` plus the auxiliary terms of :class:`IAFTask` (module docstring), each
    computed only when named in ``terms``.

    Args:
        model: the IAF student.
        cache_dir: prepared feature cache.
        features: the cache's feature settings (must match the teacher's mel settings).
        teacher_checkpoint: path of the WaveNet teacher's checkpoint (e.g.
            ``exp/slt_wavenet/checkpoints/last.pt``); required.
        terms: loss terms to compute (the keys of ``loss.weights``).
        frames: scored frames per training segment.
        history_frames: unscored frames of past per segment (``None``: the teacher's receptive field
            plus the student's, so that the teacher scores every scored sample with a full window of
            exact student samples).
        kl: :func:`vocoder.losses.distillation_kl` keyword arguments (``teacher_density``,
            ``num_samples``); ``bits`` is the teacher's.
        stft: :class:`vocoder.losses.STFTLoss` keyword arguments.
        power: :class:`vocoder.losses.PowerLoss` keyword arguments.
        modspec: a :class:`vocoder.losses.ModSpecLoss` (e.g. built by Hydra from
            ``configs/loss/terms/modspec.yaml``) or its keyword arguments (``n`` ≥ ``frames``).
        example_seconds: length of the dev excerpts synthesized for TensorBoard.
        stft_frame: :class:`vocoder.losses.FrameMagnitudeLoss` keyword arguments.
        output_rms: initial output RMS of the student: ``"data"`` (the train audio's), a number, or
            ``None`` (unchanged: ``Logistic(0, 1)`` noise).
        grad_share_every: log each term's gradient norm and share every this many steps (0: never).
        term_weights: the loss weights (``loss.weights``) the gradient shares are weighted with.
    """

    known_terms = ("kl", *AUXILIARY_TERMS)

    def __init__(
        self,
        model: nn.Module,
        cache_dir: str,
        features: FeatureSettings,
        teacher_checkpoint: str | None = None,
        terms: list[str] | tuple[str, ...] = ("kl", "power"),
        frames: int = 20,
        history_frames: int | None = None,
        kl: dict[str, Any] | None = None,
        stft: dict[str, Any] | None = None,
        power: dict[str, Any] | None = None,
        modspec: ModSpecLoss | dict[str, Any] | None = None,
        example_seconds: float = 2.0,
        stft_frame: dict[str, Any] | None = None,
        output_rms: float | str | None = None,
        grad_share_every: int = 0,
        term_weights: dict[str, float] | None = None,
    ) -> None:
        if not teacher_checkpoint:
            raise ConfigError(
                "loss.teacher_checkpoint: not set; train a teacher (recipe=slt_wavenet) and pass "
                "loss.teacher_checkpoint=exp/slt_wavenet/checkpoints/last.pt"
            )
        kl_options = dict(kl or {})
        unknown = sorted(set(kl_options) - {"teacher_density", "num_samples"})
        if unknown:
            raise ConfigError(f"loss.kl.{unknown[0]}: unknown setting (known: teacher_density, num_samples)")
        teacher = load_teacher(teacher_checkpoint, features)
        try:
            kl_loss = DistillationKL(bits=teacher.model.bits, **kl_options)
        except ValueError as exc:
            raise ConfigError(f"loss.kl: {exc}") from None
        if history_frames is None:
            # the teacher's window of the first scored sample reaches R_T - 1 samples back, and each
            # of those student samples needs its own R_S - 1 samples of noise to be exact
            context = teacher.model.receptive_field + model.receptive_field - 1
            history_frames = history_frames_for(context, features.hop_length)
        super().__init__(
            model,
            cache_dir,
            features,
            terms,
            frames,
            history_frames,
            stft,
            power,
            modspec,
            example_seconds,
            stft_frame=stft_frame,
            output_rms=output_rms,
            grad_share_every=grad_share_every,
            term_weights=term_weights,
        )
        self.kl_loss = kl_loss
        self.teacher_checkpoint = str(teacher_checkpoint)
        # outside the module registry (parameters, state_dict, optimizer, checkpoints), always eval,
        # moved by .to(device); gradients reach the student's sample through it
        self.teacher = FrozenModule(teacher.model)
        self.register_buffer("teacher_mel_mean", teacher.mel_mean.float(), persistent=False)
        self.register_buffer("teacher_mel_std", teacher.mel_std.float(), persistent=False)

    def _terms(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x, mu, log_s = self.student_sample(model, batch)
        span = self.scored
        terms: dict[str, torch.Tensor] = {}
        if "kl" in self.terms:
            teacher_mel = normalize_mel(batch["mel"], self.teacher_mel_mean, self.teacher_mel_std)
            params = self.teacher.mixture_params(x, teacher_mel)
            scored = (mu[:, span], log_s[:, span], x[:, span], params[:, :, span])
            terms["kl"] = self.kl_loss(*(value.float() for value in scored))
        terms.update(self.auxiliary_terms(x[:, span], batch["audio"][:, span]))
        return terms

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        terms = self._terms(self.model, batch)
        self._maybe_grad_shares(terms, step)
        return terms

    @torch.no_grad()
    def validation_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self._terms(model, batch)
