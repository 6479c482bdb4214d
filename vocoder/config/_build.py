"""From a composed ``train`` config to a ready trainer: validation before any work, then assembly.

Used by ``vocoder-train``, the benchmarks and the tests alike: :func:`validate_train_config` checks
every section (schemas, constructor signatures, a dry run of the constructors) and
:func:`build_trainer` prepares the corpus if needed and builds model, training module, optimizer,
scheduler and :class:`vocoder.training.Trainer`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vocoder.config._schema import validate_data
from vocoder.config._validate import ConfigError, build_checked, check_dataclass_section, check_target_section

# keys a training module receives from the CLI rather than from its config section
INJECTED_INTO_MODULE = ("model", "cache_dir", "features")


def without_keys(section: DictConfig, *keys: str) -> DictConfig:
    """A resolved copy of ``section`` without ``keys`` (e.g. ``loss`` without its ``weights``)."""
    copy = OmegaConf.create(OmegaConf.to_container(section, resolve=True))
    for key in keys:
        copy.pop(key, None)
    return copy


def _check_weight(value: Any, key: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
        raise ConfigError(f"{key}: expected a finite number >= 0, got {value!r}")


def group_optim_sections(optim: DictConfig) -> dict[str, tuple[dict, dict | None, float | None]]:
    """The optimizer of every parameter group named in ``optim.groups``.

    A group's section is merged over the base ``optim`` settings, or replaces them when it names a
    ``_target_`` of its own; likewise its ``scheduler`` (absent: the base schedule, a fresh one per
    optimizer; ``null``: none). ``grad_clip`` is the group's own clipping norm.

    Returns:
        group name → (optimizer section, scheduler section or ``None``, ``grad_clip`` or ``None``),
        plain resolved dicts.

    Raises:
        ConfigError: one line naming the key of a malformed group section.
    """
    base = OmegaConf.to_container(optim, resolve=True)
    groups = base.pop("groups", None) or {}
    base_scheduler = base.pop("scheduler", None)
    if not isinstance(groups, dict):
        raise ConfigError(f"optim.groups: expected a section per parameter group, got {groups!r}")
    sections = {}
    for name, section in groups.items():
        if not isinstance(section, dict):
            raise ConfigError(f"optim.groups.{name}: expected a section of optimizer settings, "
                              f"got {section!r}")
        section = dict(section)
        grad_clip = section.pop("grad_clip", None)
        if grad_clip is not None:
            _check_weight(grad_clip, f"optim.groups.{name}.grad_clip")
            grad_clip = float(grad_clip)
        own_scheduler = "scheduler" in section
        scheduler = section.pop("scheduler", None)
        optimizer = section if "_target_" in section else {**base, **section}
        if own_scheduler and scheduler is not None:
            if not isinstance(scheduler, dict):
                raise ConfigError(f"optim.groups.{name}.scheduler: expected a section or null, "
                                  f"got {scheduler!r}")
            if "_target_" not in scheduler:
                if base_scheduler is None:
                    raise ConfigError(f"optim.groups.{name}.scheduler._target_: missing, and optim has no "
                                      "scheduler to take it from")
                scheduler = {**base_scheduler, **scheduler}
        elif not own_scheduler:
            scheduler = base_scheduler
        sections[str(name)] = (optimizer, scheduler, grad_clip)
    return sections


def validate_train_config(cfg: DictConfig) -> dict[str, Any]:
    """Check every section before any work; return the typed pieces. Raises :class:`ConfigError`."""
    from vocoder.training import TrainerSettings

    data = validate_data(cfg.data)
    # ranges and choices of the trainer's settings: TrainerSettings.__post_init__
    settings = check_dataclass_section(cfg.trainer, TrainerSettings, "trainer")
    check_target_section(cfg.model, "model")
    check_target_section(cfg.loss, "loss", extra_keys=("weights",), injected=INJECTED_INTO_MODULE)
    if "weights" not in cfg.loss or not cfg.loss.weights:
        raise ConfigError("loss.weights: missing; give each named loss term a weight, e.g. loss.weights.ce=1.0")
    for term, weight in cfg.loss.weights.items():
        if isinstance(weight, DictConfig):  # the weights of a parameter group's terms
            if not weight:
                raise ConfigError(f"loss.weights.{term}: empty; give the group's terms weights")
            for sub_term, sub_weight in weight.items():
                _check_weight(sub_weight, f"loss.weights.{term}.{sub_term}")
        else:
            _check_weight(weight, f"loss.weights.{term}")
    check_target_section(cfg.optim, "optim", extra_keys=("scheduler", "groups"), injected=("params",))
    if cfg.optim.get("scheduler"):
        check_target_section(cfg.optim.scheduler, "optim.scheduler", injected=("optimizer",))
    for name, (optimizer, scheduler, _) in group_optim_sections(cfg.optim).items():
        check_target_section(OmegaConf.create(optimizer), f"optim.groups.{name}", injected=("params",))
        if scheduler is not None:
            check_target_section(OmegaConf.create(scheduler), f"optim.groups.{name}.scheduler",
                                 injected=("optimizer",))
    # a model setting that also exists in the data's feature settings must agree with it
    features = cfg.data.features
    for key in cfg.model:
        if key in features and cfg.model[key] != features[key]:
            raise ConfigError(
                f"model.{key}={cfg.model[key]} differs from data.features.{key}={features[key]}; "
                f"the model must use the data's value"
            )
    dry_run(cfg, data.feature_settings())
    return {"data": data, "settings": settings}


def _stand_in_cache(directory: Path, features: Any) -> None:
    """A cache holding only neutral statistics (what a training module reads first), nothing else."""
    import numpy as np

    from vocoder.dsp import NB_FEATURES

    stats = {
        "mel_mean": np.zeros(features.n_mels, np.float32),
        "mel_std": np.ones(features.n_mels, np.float32),
        "features_mean": np.zeros(NB_FEATURES, np.float32),
        "features_std": np.ones(NB_FEATURES, np.float32),
    }
    np.savez(directory / "stats.npz", **stats)


def dry_run(cfg: DictConfig, features: Any) -> None:
    """Run the constructors' own checks before any work: model, training module, optimizer, scheduler.

    Each is built once on throw-away objects (the training module on a stand-in cache that holds
    only neutral statistics: it is accepted as soon as it asks for the prepared data itself).

    Raises:
        ConfigError: one line naming the key a constructor rejected (see
            :func:`build_checked`).
    """
    import copy
    import tempfile

    from hydra.utils import instantiate

    from vocoder.checkpoints import CheckpointError
    from vocoder.data import DataError

    model = build_checked(cfg.model, "model", lambda section: instantiate(section, _convert_="all"))
    with tempfile.TemporaryDirectory(prefix="vocoder-dry-run-") as stand_in:
        _stand_in_cache(Path(stand_in), features)

        def build_module(section: dict) -> Any:
            factory = instantiate(section, _partial_=True, _convert_="all")
            return factory(model=copy.deepcopy(model), cache_dir=stand_in, features=features)

        module = build_checked(
            without_keys(cfg.loss, "weights"), "loss", build_module, reached=(DataError,),
            passthrough=(CheckpointError,),
        )
    params = list(module.trainable_parameters()) if module is not None else list(model.parameters())
    optimizer = build_checked(
        without_keys(cfg.optim, "scheduler", "groups"),
        "optim",
        lambda section: instantiate(section, _partial_=True, _convert_="all")(params),
    )
    if cfg.optim.get("scheduler"):
        build_checked(
            cfg.optim.scheduler,
            "optim.scheduler",
            lambda section: instantiate(section, _partial_=True, _convert_="all")(optimizer),
        )
    if module is not None:
        _dry_run_groups(cfg, module)


def _dry_run_groups(cfg: DictConfig, module: Any) -> None:
    """Every ``optim.groups.<name>`` names a parameter group of the module and builds on its parameters."""
    from hydra.utils import instantiate

    groups = {group.name: group for group in module.parameter_groups()}
    sections = group_optim_sections(cfg.optim)
    for name in sections:
        if name not in groups:
            shown = ", ".join(groups) or "none: it trains one optimizer"
            raise ConfigError(f"optim.groups.{name}: {type(module).__name__} has no parameter group {name} "
                              f"(groups: {shown})")
    for name, (optimizer_section, scheduler_section, _) in sections.items():
        params = [p for p in groups[name].network.parameters() if p.requires_grad]
        optimizer = build_checked(
            optimizer_section, f"optim.groups.{name}",
            lambda section, params=params: instantiate(section, _partial_=True, _convert_="all")(params),
        )
        if scheduler_section is not None:
            build_checked(
                scheduler_section, f"optim.groups.{name}.scheduler",
                lambda section, opt=optimizer: instantiate(section, _partial_=True, _convert_="all")(opt),
            )


def _factories(optimizer_section: Any, scheduler_section: Any):
    """(parameters → optimizer, optimizer → scheduler or ``None``) built from two config sections."""
    from hydra.utils import instantiate

    def optimizer_factory(params):
        return instantiate(optimizer_section, _partial_=True, _convert_="all")(params)

    def scheduler_factory(optimizer):
        return instantiate(scheduler_section, _partial_=True, _convert_="all")(optimizer)

    return optimizer_factory, scheduler_factory if scheduler_section is not None else None


def _job_out_dir(out_dir: str) -> str:
    """In a ``--multirun`` sweep each job trains in its own sub-folder named by its overrides."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return out_dir
    job = HydraConfig.get().job
    return str(Path(out_dir) / (job.override_dirname or f"job{job.num}"))


def build_trainer(cfg: DictConfig, *, log: Callable[[str], None] = print, progress: bool | None = None):
    """Validate, prepare the corpus if needed and build model, training module, optimizer and trainer.

    Args:
        cfg: the composed ``train`` config.
        log: where the trainer's one-line messages go.
        progress: progress bar of the corpus preparation (None: on a terminal only).

    Returns:
        The :class:`vocoder.training.Trainer`, ready to ``fit()``.
    """
    import torch
    from hydra.utils import instantiate

    from vocoder.checkpoints import CheckpointError
    from vocoder.data import DataError, FeatureSettings, ensure_prepared
    from vocoder.training import GroupOptimizer, Trainer

    typed = validate_train_config(cfg)
    settings = typed["settings"]
    settings.out_dir = _job_out_dir(settings.out_dir)
    features = FeatureSettings(**OmegaConf.to_container(cfg.data.features, resolve=True))
    cache_dir = ensure_prepared(typed["data"], progress=progress)
    torch.manual_seed(settings.seed)  # model initialization follows the run's seed
    model = instantiate(cfg.model, _convert_="all")
    # objects are passed to the partial, not through instantiate (which would turn them into configs)
    module_factory = instantiate(without_keys(cfg.loss, "weights"), _partial_=True, _convert_="all")
    try:
        module = module_factory(model=model, cache_dir=str(cache_dir), features=features)
    except (ConfigError, CheckpointError, DataError):
        raise
    except Exception:  # a check the dry run could not reach (it needs the data): find its key
        build_checked(
            without_keys(cfg.loss, "weights"),
            "loss",
            lambda section: instantiate(section, _partial_=True, _convert_="all")(
                model=instantiate(cfg.model, _convert_="all"), cache_dir=str(cache_dir), features=features
            ),
            passthrough=(CheckpointError, DataError),
        )
        raise
    optimizer_factory, scheduler_factory = _factories(
        without_keys(cfg.optim, "scheduler", "groups"), cfg.optim.get("scheduler") or None
    )
    group_optimizers = {}
    for name, (optimizer_section, scheduler_section, grad_clip) in group_optim_sections(cfg.optim).items():
        group_factory, group_scheduler = _factories(optimizer_section, scheduler_section)
        group_optimizers[name] = GroupOptimizer(group_factory, group_scheduler, grad_clip)
    return Trainer(
        module,
        optimizer_factory,
        scheduler_factory,
        settings,
        loss_weights=dict(OmegaConf.to_container(cfg.loss.weights, resolve=True)),
        config=OmegaConf.to_container(cfg, resolve=True),
        log=log,
        group_optimizers=group_optimizers,
    )
