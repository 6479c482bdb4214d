"""Thin Hydra entry points (prepare, train, synth, eval): argument parsing and one-line errors.

What a command builds from its config lives in :mod:`vocoder.config`; :class:`ConfigError` is
defined in :mod:`vocoder.errors`, below every layer, and re-exported.
"""

from vocoder.cli._hydra import fail, run_cli
from vocoder.errors import ConfigError

__all__ = ["ConfigError", "fail", "run_cli"]
