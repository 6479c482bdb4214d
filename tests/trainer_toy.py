"""A small real training module for trainer tests (importable by subprocesses and torchrun)."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import torch
from torch import nn

from vocoder.layers import ParallelWaveGANDiscriminator
from vocoder.losses import AdversarialLoss, STFTLoss
from vocoder.training import (
    Example,
    GroupOptimizer,
    ParameterGroup,
    Trainer,
    TrainerSettings,
    TrainingModule,
)


class ToyDataset(torch.utils.data.Dataset):
    """Noisy sine segments; the crop seed picks the phase so resumption must restore the data order."""

    def __init__(self, size: int = 64, length: int = 32, offset: int = 0) -> None:
        self.size, self.length, self.offset = size, length, offset

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, key):
        index, crop_seed = key
        rng = np.random.default_rng(crop_seed + 7 * index + self.offset)
        t = np.arange(self.length) / 16.0
        x = np.sin(t * (1 + index % 5) + rng.uniform(0, 6.28)).astype(np.float32)
        return torch.from_numpy(x)


class ToyModule(TrainingModule):
    """Predicts the next sample of a sine from the previous 4 with a tiny MLP; noise via the global RNG."""

    def __init__(self, nan_after: int | None = None) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
        self.nan_after = nan_after

    def _losses(self, model, batch):
        inputs = batch.unfold(1, 4, 1)[:, :-1]
        target = batch[:, 4:]
        noisy = inputs + 0.01 * torch.randn_like(inputs)
        prediction = model(noisy).squeeze(-1)
        mse = (prediction - target).pow(2).mean()
        return {"mse": mse, "l1": (prediction - target).abs().mean()}

    def training_step(self, batch, step):
        losses = self._losses(self.model, batch)
        if self.nan_after is not None and step > self.nan_after:
            losses["mse"] = losses["mse"] * float("nan")
        return losses

    def validation_step(self, model, batch):
        return self._losses(model, batch)

    def train_dataset(self, split):
        return ToyDataset(offset=0 if split == "train" else 1000)

    def batch_num_samples(self, batch):
        return batch.numel()

    def synthesize_examples(self, model, count):
        t = np.arange(1600) / 16000
        wave = 0.5 * np.sin(2 * np.pi * 220 * t)
        return [Example(name=f"utt{i}", audio=wave * 0.9, reference=wave, sample_rate=16000) for i in range(count)]


def make_trainer(out_dir, max_steps, **overrides) -> Trainer:
    nan_after = overrides.pop("nan_after", None)
    values = dict(batch_size=4, log_every=2, valid_every=4, checkpoint_every=3, audio_every=4, keep_last=2,
                  progress="log")
    values.update(overrides)
    settings = TrainerSettings(out_dir=str(out_dir), max_steps=max_steps, **values)
    torch.manual_seed(settings.seed)  # as the CLI does: model initialization follows the run's seed
    module = ToyModule(nan_after=nan_after)
    return Trainer(
        module,
        lambda params: torch.optim.Adam(params, lr=1e-2, amsgrad=True),
        lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 / (1 + 1e-2 * s)),
        settings,
        loss_weights={"mse": 1.0, "l1": 0.5},
        config={"recipe": "toy", "trainer": {"max_steps": max_steps}},
    )


class SignDataset(torch.utils.data.Dataset):
    """Segments of i.i.d. random signs ±0.5 (white, like Gaussian noise of the same power, but bimodal)."""

    def __init__(self, size: int = 64, length: int = 256, offset: int = 0) -> None:
        self.size, self.length, self.offset = size, length, offset

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, key):
        index, crop_seed = key
        rng = np.random.default_rng(crop_seed + 7 * index + self.offset)
        return torch.from_numpy(0.5 * rng.choice([-1.0, 1.0], self.length).astype(np.float32))


class TanhGenerator(nn.Module):
    """``x = g · tanh(s · z)`` sample by sample: Gaussian-like for a small steepness ``s``, signs as s → ∞.

    Every (g, s) of the same power gives white noise of the same spectrum, so a spectral loss fixes
    the power and leaves the steepness where it is; only a discriminator sees the amplitude distribution.
    """

    def __init__(self) -> None:
        super().__init__()
        self.log_gain = nn.Parameter(torch.tensor(0.0))
        self.log_steepness = nn.Parameter(torch.tensor(math.log(0.3)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.log_gain.exp() * torch.tanh(self.log_steepness.exp() * z)


def abs_over_rms(x: torch.Tensor) -> float:
    """``E|x| / sqrt(E x²)``: 1 for random signs, sqrt(2/π) ≈ 0.80 for Gaussian noise."""
    x = x.double()
    return float(x.abs().mean() / x.square().mean().sqrt())


class ToyGANModule(TrainingModule):
    """A generator of white noise against Parallel WaveGAN's discriminator; spectral term ``spec``.

    Groups ``gen`` (the model; terms ``spec``, and ``adv`` from ``start_step``) and ``disc`` (terms
    ``real``, ``fake`` on the generator's detached output of the same step; from ``start_step``
    every ``every`` steps). ``nan_disc_after`` makes the discriminator's terms NaN after that step.
    The requires-grad flags each group's step saw are recorded in ``flags_seen``.
    """

    def __init__(self, start_step: int = 1, every: int = 1, nan_disc_after: int | None = None) -> None:
        super().__init__()
        self.model = TanhGenerator()
        self.discriminator = ParallelWaveGANDiscriminator(layers=3, channels=16)
        self.spectral = STFTLoss(resolutions=[[32, 8, 32], [16, 4, 16]])
        self.adversarial = AdversarialLoss("lsgan")
        self.start_step, self.every, self.nan_disc_after = start_step, every, nan_disc_after
        self._fake: torch.Tensor | None = None
        self._scores: dict[str, float] = {}
        self.flags_seen: dict[str, set[tuple[bool, bool]]] = {"gen": set(), "disc": set()}

    def parameter_groups(self):
        return [ParameterGroup("gen", self.model),
                ParameterGroup("disc", self.discriminator, start_step=self.start_step, every=self.every)]

    def _record_flags(self, group: str) -> None:
        model = all(p.requires_grad for p in self.model.parameters())
        disc = all(p.requires_grad for p in self.discriminator.parameters())
        self.flags_seen[group].add((model, disc))

    def group_step(self, group, batch, step):
        self._record_flags(group)
        if group == "gen":
            fake = self.model(torch.randn_like(batch))  # global RNG: a resume must restore it
            convergence, log_magnitude = self.spectral(fake, batch)
            terms = {"spec": convergence + log_magnitude}
            if step >= self.start_step:
                terms["adv"] = self.adversarial.generator([out.score for out in self.discriminator(fake)])
            self._fake = fake.detach()
            return terms
        real = self.discriminator(batch)
        fake = self.discriminator(self._fake)
        real_term, fake_term = self.adversarial.discriminator([o.score for o in real],
                                                              [o.score for o in fake])
        if self.nan_disc_after is not None and step > self.nan_disc_after:
            real_term = real_term * float("nan")
        self._scores = {"score/real": float(real[0].score.detach().mean()),
                        "score/fake": float(fake[0].score.detach().mean())}
        return {"real": real_term, "fake": fake_term}

    def training_step(self, batch, step):
        return self.group_step("gen", batch, step)

    def validation_step(self, model, batch):
        convergence, log_magnitude = self.spectral(model(torch.randn_like(batch)), batch)
        return {"spec": convergence + log_magnitude}

    def after_optimizer_step(self, step):
        scores, self._scores = self._scores, {}
        return scores

    def train_dataset(self, split):
        return SignDataset(offset=0 if split == "train" else 1000)

    def batch_num_samples(self, batch):
        return batch.numel()


GAN_WEIGHTS = {"spec": 1.0, "adv": 1.0, "disc": {"real": 1.0, "fake": 1.0}}


def make_gan_trainer(out_dir, max_steps, **overrides) -> Trainer:
    """A :class:`ToyGANModule` trainer: Adam per group, a decaying schedule on each, the disc clipped at 5."""
    module_keys = ("start_step", "every", "nan_disc_after")
    module_options = {key: overrides.pop(key) for key in module_keys if key in overrides}
    weights = overrides.pop("loss_weights", GAN_WEIGHTS)
    values = dict(batch_size=8, log_every=2, valid_every=4, checkpoint_every=3, audio_every=0, keep_last=2,
                  progress="log", ema_decay=0.9, log=None)
    values.update(overrides)
    log = values.pop("log") or (lambda _line: None)
    settings = TrainerSettings(out_dir=str(out_dir), max_steps=max_steps, **values)
    torch.manual_seed(settings.seed)
    module = ToyGANModule(**module_options)
    return Trainer(
        module,
        lambda params: torch.optim.Adam(params, lr=2e-2, betas=(0.5, 0.9)),
        lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 / (1 + 1e-3 * s)),
        settings,
        loss_weights=weights,
        config={"recipe": "toy_gan", "trainer": {"max_steps": max_steps}},
        log=log,
        group_optimizers={"disc": GroupOptimizer(
            lambda params: torch.optim.Adam(params, lr=1e-2, betas=(0.5, 0.9)),
            lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 / (1 + 2e-3 * s)),
            grad_clip=5.0,
        )},
    )


if __name__ == "__main__":  # python tests/trainer_toy.py OUT_DIR MAX_STEPS [json overrides, "gan": true]
    torch.set_num_threads(1)
    overrides = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    factory = make_gan_trainer if overrides.pop("gan", False) else make_trainer
    trainer = factory(sys.argv[1], int(sys.argv[2]), **overrides)
    trainer.fit()
    print(json.dumps({"step": trainer.step, "rank": trainer.dist.rank,
                      "params": [p.detach().double().sum().item() for p in trainer.module.parameters()]}))
