"""``vocoder-prepare``: validate the data config, fetch the corpus if needed, build the feature cache.

    vocoder-prepare                                        # CMU ARCTIC slt (downloaded) -> cache/slt
    vocoder-prepare data.root=/path/to/cmu_us_slt_arctic   # a local copy in the ARCTIC layout
    vocoder-prepare data=sample                            # the embedded sample, works offline
    vocoder-prepare data.root=DIR data.cache_dir=OUT data.limit=50 data.on_error=fail
    vocoder-prepare --cfg job                              # print the resolved config

The cache layout is documented in :mod:`vocoder.data._prepare`.
"""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from vocoder.cli._hydra import fail, run_cli
from vocoder.config import CONFIG_DIR, register_resolvers
from vocoder.errors import ConfigError

PROG = "vocoder-prepare"

register_resolvers()


def run(cfg: DictConfig) -> None:
    """Validate ``cfg.data`` and prepare its feature cache; print what was written."""
    from vocoder.config import validate_data
    from vocoder.data import prepare_data

    data = validate_data(cfg.data)
    result = prepare_data(data)
    print(result.summary())


@hydra.main(version_base=None, config_path=str(CONFIG_DIR), config_name="prepare")
def _hydra_main(cfg: DictConfig) -> None:
    from vocoder.data import DataError

    # progress bars go to stderr; library messages (download, unverified checksum) to stdout
    logging.getLogger("vocoder").setLevel(logging.INFO)
    try:
        run(cfg)
    except (ConfigError, DataError) as error:
        fail(PROG, error)
    except OSError as error:  # e.g. a cache directory that cannot be written, a full disk
        fail(PROG, f"{error.filename or ''}: {error.strerror or error}".lstrip(": "))


def main() -> None:
    """Console-script entry point (``vocoder-prepare``)."""
    run_cli(_hydra_main, PROG)
