"""losses package."""

# Adversarial objectives (least squares, hinge) and feature matching;
# MLPG / modulation spectrum functions and the MGE / ModSpec feature losses; discretized logistic
# mixture, density distillation and spectral losses (WaveNet teacher / IAF student).
from vocoder.losses._adversarial import (
    ADVERSARIAL_OBJECTIVES,
    AdversarialLoss,
    discriminator_adversarial_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from vocoder.losses._distillation import DistillationKL, distillation_kl, student_teacher_cross_entropy
from vocoder.losses._feature_losses import MGELoss, ModSpecLoss
from vocoder.losses._logistic import (
    DiscretizedMixLogisticNLL,
    discretized_mix_logistic_log_pmf,
    discretized_mix_logistic_log_prob,
    discretized_mix_logistic_nll,
    logistic_entropy,
    logistic_log_density,
    mix_logistic_binned_log_density,
    mix_logistic_log_density,
    quantize_to_levels,
    sample_discretized_mix_logistic,
    sample_logistic,
    split_mixture_params,
)
from vocoder.losses._mlpg import (
    WindowSpec,
    delta_windows,
    mlpg,
    mlpg_banded_system,
    normalize_windows,
    unit_variance_mlpg,
    unit_variance_mlpg_matrix,
)
from vocoder.losses._modspec import log_modspec, mask_padding, modspec
from vocoder.losses._spectral import (
    FrameMagnitudeLoss,
    PowerLoss,
    STFTLoss,
    frame_magnitude_loss,
    log_magnitude_distance,
    power_loss,
    spectral_convergence,
    stft_loss,
    stft_magnitude,
)

__all__ = [
    # adversarial objectives and feature matching
    "ADVERSARIAL_OBJECTIVES",
    "AdversarialLoss",
    "discriminator_adversarial_loss",
    "feature_matching_loss",
    "generator_adversarial_loss",
    # MLPG / modulation spectrum / feature losses
    "MGELoss",
    "ModSpecLoss",
    "WindowSpec",
    "delta_windows",
    "log_modspec",
    "mask_padding",
    "mlpg",
    "mlpg_banded_system",
    "normalize_windows",
    "modspec",
    "unit_variance_mlpg",
    "unit_variance_mlpg_matrix",
    # discretized logistic mixture / distillation / spectral losses
    "DiscretizedMixLogisticNLL",
    "DistillationKL",
    "FrameMagnitudeLoss",
    "PowerLoss",
    "STFTLoss",
    "discretized_mix_logistic_log_pmf",
    "discretized_mix_logistic_log_prob",
    "discretized_mix_logistic_nll",
    "distillation_kl",
    "frame_magnitude_loss",
    "log_magnitude_distance",
    "logistic_entropy",
    "logistic_log_density",
    "mix_logistic_binned_log_density",
    "mix_logistic_log_density",
    "power_loss",
    "quantize_to_levels",
    "sample_discretized_mix_logistic",
    "sample_logistic",
    "spectral_convergence",
    "split_mixture_params",
    "stft_loss",
    "stft_magnitude",
    "student_teacher_cross_entropy",
]
