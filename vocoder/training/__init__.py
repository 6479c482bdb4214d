"""The one trainer, EMA, run directories, noise injection, distributed set-up and training modules."""

from vocoder.training._autoencoder_task import FeatureAutoencoderTask
from vocoder.training._distributed import DistributedContext
from vocoder.training._ema import EMA
from vocoder.training._feature_task import MGEFeatureTask, load_feature_converter
from vocoder.training._frozen import (
    FeatureConsistencyLoss,
    FrozenModule,
    LPCNetFrameEmbedding,
    is_frozen,
    lpcnet_frame_embedding,
    mark_frozen,
)
from vocoder.training._iaf_gan_task import IAFGANTask
from vocoder.training._iaf_task import IAFDistillTask, IAFTask, load_teacher
from vocoder.training._lpcnet_task import LPCNetTask
from vocoder.training._memory import retain_freed_memory
from vocoder.training._module import Example, ParameterGroup, TrainingModule
from vocoder.training._noise import MulawNoiseInjection, lpcnet_training_inputs
from vocoder.training._run_dir import find_resumable, step_checkpoints
from vocoder.training._sampler import ResumableSampler
from vocoder.training._schedules import ExponentialDecayLR, InverseDecayLR
from vocoder.training._trainer import GroupOptimizer, Trainer, TrainerSettings, TrainingError
from vocoder.training._wavenet_categorical_task import WaveNetDualSoftmaxTask
from vocoder.training._wavenet_task import MelConditionedTask, WaveNetTask, history_frames_for, normalize_mel

__all__ = [
    "retain_freed_memory",
    "EMA",
    "DistributedContext",
    "Example",
    "ExponentialDecayLR",
    "FeatureAutoencoderTask",
    "FeatureConsistencyLoss",
    "FrozenModule",
    "GroupOptimizer",
    "IAFDistillTask",
    "IAFGANTask",
    "IAFTask",
    "InverseDecayLR",
    "LPCNetFrameEmbedding",
    "LPCNetTask",
    "MGEFeatureTask",
    "MelConditionedTask",
    "MulawNoiseInjection",
    "ParameterGroup",
    "ResumableSampler",
    "Trainer",
    "TrainerSettings",
    "TrainingError",
    "TrainingModule",
    "WaveNetDualSoftmaxTask",
    "WaveNetTask",
    "find_resumable",
    "step_checkpoints",
    "history_frames_for",
    "is_frozen",
    "load_feature_converter",
    "load_teacher",
    "lpcnet_frame_embedding",
    "lpcnet_training_inputs",
    "mark_frozen",
    "normalize_mel",
]
