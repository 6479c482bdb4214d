"""The one trainer, EMA, checkpoints, noise injection, distributed set-up and training modules."""

from vocoder.training._checkpoint import CheckpointError, find_resumable, load_checkpoint, save_atomic
from vocoder.training._distributed import DistributedContext
from vocoder.training._ema import EMA
from vocoder.training._lpcnet_task import LPCNetTask
from vocoder.training._module import Example, TrainingModule
from vocoder.training._noise import MulawNoiseInjection, lpcnet_training_inputs
from vocoder.training._sampler import ResumableSampler
from vocoder.training._schedules import ExponentialDecayLR, InverseDecayLR
from vocoder.training._trainer import Trainer, TrainerSettings, TrainingError

__all__ = [
    "EMA",
    "CheckpointError",
    "DistributedContext",
    "Example",
    "ExponentialDecayLR",
    "InverseDecayLR",
    "LPCNetTask",
    "MulawNoiseInjection",
    "ResumableSampler",
    "Trainer",
    "TrainerSettings",
    "TrainingError",
    "TrainingModule",
    "find_resumable",
    "load_checkpoint",
    "lpcnet_training_inputs",
    "save_atomic",
]
