"""``vocoder-train``: build the run from its config (:func:`vocoder.config.build_trainer`) and train.

    vocoder-train recipe=demo
    vocoder-train recipe=slt_lpcnet optim.lr=5e-4 data.root=/path/to/cmu_us_slt_arctic
    vocoder-train recipe=slt_lpcnet --cfg job          # print the resolved config
    vocoder-train recipe=demo optim.lr=1e-3,5e-4 --multirun
    torchrun --nproc_per_node=4 -m vocoder.train recipe=slt_lpcnet
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from vocoder.cli._hydra import fail, run_cli
from vocoder.config import CONFIG_DIR, build_trainer, register_resolvers
from vocoder.errors import ConfigError

register_resolvers()


def run(cfg: DictConfig) -> None:
    """Validate, prepare the corpus if needed, build everything and train."""
    trainer = build_trainer(cfg)
    trainer.fit()
    if trainer.dist.is_main:
        print(f"checkpoints: {trainer.checkpoint_dir} (last.pt holds the EMA weights used for synthesis)")
        print(f"TensorBoard: tensorboard --logdir {trainer.out_dir.parent}")


@hydra.main(version_base=None, config_path=str(CONFIG_DIR), config_name="train")
def _hydra_main(cfg: DictConfig) -> None:
    from vocoder.checkpoints import CheckpointError
    from vocoder.data import DataError
    from vocoder.training import TrainingError

    try:
        run(cfg)
    except (ConfigError, CheckpointError, TrainingError, DataError) as exc:
        fail("vocoder-train", exc)
    except OSError as exc:  # a write the trainer does not wrap itself (e.g. a cache folder on a full disk)
        fail("vocoder-train", f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))


def main() -> None:
    """Console-script entry point."""
    run_cli(_hydra_main, "vocoder-train")
