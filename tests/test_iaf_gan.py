"""The IAF student against discriminators: the slt_iaf_gan recipe, its groups and terms, a smoke run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from vocoder.checkpoints import load_checkpoint
from vocoder.config import (
    CONFIG_DIR,
    build_trainer,
    group_optim_sections,
    register_resolvers,
    validate_train_config,
    without_keys,
)
from vocoder.data import FeatureSettings, prepare_corpus
from vocoder.errors import ConfigError
from vocoder.layers import (
    MultiPeriodDiscriminator,
    MultiResolutionSTFTDiscriminator,
    ParallelWaveGANDiscriminator,
)
from vocoder.training import IAFGANTask

SAMPLE_ROOT = Path(__file__).resolve().parents[1] / "vocoder" / "data" / "sample" / "kathleen"
FEATURES = FeatureSettings()
STUDENT = {
    "_target_": "vocoder.models.IAFStudent",
    "flow_layers": [2, 2],
    "dilation_cycle": 2,
    "residual_channels": 8,
    "gate_channels": 16,
}
TINY_ADVERSARIAL = {"discriminators": ["mrstft"], "mrstft": {"resolutions": [[256, 64, 128]], "channels": 4}}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    cache_dir = tmp_path_factory.mktemp("cache")
    prepare_corpus(SAMPLE_ROOT, cache_dir, FEATURES, n_eval=1, n_dev=1, num_workers=0, limit=6,
                   progress=False)
    return cache_dir


def _compose(*overrides: str):
    register_resolvers()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        return compose(config_name="train", overrides=list(overrides))


def _task(cache: Path, **kwargs) -> IAFGANTask:
    options = dict(terms=["mel_l1", "stft_sc", "adv", "fm", "disc"], adversarial=TINY_ADVERSARIAL, frames=8,
                   stft={"resolutions": [[256, 64, 128]]})
    options.update(kwargs)
    torch.manual_seed(0)
    return IAFGANTask(instantiate(STUDENT, _convert_="all"), str(cache), FEATURES, **options)


def _batch(task, count: int = 2) -> dict[str, torch.Tensor]:
    dataset = task.train_dataset("train")
    return task.collate([dataset[(i % len(dataset), i)] for i in range(count)])


def test_recipe_builds_the_gan_task_with_its_groups_and_optimizers(cache):
    cfg = _compose("recipe=slt_iaf_gan")
    validate_train_config(cfg)
    factory = instantiate(without_keys(cfg.loss, "weights"), _partial_=True, _convert_="all")
    task = factory(model=instantiate(cfg.model, _convert_="all"), cache_dir=str(cache), features=FEATURES)
    assert isinstance(task, IAFGANTask) and task.terms == ("mel_l1", "stft_sc", "stft_mag", "adv", "fm")
    groups = task.parameter_groups()
    assert [g.name for g in groups] == ["gen", "disc"] and groups[0].network is task.model
    assert groups[1].network is task.discriminator and (groups[1].start_step, groups[1].every) == (1, 1)
    (mrstft,) = task.discriminator.kinds.values()
    assert isinstance(mrstft, MultiResolutionSTFTDiscriminator) and len(mrstft.discriminators) == 3
    assert mrstft.discriminators[0].output.in_channels == 16  # the recipe's CPU-sized discriminator
    assert task.objective == "lsgan" and dict(cfg.loss.weights.disc) == {"real": 1.0, "fake": 1.0}
    # the discriminator's optimizer: the recipe's Adam (betas 0.8 / 0.99) with its own lr and clipping
    optimizer, scheduler, grad_clip = group_optim_sections(cfg.optim)["disc"]
    assert optimizer == {"_target_": "torch.optim.Adam", "lr": 2e-4, "betas": [0.8, 0.99], "eps": 1e-8,
                         "weight_decay": 0.0, "amsgrad": False}
    assert scheduler["_target_"] == "vocoder.training.InverseDecayLR" and scheduler["decay"] == 1e-4
    assert grad_clip == 10.0
    # every discriminator kind by config
    cfg = _compose("recipe=slt_iaf_gan", "loss.adversarial.discriminators=[mrstft,mpd,pwg]",
                   "loss.adversarial.objective=hinge", "loss.adversarial.start_step=100")
    task = instantiate(without_keys(cfg.loss, "weights"), _partial_=True, _convert_="all")(
        model=instantiate(cfg.model, _convert_="all"), cache_dir=str(cache), features=FEATURES)
    kinds = [type(d) for d in task.discriminator.kinds.values()]
    assert kinds == [MultiResolutionSTFTDiscriminator, MultiPeriodDiscriminator, ParallelWaveGANDiscriminator]
    assert task.objective == "hinge" and task.parameter_groups()[1].start_step == 100


@pytest.mark.parametrize(
    "override,message",
    [
        ("optim.groups.disc.lr=fast", "optim.groups.disc.lr: expected float or Tensor, got 'fast'"),
        ("optim.groups.disc.grad_clip=-1", "optim.groups.disc.grad_clip: expected a finite number >= 0"),
        ("loss.weights.disc.real=-1", "loss.weights.disc.real: expected a finite number >= 0, got -1"),
        ("+optim.groups.disc.scheduler.decay=oops", "optim.groups.disc.scheduler.decay: expected float"),
    ],
)
def test_group_settings_are_checked_before_any_work(override, message):
    cfg = _compose("recipe=slt_iaf_gan", override)
    with pytest.raises(ConfigError, match=message) as info:
        validate_train_config(cfg)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "override,message",
    [
        ("+optim.groups.critic.lr=1e-3", "optim.groups.critic: IAFGANTask has no parameter group critic "
                                         "\\(groups: gen, disc\\)"),
        ("optim.groups.disc.lr=-1", "optim.groups.disc.lr=-1: Invalid learning rate"),
    ],
)
def test_group_optimizers_are_built_on_the_groups_in_the_dry_run(override, message):
    # without loss.output_rms=data the training module needs no data: the dry run builds it and its groups
    cfg = _compose("recipe=slt_iaf_gan", "loss.output_rms=null", override)
    with pytest.raises(ConfigError, match=message) as info:
        validate_train_config(cfg)
    assert "\n" not in str(info.value)


def test_group_section_replaces_the_optimizer_when_it_names_one():
    cfg = _compose("recipe=slt_iaf_gan", "+optim.groups.disc._target_=torch.optim.SGD",
                   "+optim.groups.disc.scheduler=null")
    optimizer, scheduler, _ = group_optim_sections(cfg.optim)["disc"]
    assert optimizer == {"_target_": "torch.optim.SGD", "lr": 2e-4} and scheduler is None


def test_generator_and_discriminator_steps_and_their_gradients(cache):
    task = _task(cache, adversarial={**TINY_ADVERSARIAL, "start_step": 3})
    batch = _batch(task)
    student = list(task.model.parameters())
    disc = list(task.discriminator.parameters())
    # before start_step: the spectral terms only
    assert set(task.group_step("gen", batch, 2)) == {"mel_l1", "stft_sc"}
    terms = task.group_step("gen", batch, 3)
    assert set(terms) == {"mel_l1", "stft_sc", "adv", "fm"}
    for name in ("adv", "fm"):  # the adversarial terms train the student through the discriminator
        grads = torch.autograd.grad(terms[name], student, retain_graph=True, allow_unused=True)
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert sum(g.abs().sum() for g in grads) > 0
    terms = task.group_step("disc", batch, 3)
    assert set(terms) == {"real", "fake"}
    total = terms["real"] + terms["fake"]
    grads = torch.autograd.grad(total, disc, retain_graph=True)
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    # the discriminator scores the student's output of the same step, detached
    assert all(g is None for g in torch.autograd.grad(total, student, allow_unused=True))
    scalars = task.after_optimizer_step(3)
    assert set(scalars) == {"score/mrstft/real", "score/mrstft/fake"}
    # a discriminator step without this step's generator output draws one itself
    assert set(task.group_step("disc", batch, 4)) == {"real", "fake"}
    # validation: the spectral terms, with the EMA weights
    assert set(task.validation_step(task.model, batch)) == {"mel_l1", "stft_sc"}


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"terms": ["mel_l1", "adv"]}, "^loss.weights.disc: missing; weigh the discriminator's terms"),
        ({"terms": ["mel_l1", "gan", "disc"]}, "^loss.weights.gan: IAFGANTask has no loss term 'gan'"),
        ({"term_weights": {"mel_l1": 1.0, "disc": {"real": 1.0, "reel": 1.0}}},
         "^loss.weights.disc.reel: the discriminator has no loss term 'reel' \\(known: real, fake\\)"),
        ({"adversarial": {"objectiv": "lsgan"}}, "^loss.adversarial.objectiv: unknown setting"),
        ({"adversarial": {"objective": "wgan"}}, "^loss.adversarial.objective: expected one of lsgan, hinge"),
        ({"adversarial": {"start_step": 0}}, "^loss.adversarial.start_step: expected an integer >= 1, got 0"),
        ({"adversarial": {"discriminators": ["msd"]}},
         "^loss.adversarial.discriminators: msd: unknown discriminator"),
        ({"adversarial": {"discriminators": ["mrstft"], "mrstft": {"channels": 0}}},
         "^loss.adversarial.mrstft: channels must be >= 1"),
    ],
)
def test_task_configuration_errors_are_one_line(cache, kwargs, message):
    with pytest.raises(ConfigError, match=message) as info:
        _task(cache, **kwargs)
    assert "\n" not in str(info.value)


def test_recipe_runs_two_steps_from_the_pretrained_student_and_resumes(tmp_path):
    common = [
        "recipe=slt_iaf_gan", "data=sample", f"data.cache_dir={tmp_path / 'cache'}", "data.limit=8",
        "data.splits.n_eval=2", "data.splits.n_dev=2", f"trainer.out_dir={tmp_path / 'exp'}",
        "trainer.batch_size=2",
        "trainer.log_every=1", "trainer.valid_every=2", "trainer.audio_every=0", "trainer.progress=log",
        "loss.frames=8", "loss.adversarial.mrstft.channels=4", "trainer.init_from=pretrained:kathleen_iaf",
    ]
    lines: list[str] = []
    build_trainer(_compose(*common, "trainer.max_steps=2"), log=lines.append, progress=False).fit()
    assert any(line.startswith("initialized from pretrained:kathleen_iaf") for line in lines)
    assert any("parameter group(s) disc start from scratch" in line for line in lines)
    assert any(line.startswith("step 2/2 loss gen ") and " disc " in line for line in lines)
    checkpoint = tmp_path / "exp" / "checkpoints" / "last.pt"
    state = load_checkpoint(checkpoint)
    assert state["step"] == 2 and list(state["groups"]) == ["gen", "disc"]
    assert set(state["networks"]) == {"disc"}
    lines.clear()
    resumed = build_trainer(_compose(*common, "trainer.max_steps=4"), log=lines.append, progress=False)
    resumed.fit()
    assert any(line.startswith("resumed from") and "at step 2" in line for line in lines)
    assert not any("initialized from" in line for line in lines)  # its own checkpoint wins over init_from
    for optimizer in (resumed.optimizer, resumed.groups[1].optimizer):
        assert {int(s["step"]) for s in optimizer.state_dict()["state"].values()} == {4}
    from vocoder.inference import IAFVocoder, load

    assert isinstance(load(checkpoint), IAFVocoder)  # synthesis reads the generator only
