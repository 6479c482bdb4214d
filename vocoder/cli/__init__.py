"""Thin Hydra entry points (prepare, train, synth, eval, bench) and their shared config plumbing.

Public here: what the benchmark harness (:mod:`vocoder.bench`, beside ``cli`` at the top of the
house) needs to compose and check configs as the commands do. :class:`ConfigError` is defined in
:mod:`vocoder.errors`, below every layer, and re-exported.
"""

from vocoder.cli._hydra import CONFIG_DIR, SAMPLE_DIR, fail, register_resolvers, run_cli, sample_root
from vocoder.errors import ConfigError

__all__ = ["CONFIG_DIR", "SAMPLE_DIR", "ConfigError", "fail", "register_resolvers", "run_cli", "sample_root"]
