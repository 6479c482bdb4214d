"""FrozenModule: a pretrained network inside a loss that training cannot change, and the trainer's guard.

The seed's scenario: a "frozen" encoder inside a feature loss. Registered naively (``eval()`` and a
plain submodule) its weights change with the first optimizer step; held in a FrozenModule they stay
bit-identical, get no ``.grad``, stay out of parameters/state_dict/checkpoints and in eval mode, while
gradients still reach the encoder's input.
"""

import copy

import pytest
import torch
from torch import nn

from vocoder.checkpoints import load_checkpoint
from vocoder.training import (
    FeatureConsistencyLoss,
    FrozenModule,
    Trainer,
    TrainerSettings,
    TrainingError,
    TrainingModule,
    is_frozen,
    mark_frozen,
)


def make_encoder() -> nn.Module:
    """A 'pretrained' encoder with dropout, so that its mode matters."""
    torch.manual_seed(5)
    encoder = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Tanh(), nn.Linear(8, 3))
    encoder.out_features = 3
    return encoder


class Generator(nn.Module):
    """The trained network; it holds the loss's encoder as an attribute (the seed's layout)."""

    def __init__(self, encoder: nn.Module, frozen: bool) -> None:
        super().__init__()
        self.net = nn.Linear(4, 4)
        if frozen:
            self.encoder = FrozenModule(encoder)
        else:  # the bug: eval() only, registered as a submodule
            self.encoder = encoder.eval()

    def forward(self, x):
        return self.net(x)


class Dataset(torch.utils.data.Dataset):
    def __len__(self):
        return 16

    def __getitem__(self, key):
        index, _ = key
        return torch.randn(4, generator=torch.Generator().manual_seed(index))


class FeatureLossTask(TrainingModule):
    """Generated vs natural through the encoder (a feature-consistency loss)."""

    def __init__(self, encoder: nn.Module, frozen: bool) -> None:
        super().__init__()
        self.model = Generator(encoder, frozen)

    def _losses(self, model, batch):
        generated = model(batch)
        return {"feature": (model.encoder(generated) - model.encoder(batch).detach()).abs().mean()}

    def training_step(self, batch, step):
        return self._losses(self.model, batch)

    def validation_step(self, model, batch):
        return self._losses(model, batch)

    def train_dataset(self, split):
        return Dataset()


def make_trainer(tmp_path, task: TrainingModule, max_steps: int = 4) -> Trainer:
    settings = TrainerSettings(out_dir=str(tmp_path), max_steps=max_steps, batch_size=4, log_every=2,
                               valid_every=0, checkpoint_every=100, audio_every=0, progress="log")
    return Trainer(task, lambda params: torch.optim.Adam(params, lr=1e-2), None, settings,
                   loss_weights={"feature": 1.0}, log=lambda _: None)


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


def test_frozen_encoder_is_bit_identical_after_training(tmp_path):
    encoder = make_encoder()
    before = snapshot(encoder)
    task = FeatureLossTask(encoder, frozen=True)
    trained_before = snapshot(task.model.net)
    trainer = make_trainer(tmp_path, task)
    trainer.fit()
    for name, value in encoder.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert all(p.grad is None for p in encoder.parameters())
    assert any(not torch.equal(v, trained_before[k]) for k, v in task.model.net.state_dict().items())
    # not the owner's: parameters, state_dict, optimizer, checkpoint, EMA averaging
    frozen_ids = {id(p) for p in encoder.parameters()}
    assert not frozen_ids & {id(p) for p in task.parameters()}
    assert not any(key.startswith("encoder") for key in task.model.state_dict())
    assert not frozen_ids & {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    checkpoint = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert sorted(checkpoint["model"]) == sorted(checkpoint["ema"]) == ["net.bias", "net.weight"]
    assert all(is_frozen(p) and not p.requires_grad for p in encoder.parameters())


def test_gradients_reach_the_input_only_and_mode_stays_eval():
    encoder = make_encoder()
    owner = Generator(encoder, frozen=True)
    owner.train()
    assert owner.training and owner.net.training and not encoder.training and not owner.encoder.training
    x = torch.randn(5, 4, requires_grad=True)
    first, second = owner.encoder(x), owner.encoder(x)
    torch.testing.assert_close(first, second)  # dropout off: eval mode
    first.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in encoder.parameters())
    # moves with its owner; the EMA's deep copy shares the (unchangeable) network
    owner.double()
    assert encoder[0].weight.dtype == torch.float64 and is_frozen(encoder[0].weight)
    assert copy.deepcopy(owner).encoder.module is encoder
    assert owner.encoder.module is encoder and owner.encoder.out_features == 3  # attributes pass through


def test_naive_registration_changes_the_encoder_and_the_guard_stops_it(tmp_path):
    encoder = make_encoder()
    before = snapshot(encoder)
    task = FeatureLossTask(encoder, frozen=False)
    optimizer = torch.optim.Adam(task.model.parameters(), lr=1e-2)
    for step in range(2):  # the seed's bug: eval() neither stops gradients nor keeps it out of the optimizer
        loss = task.training_step(torch.randn(4, 4), step)["feature"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert any(not torch.equal(v, before[k]) for k, v in encoder.state_dict().items())
    assert encoder[0].weight.grad is not None
    assert any(key.startswith("encoder.") for key in task.model.state_dict())  # it would be checkpointed

    # declared frozen but still registered naively: the trainer refuses to start, in one line
    naive = FeatureLossTask(mark_frozen(make_encoder()), frozen=False)
    with pytest.raises(TrainingError, match="marked frozen") as error:
        make_trainer(tmp_path / "naive", naive).fit()
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("distance", ["l1", "mse", "cosine"])
def test_feature_consistency_loss(distance):
    encoder = make_encoder()
    loss = FeatureConsistencyLoss(encoder, distance=distance)
    natural = torch.randn(2, 6, 4)
    assert float(loss(natural, natural)) == pytest.approx(0.0, abs=1e-6)
    generated = natural.clone().requires_grad_(True)
    with torch.no_grad():
        generated[0, 4:] += 3.0  # differs only in frames past sequence 0's length
    lengths = torch.tensor([4, 6])
    assert float(loss(generated, natural, lengths).detach()) == pytest.approx(0.0, abs=1e-6)
    value = loss(generated, natural)
    assert value > 0
    value.backward()
    assert generated.grad.abs().sum() > 0 and all(p.grad is None for p in encoder.parameters())
    assert list(loss.parameters()) == [] and list(loss.state_dict()) == []
