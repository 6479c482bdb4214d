"""Training throughput of a ``vocoder-train`` recipe, measured through the real trainer.

:func:`train_recipe` composes a recipe exactly as ``vocoder-train recipe=NAME key=value ...`` does
(same Hydra config tree, same validation, same model / training-module / optimizer construction) and
runs :class:`vocoder.training.Trainer` for ``2 · steps`` steps with ``trainer.log_every = steps``; the
trainer's ``samples_per_s`` of its last logging interval is the throughput. The first interval (model
warm-up, allocator, numba cache loads) is thereby left out, and the timed interval holds everything a
real training step does: data loading, forward, loss terms, backward, gradient clipping, optimizer and
LR-schedule steps, EMA update. Validation and audio examples are off; the one checkpoint is written
after the timed interval (it is the teacher that the distillation benchmark loads). Samples are the
scored output samples of a batch (``batch · frames · hop``), as the trainer counts them.

Run it in a fresh process (``python -m vocoder.bench --worker train-recipe``) for a clean peak RSS.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vocoder.bench._common import peak_rss_mb


@dataclass
class RecipeTrainingResult:
    """Training throughput of one recipe.

    Attributes:
        name: short name of the measured model (e.g. ``wavenet``).
        recipe: the ``vocoder-train`` recipe.
        overrides: the overrides given on top of the recipe (data location and sizes).
        model: class name of the trained network.
        parameters: its parameter count.
        batch_size: training batch size.
        threads: torch threads.
        steps: timed steps (after as many warm-up steps).
        samples_per_s: scored samples per second over the timed steps.
        peak_rss_mb: peak RSS of the training process.
        checkpoint: the checkpoint written after the timed steps (the distillation benchmark's teacher;
            :func:`vocoder.bench.run_iaf_training` deletes it with its temporary folder).
    """

    name: str
    recipe: str
    overrides: list[str] = field(default_factory=list)
    model: str = ""
    parameters: int = 0
    batch_size: int = 0
    threads: int = 1
    steps: int = 0
    samples_per_s: float = 0.0
    peak_rss_mb: float = 0.0
    checkpoint: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (the worker protocol)."""
        return asdict(self)


def compose_recipe(recipe: str, overrides: Sequence[str] = ()):
    """The resolved-on-demand ``vocoder-train`` config of ``recipe=NAME`` plus ``overrides``.

    Args:
        recipe: recipe name (``configs/recipe/NAME.yaml``).
        overrides: Hydra overrides (``key=value``) applied after the recipe.

    Returns:
        The composed ``DictConfig`` (without the ``hydra`` node).
    """
    from hydra import compose, initialize_config_dir

    from vocoder.config import CONFIG_DIR, register_resolvers

    register_resolvers()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        return compose(config_name="train", overrides=[f"recipe={recipe}", *overrides])


def prepare_recipe_data(recipe: str, overrides: Sequence[str] = ()) -> Path:
    """Prepare (or find up to date) the feature cache a recipe with ``overrides`` trains on.

    Args:
        recipe: recipe name.
        overrides: Hydra overrides (e.g. ``data.root=DIR``, ``data.cache_dir=DIR``).

    Returns:
        The cache directory.

    Raises:
        vocoder.errors.ConfigError / vocoder.data.DataError: one-line messages.
    """
    from vocoder.config import validate_train_config
    from vocoder.data import ensure_prepared

    typed = validate_train_config(compose_recipe(recipe, overrides))
    return ensure_prepared(typed["data"], progress=False)


def _log_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def train_recipe(
    name: str,
    recipe: str,
    overrides: Sequence[str] = (),
    threads: int = 1,
    steps: int = 5,
    out_dir: str | None = None,
) -> RecipeTrainingResult:
    """Train ``recipe`` for ``2 · steps`` steps on the CPU and report the throughput of the last ``steps``.

    Args:
        name: short name recorded in the result.
        recipe: ``vocoder-train`` recipe name.
        overrides: Hydra overrides after the recipe (data location, sizes, teacher checkpoint, ...).
        threads: torch threads.
        steps: timed steps (as many warm-up steps run first).
        out_dir: training folder (checkpoint, TensorBoard); None keeps the recipe's ``trainer.out_dir``.

    Returns:
        The throughput, peak RSS and the written checkpoint.

    Raises:
        vocoder.errors.ConfigError, vocoder.data.DataError, vocoder.checkpoints.CheckpointError,
        vocoder.training.TrainingError: one-line messages.
    """
    import torch

    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _train(name, recipe, overrides, threads, steps, out_dir)
    finally:
        torch.set_num_threads(previous_threads)


def _train(
    name: str, recipe: str, overrides: Sequence[str], threads: int, steps: int, out_dir: str | None
) -> RecipeTrainingResult:
    """:func:`train_recipe` at the current torch thread count."""
    from vocoder.config import build_trainer

    loop = [
        f"trainer.max_steps={2 * steps}",
        f"trainer.log_every={steps}",
        f"trainer.checkpoint_every={2 * steps}",
        "trainer.valid_every=0",
        "trainer.audio_every=0",
        "trainer.progress=log",
        "trainer.resume=never",
        "trainer.device=cpu",
    ]
    if out_dir is not None:
        loop.append(f"trainer.out_dir={out_dir}")
    cfg = compose_recipe(recipe, [*overrides, *loop])
    trainer = build_trainer(cfg, log=_log_to_stderr, progress=False)
    settings = trainer.settings
    model = trainer.module.model
    scalars = trainer.fit()
    return RecipeTrainingResult(
        name=name,
        recipe=recipe,
        overrides=list(overrides),
        model=type(model).__name__,
        parameters=sum(p.numel() for p in model.parameters()),
        batch_size=settings.batch_size,
        threads=threads,
        steps=steps,
        samples_per_s=float(scalars["samples_per_s"]),
        peak_rss_mb=peak_rss_mb(),
        checkpoint=str(trainer.checkpoint_dir / "last.pt"),
    )


def worker(params: dict[str, Any]) -> dict[str, Any]:
    """``vocoder-bench`` worker: :func:`train_recipe` with ``params``; returns the result's dict."""
    return train_recipe(**params).to_dict()
