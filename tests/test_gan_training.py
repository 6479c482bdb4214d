"""Generator/discriminator training in the one trainer: parameter groups, resume, kills, NaN guard, logs.

The toy module (``tests/trainer_toy.py``) generates white noise ``g · tanh(s · z)`` against Parallel
WaveGAN's discriminator, the data being random signs: a spectral loss fixes the power and is blind to
the amplitude distribution, which only the discriminator sees.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.trainer_toy import GAN_WEIGHTS, abs_over_rms, make_gan_trainer, make_trainer
from vocoder.checkpoints import CheckpointError, export_weights, load_checkpoint, load_weights
from vocoder.errors import ConfigError
from vocoder.training import ParameterGroup, TrainingError

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _everything(trainer) -> dict:
    """Every trained state of a GAN run: weights, EMA, discriminator, both optimizers and schedules."""
    disc = trainer.groups[1]
    return {
        "model": trainer.module.model.state_dict(),
        "ema": trainer.ema.state_dict(),
        "disc": trainer.module.discriminator.state_dict(),
        "gen_optimizer": trainer.optimizer.state_dict(),
        "disc_optimizer": disc.optimizer.state_dict(),
        "gen_scheduler": trainer.scheduler.state_dict(),
        "disc_scheduler": disc.scheduler.state_dict(),
    }


def _assert_equal(a, b, where: str = "") -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_equal(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_equal(x, y, f"{where}[{index}]")
    elif torch.is_tensor(a):
        assert torch.equal(a, b), where
    else:
        assert a == b, where


def _adam_steps(optimizer_state: dict) -> set[int]:
    return {int(state["step"]) for state in optimizer_state["state"].values()}


# ------------------------------------------------------------------------------------------ resume
def test_gan_resume_is_bit_identical(tmp_path):
    # one process, one thread: both runs take the same vector paths (see test_resume_is_bit_identical)
    straight = make_gan_trainer(tmp_path / "straight", max_steps=10)
    straight.fit()
    make_gan_trainer(tmp_path / "resumed", max_steps=5).fit()
    torch.manual_seed(999)  # the resumed run must not depend on the RNG state it starts with
    second = make_gan_trainer(tmp_path / "resumed", max_steps=10)
    second.fit()
    assert second.step == 10
    _assert_equal(_everything(straight), _everything(second))
    # both optimizers ran all ten updates, and the weights moved
    assert _adam_steps(second.optimizer.state_dict()) == {10}
    assert _adam_steps(second.groups[1].optimizer.state_dict()) == {10}
    fresh = make_gan_trainer(tmp_path / "fresh", max_steps=0)
    fresh._setup()
    for name in ("model", "disc"):
        before = next(iter(_everything(fresh)[name].values()))
        assert not torch.equal(before, next(iter(_everything(straight)[name].values()))), name


def test_killed_gan_run_resumes_from_its_last_checkpoint_with_both_optimizers(tmp_path):
    straight = make_gan_trainer(tmp_path / "straight", max_steps=10)
    straight.fit()
    killed = make_gan_trainer(tmp_path / "run", max_steps=10)
    step_of_module = killed.module.group_step

    def die_at_step_8(group, batch, step):  # a crash in the middle of step 8, after the generator's update
        if step == 8 and group == "disc":
            raise KeyboardInterrupt("killed")
        return step_of_module(group, batch, step)

    killed.module.group_step = die_at_step_8
    with pytest.raises(KeyboardInterrupt):
        killed.fit()
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["step"] == 6  # checkpoint_every=3: nothing of steps 7 and 8 was saved
    assert _adam_steps(state["optimizer"]) == _adam_steps(state["groups"]["disc"]["optimizer"]) == {6}
    lines = []
    resumed = make_gan_trainer(tmp_path / "run", max_steps=10, log=lines.append)
    resumed.fit()
    assert any("resumed from" in line and "at step 6" in line for line in lines)
    _assert_equal(_everything(straight), _everything(resumed))


def test_sigterm_stops_a_gan_run_with_both_optimizers_saved_and_it_resumes_exactly(tmp_path):
    straight = make_gan_trainer(tmp_path / "straight", max_steps=10, checkpoint_every=100)
    straight.fit()
    lines = []
    stopped = make_gan_trainer(tmp_path / "run", max_steps=10, checkpoint_every=100, log=lines.append)
    step_of_module = stopped.module.group_step

    def terminated_at_step_5(group, batch, step):  # SIGTERM arrives in the generator's update of step 5
        if step == 5 and group == "gen":
            os.kill(os.getpid(), signal.SIGTERM)
        return step_of_module(group, batch, step)

    stopped.module.group_step = terminated_at_step_5
    stopped.fit()  # returns: the signal asks for a checkpoint at the end of the step
    assert any("received SIGTERM" in line for line in lines) and stopped.step == 5
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["step"] == 5
    assert _adam_steps(state["optimizer"]) == _adam_steps(state["groups"]["disc"]["optimizer"]) == {5}
    resumed = make_gan_trainer(tmp_path / "run", max_steps=10, checkpoint_every=100)
    resumed.fit()
    _assert_equal(_everything(straight), _everything(resumed))


# ------------------------------------------------------------------------------------------ update rules
def test_groups_update_in_turn_and_leave_each_other_without_gradients(tmp_path):
    trainer = make_gan_trainer(tmp_path, max_steps=3, valid_every=0)
    trainer.fit()
    # while the generator is updated the discriminator needs no gradients, and the other way round
    assert trainer.module.flags_seen == {"gen": {(True, False)}, "disc": {(False, True)}}
    assert all(p.requires_grad for p in trainer.module.parameters())
    # the EMA follows the generator only
    assert set(trainer.ema.state_dict()) == set(trainer.module.model.state_dict())


def test_discriminator_starts_at_its_step_and_updates_every_other_step(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer = make_gan_trainer(tmp_path, max_steps=8, start_step=3, every=2, log_every=1, valid_every=0)
    trainer.fit()
    disc = trainer.groups[1]
    assert _adam_steps(disc.optimizer.state_dict()) == {3}  # steps 3, 5, 7
    assert disc.scheduler.last_epoch == 3  # a group's schedule steps with its updates
    assert _adam_steps(trainer.optimizer.state_dict()) == {8}
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    assert [event.step for event in acc.Scalars("loss/disc/real")] == [3, 5, 7]
    assert [event.step for event in acc.Scalars("loss/gen/adv")] == [3, 4, 5, 6, 7, 8]  # from start_step
    assert [event.step for event in acc.Scalars("loss/gen/spec")] == list(range(1, 9))


def test_tensorboard_tags_of_both_sides(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    make_gan_trainer(tmp_path, max_steps=4).fit()
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    expected = {
        "loss/gen/spec", "loss/gen/adv", "loss/gen/total",
        "loss/disc/real", "loss/disc/fake", "loss/disc/total",
        "grad_norm/gen", "grad_norm/disc", "lr/gen", "lr/disc", "skipped_steps", "skipped_steps/disc",
        "score/real", "score/fake", "samples_per_s", "valid/spec", "valid/total",
    }
    assert expected <= tags, expected - tags
    real = acc.Scalars("loss/disc/real")[-1].value
    fake = acc.Scalars("loss/disc/fake")[-1].value
    total = acc.Scalars("loss/disc/total")[-1].value
    assert total == pytest.approx(real + fake, rel=1e-6)
    assert acc.Scalars("lr/disc")[-1].value == pytest.approx(1e-2 / (1 + 2e-3 * 4), rel=1e-6)


def test_nan_guard_is_per_group(tmp_path):
    trainer = make_gan_trainer(tmp_path, max_steps=50, nan_disc_after=4, max_bad_steps=3, valid_every=0)
    message = "3 consecutive non-finite losses/gradients of parameter group disc at step 7"
    with pytest.raises(TrainingError, match=message) as info:
        trainer.fit()
    assert "\n" not in str(info.value)
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["step"] == 7 and state["skipped_total"] == 3
    assert state["groups"]["disc"]["skipped"] == 3 and state["groups"]["gen"]["skipped"] == 0
    # the generator went on, the discriminator kept its last good weights (those of step 4)
    assert _adam_steps(state["optimizer"]) == {7}
    assert _adam_steps(state["groups"]["disc"]["optimizer"]) == {4}
    good = make_gan_trainer(tmp_path / "good", max_steps=4, valid_every=0)
    good.fit()
    _assert_equal(state["networks"]["disc"], good.module.discriminator.state_dict())


# ------------------------------------------------------------------------------------------ the game works
def _amplitude_statistic(trainer) -> float:
    torch.manual_seed(5)
    with torch.no_grad():
        return abs_over_rms(trainer.ema.model(torch.randn(64, 1024)))


def test_adversarial_training_reaches_what_the_spectral_loss_alone_does_not(tmp_path):
    """Random signs vs white noise: same spectrum, E|x|/rms 1 vs 0.80; only the discriminator tells."""
    common = dict(log_every=50, valid_every=0, checkpoint_every=1000, resume="never")
    spectral = make_gan_trainer(tmp_path / "spectral", 200, start_step=10**9, **common)  # never adversarial
    spectral.fit()
    adversarial = make_gan_trainer(tmp_path / "adversarial", 200, **common)
    adversarial.fit()
    start = abs_over_rms(make_gan_trainer(tmp_path / "start", 0).module.model(torch.randn(64, 1024)).detach())
    spectral_only, with_disc = _amplitude_statistic(spectral), _amplitude_statistic(adversarial)
    # both found the power of the data (rms 0.5): the spectral loss did its part
    for trainer in (spectral, adversarial):
        with torch.no_grad():
            rms = float(trainer.ema.model(torch.randn(64, 1024)).square().mean().sqrt())
        assert 0.4 < rms < 0.6
    assert abs(spectral_only - start) < 0.05 and spectral_only < 0.87  # still Gaussian-like
    assert with_disc > 0.9 and with_disc > spectral_only + 0.06  # towards the signs' 1.0
    assert _adam_steps(spectral.groups[1].optimizer.state_dict()) == set()  # its disc never moved


# ------------------------------------------------------------------------------------------ one optimizer
def test_one_optimizer_checkpoint_keeps_its_format(tmp_path):
    trainer = make_trainer(tmp_path, max_steps=3)
    trainer.fit()
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert set(state) == {"format", "model", "ema", "optimizer", "scheduler", "step", "items_consumed",
                          "best_valid", "skipped_total", "rng", "module", "settings", "config"}
    assert len(trainer.groups) == 1 and trainer.groups[0].name is None


def test_resuming_across_one_optimizer_and_gan_runs_is_refused_in_one_line(tmp_path):
    make_trainer(tmp_path / "plain", max_steps=3).fit()
    gan = make_gan_trainer(tmp_path / "gan", max_steps=5, resume=str(tmp_path / "plain/checkpoints/last.pt"))
    message = ("was trained with one optimizer, this run trains parameter groups gen, disc; "
               "use trainer.resume=never")
    with pytest.raises(CheckpointError, match=message) as info:
        gan.fit()
    assert "\n" not in str(info.value)
    make_gan_trainer(tmp_path / "gan2", max_steps=3).fit()
    plain = make_trainer(tmp_path / "plain2", max_steps=5, resume=str(tmp_path / "gan2/checkpoints/last.pt"))
    with pytest.raises(CheckpointError, match="parameter groups gen, disc, this run trains one optimizer"):
        plain.fit()


@pytest.mark.parametrize(
    "weights,group_options,message",
    [
        ({"spec": 1.0, "adv": 1.0, "disc": {"real": 1.0}}, None,
         "loss.weights.disc has no weight for the loss term\\(s\\) fake; add e.g. "
         "loss.weights.disc.fake=1.0"),
        ({**GAN_WEIGHTS, "critic": {"real": 1.0}}, None, "loss.weights.critic: not a parameter group"),
        (GAN_WEIGHTS, {"critic": None}, "optim.groups.critic: ToyGANModule has no parameter group critic "
                                        "\\(groups: gen, disc\\)"),
    ],
)
def test_group_configuration_errors_are_one_line(tmp_path, weights, group_options, message):
    trainer = make_gan_trainer(tmp_path, max_steps=2, loss_weights=weights)
    if group_options:
        trainer.group_optimizers.update(group_options)
    with pytest.raises((ConfigError, TrainingError), match=message) as info:
        trainer.fit()
    assert "\n" not in str(info.value)


def test_group_weights_for_a_one_optimizer_module_are_refused(tmp_path):
    trainer = make_trainer(tmp_path, max_steps=2)
    trainer.loss_weights["disc"] = {"real": 1.0}
    message = "loss.weights.disc: weights of a parameter group, but ToyModule trains one optimizer"
    with pytest.raises(ConfigError, match=message):
        trainer.fit()


def test_parameter_group_settings_are_checked():
    with pytest.raises(ValueError, match="start_step must be >= 1"):
        ParameterGroup("disc", torch.nn.Linear(1, 1), start_step=0)
    with pytest.raises(ValueError, match="every must be >= 1"):
        ParameterGroup("disc", torch.nn.Linear(1, 1), every=0)
    group = ParameterGroup("disc", torch.nn.Linear(1, 1), start_step=3, every=2)
    assert [step for step in range(1, 10) if group.due(step)] == [3, 5, 7, 9]


# ------------------------------------------------------------------------------------------ weights
def test_discriminator_weights_are_exported_and_restored_by_init_from(tmp_path):
    make_gan_trainer(tmp_path / "source", max_steps=4).fit()
    checkpoint = tmp_path / "source" / "checkpoints" / "last.pt"
    exported = export_weights(checkpoint, tmp_path / "toy.pt")
    raw = torch.load(exported, weights_only=True)
    trained = load_checkpoint(checkpoint)["networks"]["disc"]
    assert set(raw["networks"]) == {"disc"} and raw["networks"]["disc"].keys() == trained.keys()
    for name, value in raw["networks"]["disc"].items():
        assert value.dtype == torch.float16
        torch.testing.assert_close(value.float(), trained[name], rtol=1e-3, atol=1e-4)
    assert load_weights(exported)["networks"]["disc"].keys() == trained.keys()
    for source in (checkpoint, exported):
        lines = []
        warm = make_gan_trainer(tmp_path / f"warm_{source.stem}", max_steps=0, init_from=str(source),
                                log=lines.append)
        warm._setup()
        warm._release_out_dir()
        for name, value in warm.module.discriminator.state_dict().items():
            torch.testing.assert_close(value, trained[name].to(value.dtype), rtol=1e-3, atol=1e-4)
        assert not warm.groups[1].optimizer.state_dict()["state"]  # a fresh optimizer
        assert any("parameter group(s) disc initialized from" in line for line in lines)
    # a file without a discriminator: the generator is warm, the discriminator starts from scratch
    make_trainer(tmp_path / "plain", max_steps=1).fit()
    plain_export = export_weights(tmp_path / "plain" / "checkpoints" / "last.pt", tmp_path / "plain.pt")
    assert "networks" not in torch.load(plain_export, weights_only=True)


def test_init_from_a_file_without_discriminator_says_it_starts_fresh(tmp_path):
    make_gan_trainer(tmp_path / "source", max_steps=2).fit()
    state = load_checkpoint(tmp_path / "source" / "checkpoints" / "last.pt")
    state.pop("networks")
    torch.save(state, tmp_path / "generator_only.pt")
    lines = []
    warm = make_gan_trainer(tmp_path / "warm", max_steps=0, init_from=str(tmp_path / "generator_only.pt"),
                            log=lines.append)
    warm._setup()
    warm._release_out_dir()
    assert any("parameter group(s) disc start from scratch" in line for line in lines)
    _assert_equal(warm.module.model.state_dict(), state["model"])


def test_init_from_discriminator_of_another_shape_is_one_line(tmp_path):
    make_gan_trainer(tmp_path / "source", max_steps=2).fit()
    state = load_checkpoint(tmp_path / "source" / "checkpoints" / "last.pt")
    first = next(iter(state["networks"]["disc"]))
    state["networks"]["disc"][first] = torch.zeros(3)
    torch.save(state, tmp_path / "other.pt")
    warm = make_gan_trainer(tmp_path / "warm", max_steps=0, init_from=str(tmp_path / "other.pt"))
    message = f"its disc weights do not fit this run's \\(shape differs: {first}"
    with pytest.raises(CheckpointError, match=message):
        warm.fit()


# ------------------------------------------------------------------------------------------ DDP
@pytest.mark.slow
def test_torchrun_two_ranks_keep_generator_and_discriminator_identical(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    toy = [str(REPO / "tests" / "trainer_toy.py"), str(tmp_path / "ddp"), "6", json.dumps({"gan": True})]
    proc = subprocess.run(torchrun + toy, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[:3000] + "\n[...]\n" + proc.stderr[-1500:]
    decoder = json.JSONDecoder()
    starts = [m.start() for m in re.finditer(r'\{"step"', proc.stdout)]
    results = [decoder.raw_decode(proc.stdout, start)[0] for start in starts]
    assert sorted(r["rank"] for r in results) == [0, 1]
    # each rank draws its own noise and data: equal weights mean both groups' gradients were averaged
    assert results[0]["params"] == results[1]["params"]
    state = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.pt")
    assert _adam_steps(state["groups"]["disc"]["optimizer"]) == {6}


def test_groups_without_a_group_step_are_refused_before_any_work(tmp_path, monkeypatch):
    """A module that declares parameter groups must say what each is updated on."""
    import trainer_toy

    from vocoder.training import TrainingModule

    monkeypatch.setattr(trainer_toy.ToyGANModule, "group_step", TrainingModule.group_step)
    with pytest.raises(TypeError, match=r"ToyGANModule declares parameter groups \(gen, disc\) but does not "
                                        r"define group_step"):
        trainer_toy.make_gan_trainer(tmp_path / "run", max_steps=2).fit()
    assert not (tmp_path / "run" / "checkpoints").exists()
