"""Configs to runs: the config tree, validation before any work, and the assembly of a trainer.

Every entry point (``vocoder-train``, ``vocoder-prepare``, the benchmarks, the tests) goes through
these: :data:`CONFIG_DIR` and :func:`register_resolvers` to compose a config, the typed data schema
(:class:`DataConfig`, :func:`validate_data`), the checks that name the offending key in one
:class:`~vocoder.errors.ConfigError` line (:func:`check_dataclass_section`,
:func:`check_target_section`, :func:`build_checked`), and :func:`validate_train_config` /
:func:`build_trainer` for a training run. :mod:`vocoder.cli` keeps argument parsing and printing.
"""

from vocoder.config._build import (
    INJECTED_INTO_MODULE,
    build_trainer,
    dry_run,
    group_optim_sections,
    validate_train_config,
    without_keys,
)
from vocoder.config._paths import CONFIG_DIR, SAMPLE_DIR, register_resolvers, sample_root
from vocoder.config._schema import AugmentConfig, DataConfig, FeaturesConfig, SplitsConfig, validate_data
from vocoder.config._validate import (
    build_checked,
    check_dataclass_section,
    check_target_section,
    resolve_target,
)

__all__ = [
    "CONFIG_DIR",
    "INJECTED_INTO_MODULE",
    "SAMPLE_DIR",
    "AugmentConfig",
    "DataConfig",
    "FeaturesConfig",
    "SplitsConfig",
    "build_checked",
    "build_trainer",
    "check_dataclass_section",
    "check_target_section",
    "dry_run",
    "group_optim_sections",
    "register_resolvers",
    "resolve_target",
    "sample_root",
    "validate_data",
    "validate_train_config",
    "without_keys",
]
