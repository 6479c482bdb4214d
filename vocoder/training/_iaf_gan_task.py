"""The IAF student trained against discriminators, with its spectral losses kept as a regulariser.

Two parameter groups, updated in this order every step (:class:`vocoder.training.ParameterGroup`):

* ``gen`` — the student (``self.model``, averaged by the EMA). Its terms are those of
  :class:`vocoder.training.IAFTask` (``mel_l1``, ``stft_sc``, ``stft_mag``, …) plus, from
  ``adversarial.start_step`` on, ``adv`` (the generator's adversarial term on the scored samples)
  and ``fm`` (feature matching: the discriminators' hidden activations on the student's output vs
  on the recording); weights ``loss.weights.<term>``.
* ``disc`` — the discriminators (:func:`vocoder.layers.build_discriminators`), updated from
  ``adversarial.start_step`` on every ``adversarial.every`` steps on the recording (``real``) and on
  the student's output of the same step, detached (``fake``); weights ``loss.weights.disc.<term>``.

Both sides see the scored samples of a segment (after the history, before the look-ahead). The
objective is ``adversarial.objective`` (:class:`vocoder.losses.AdversarialLoss`). The mean raw
score of each discriminator kind on real and generated audio is logged as ``score/<kind>/real`` and
``score/<kind>/fake``. Validation reports the spectral terms only (with the EMA weights), so that
``best.pt`` does not follow the discriminator's moves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from vocoder.data import FeatureSettings
from vocoder.errors import ConfigError
from vocoder.layers import DISCRIMINATOR_KINDS, DiscriminatorOutput, build_discriminators
from vocoder.losses import ADVERSARIAL_OBJECTIVES, AdversarialLoss, ModSpecLoss, feature_matching_loss
from vocoder.training._iaf_task import AUXILIARY_TERMS, IAFTask
from vocoder.training._module import ParameterGroup

#: the generator's adversarial terms and the discriminator's terms.
GENERATOR_ADVERSARIAL_TERMS = ("adv", "fm")
DISCRIMINATOR_TERMS = ("real", "fake")
DISCRIMINATOR_GROUP = "disc"
GENERATOR_GROUP = "gen"
_ADVERSARIAL_KEYS = ("objective", "start_step", "every", "discriminators", *DISCRIMINATOR_KINDS)


def _adversarial_settings(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``loss.adversarial`` with its defaults, checked: one :class:`ConfigError` line naming the key."""
    settings = {"objective": "lsgan", "start_step": 1, "every": 1, "discriminators": ["mrstft"]}
    for key, value in dict(options or {}).items():
        if key not in _ADVERSARIAL_KEYS:
            known = ", ".join(_ADVERSARIAL_KEYS)
            raise ConfigError(f"loss.adversarial.{key}: unknown setting (known: {known})")
        settings[key] = value
    if settings["objective"] not in ADVERSARIAL_OBJECTIVES:
        raise ConfigError(f"loss.adversarial.objective: expected one of {', '.join(ADVERSARIAL_OBJECTIVES)}, "
                          f"got {settings['objective']!r}")
    for key in ("start_step", "every"):
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"loss.adversarial.{key}: expected an integer >= 1, got {value!r}")
    kinds = settings["discriminators"]
    if isinstance(kinds, str) or not isinstance(kinds, list | tuple) or not kinds:
        known = ", ".join(DISCRIMINATOR_KINDS)
        raise ConfigError(f"loss.adversarial.discriminators: expected a list of {known}, got {kinds!r}")
    settings["discriminators"] = [str(kind) for kind in kinds]
    return settings


class IAFGANTask(IAFTask):
    """Trains :class:`vocoder.models.IAFStudent` against discriminators (module docstring).

    Args:
        model: the IAF student.
        cache_dir: prepared feature cache.
        features: the cache's feature settings.
        terms: the keys of ``loss.weights``: the student's terms (``IAFTask``'s, ``adv``, ``fm``) and
            ``disc`` (the discriminator's weights, a dict with ``real`` and ``fake``).
        adversarial: ``objective`` (``lsgan`` or ``hinge``), ``start_step`` (first step of the
            discriminator's updates and of the student's ``adv``/``fm`` terms), ``every`` (the
            discriminator's update interval), ``discriminators`` (kinds, any of ``mrstft``, ``mpd``,
            ``pwg``) and per kind its keyword arguments (``mrstft: {resolutions: …, channels: 32}``;
            :data:`vocoder.layers.DISCRIMINATOR_KINDS`).
        term_weights: the loss weights (``loss.weights``), for the student's gradient shares.
        frames, history_frames, stft, power, modspec, example_seconds, stft_frame, output_rms,
            grad_share_every: as :class:`vocoder.training.IAFTask`.
    """

    known_terms = (*AUXILIARY_TERMS, *GENERATOR_ADVERSARIAL_TERMS)

    def __init__(
        self,
        model: nn.Module,
        cache_dir: str,
        features: FeatureSettings,
        terms: list[str] | tuple[str, ...] = ("mel_l1", "adv", "disc"),
        adversarial: dict[str, Any] | None = None,
        frames: int = 20,
        history_frames: int | None = None,
        stft: dict[str, Any] | None = None,
        power: dict[str, Any] | None = None,
        modspec: ModSpecLoss | dict[str, Any] | None = None,
        example_seconds: float = 2.0,
        stft_frame: dict[str, Any] | None = None,
        output_rms: float | str | None = None,
        grad_share_every: int = 0,
        term_weights: dict[str, Any] | None = None,
    ) -> None:
        terms = list(terms)
        if DISCRIMINATOR_GROUP not in terms:
            raise ConfigError(
                f"loss.weights.{DISCRIMINATOR_GROUP}: missing; weigh the discriminator's terms, e.g. "
                f"+loss.weights.{DISCRIMINATOR_GROUP}.real=1.0 +loss.weights.{DISCRIMINATOR_GROUP}.fake=1.0"
            )
        group_weights = (term_weights or {}).get(DISCRIMINATOR_GROUP)
        if isinstance(group_weights, Mapping):
            for term in group_weights:
                if term not in DISCRIMINATOR_TERMS:
                    raise ConfigError(
                        f"loss.weights.{DISCRIMINATOR_GROUP}.{term}: the discriminator has no loss term "
                        f"{term!r} (known: {', '.join(DISCRIMINATOR_TERMS)})"
                    )
        settings = _adversarial_settings(adversarial)
        generator_terms = [term for term in terms if term != DISCRIMINATOR_GROUP]
        numbers = {k: v for k, v in (term_weights or {}).items() if not isinstance(v, Mapping)}
        super().__init__(
            model,
            cache_dir,
            features,
            terms=generator_terms,
            frames=frames,
            history_frames=history_frames,
            stft=stft,
            power=power,
            modspec=modspec,
            example_seconds=example_seconds,
            stft_frame=stft_frame,
            output_rms=output_rms,
            grad_share_every=grad_share_every,
            term_weights=numbers,
        )
        try:
            self.discriminator = build_discriminators(
                settings["discriminators"], {kind: settings.get(kind) for kind in DISCRIMINATOR_KINDS}
            )
        except ValueError as exc:  # "<kind>: why" for a kind's settings, else about the list itself
            kind, _, why = str(exc).partition(": ")
            if kind in DISCRIMINATOR_KINDS and kind in settings and "listed twice" not in why:
                raise ConfigError(f"loss.adversarial.{kind}: {why}") from None
            raise ConfigError(f"loss.adversarial.discriminators: {exc}") from None
        self.adversarial_loss = AdversarialLoss(settings["objective"])
        self.objective = settings["objective"]
        self.start_step = settings["start_step"]
        self.every = settings["every"]
        self._fake: tuple[int, torch.Tensor] | None = None  # (step, the student's detached output)
        self._scores: dict[str, float] = {}

    def parameter_groups(self) -> list[ParameterGroup]:
        return [
            ParameterGroup(GENERATOR_GROUP, self.model),
            ParameterGroup(
                DISCRIMINATOR_GROUP, self.discriminator, start_step=self.start_step, every=self.every
            ),
        ]

    @staticmethod
    def _flat(outputs: dict[str, list[DiscriminatorOutput]]) -> list[DiscriminatorOutput]:
        return [output for kind in outputs.values() for output in kind]

    def group_step(self, group: str, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        if group == GENERATOR_GROUP:
            return self._generator_step(batch, step)
        if group == DISCRIMINATOR_GROUP:
            return self._discriminator_step(batch, step)
        raise ValueError(f"{type(self).__name__} has no parameter group {group!r}")

    def training_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """The student's terms (what the ``gen`` group is updated with)."""
        return self._generator_step(batch, step)

    def _generator_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        x, _, _ = self.student_sample(self.model, batch)
        span = self.scored
        fake = x[:, span].float()
        real = batch["audio"][:, span].float()
        terms = self.auxiliary_terms(fake, real)
        wanted = [term for term in GENERATOR_ADVERSARIAL_TERMS if term in self.terms]
        if wanted and step >= self.start_step:
            fake_outputs = self._flat(self.discriminator(fake))
            if "adv" in wanted:
                terms["adv"] = self.adversarial_loss.generator([output.score for output in fake_outputs])
            if "fm" in wanted:
                with torch.no_grad():
                    real_outputs = self._flat(self.discriminator(real))
                terms["fm"] = feature_matching_loss(
                    [output.features for output in real_outputs], [output.features for output in fake_outputs]
                )
        self._fake = (step, fake.detach())
        self._maybe_grad_shares(terms, step)
        return terms

    def _discriminator_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        span = self.scored
        real = batch["audio"][:, span].float()
        cached, self._fake = self._fake, None
        if cached is not None and cached[0] == step and cached[1].shape == real.shape:
            fake = cached[1]
        else:  # the student was not updated at this step: draw its output now
            with torch.no_grad():
                x, _, _ = self.student_sample(self.model, batch)
            fake = x[:, span].float()
        real_outputs = self.discriminator(real)
        fake_outputs = self.discriminator(fake)
        real_term, fake_term = self.adversarial_loss.discriminator(
            [output.score for output in self._flat(real_outputs)],
            [output.score for output in self._flat(fake_outputs)],
        )
        scores = {}
        for kind in real_outputs:
            for label, outputs in (("real", real_outputs[kind]), ("fake", fake_outputs[kind])):
                scores[f"score/{kind}/{label}"] = float(
                    torch.stack([output.score.detach().float().mean() for output in outputs]).mean()
                )
        self._scores = scores
        return {"real": real_term, "fake": fake_term}

    def after_optimizer_step(self, step: int) -> dict[str, float]:
        scalars = super().after_optimizer_step(step)
        scalars.update(self._scores)
        self._scores = {}
        return scalars
