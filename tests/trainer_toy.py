"""A small real training module for trainer tests (importable by subprocesses and torchrun)."""

from __future__ import annotations

import json
import sys

import numpy as np
import torch
from torch import nn

from vocoder.training import Example, Trainer, TrainerSettings, TrainingModule


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


if __name__ == "__main__":  # python tests/trainer_toy.py OUT_DIR MAX_STEPS [json overrides]
    torch.set_num_threads(1)
    overrides = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    trainer = make_trainer(sys.argv[1], int(sys.argv[2]), **overrides)
    trainer.fit()
    print(json.dumps({"step": trainer.step, "rank": trainer.dist.rank,
                      "params": [p.detach().double().sum().item() for p in trainer.module.model.parameters()]}))
