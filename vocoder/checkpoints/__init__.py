"""Checkpoint and weights files, ``pretrained:NAME``, config upgrades, and the one model rebuild.

Below :mod:`vocoder.inference` (which synthesizes from checkpoints) and :mod:`vocoder.training`
(which writes them, and keeps the run directory: step files, resumption, RNG states).
"""

from vocoder.checkpoints._files import (
    LEGACY_MODEL_DEFAULTS,
    REQUIRED_KEYS,
    WEIGHTS_FORMAT,
    CheckpointError,
    describe_mismatch,
    export_weights,
    link_atomic,
    load_checkpoint,
    load_weights,
    resolve_checkpoint_path,
    save_atomic,
    semantic_mismatch,
    upgrade_config,
)
from vocoder.checkpoints._rebuild import model_family, rebuild_model

__all__ = [
    "LEGACY_MODEL_DEFAULTS",
    "REQUIRED_KEYS",
    "WEIGHTS_FORMAT",
    "CheckpointError",
    "describe_mismatch",
    "export_weights",
    "link_atomic",
    "load_checkpoint",
    "load_weights",
    "model_family",
    "rebuild_model",
    "resolve_checkpoint_path",
    "save_atomic",
    "semantic_mismatch",
    "upgrade_config",
]
