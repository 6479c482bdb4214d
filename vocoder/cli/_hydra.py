"""Shared plumbing of every ``vocoder-*`` command: running Hydra and one-line errors.

Usage in a command module::

    register_resolvers()

    @hydra.main(version_base=None, config_path=str(CONFIG_DIR), config_name="prepare")
    def _hydra_main(cfg): ...

    def main() -> None:
        run_cli(_hydra_main, "vocoder-prepare")
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from vocoder.config import CONFIG_DIR


def fail(prog: str, error: BaseException | str, status: int = 2) -> NoReturn:
    """Print ``<prog>: error: <first line of error>`` on stderr and exit with ``status`` (no traceback)."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(status)


def _describe(error: BaseException) -> str:
    """One line for a Hydra/OmegaConf error, naming the config key where one is known."""
    cause = error.__cause__ if isinstance(error.__cause__, OmegaConfBaseException) else None
    for candidate in (error, cause):
        key = getattr(candidate, "full_key", None) if candidate is not None else None
        if key:
            detail = str(candidate).strip().splitlines()[0]
            if re.match(r"Key '[^']*' (is )?not in", detail):
                return f"{key}: unknown setting"
            return f"{key}: {detail}"
    text = str(error).split("Config search path", 1)[0]  # Hydra appends its whole search path
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if cause is not None:
        lines += [line.strip() for line in str(cause).splitlines()[:1] if line.strip()]
    return " ".join(lines) or type(error).__name__


def run_cli(entry: Callable[[], Any], prog: str) -> None:
    """Run a ``@hydra.main`` function so that every configuration error is one line on stderr.

    Hydra reports composition errors (an override of a key that does not exist, a bad override
    syntax, an unknown config group option, a failing interpolation) in several lines; here they
    are caught and printed as ``<prog>: error: <key>: <reason>`` with exit status 2. Set
    ``HYDRA_FULL_ERROR=1`` to get Hydra's own report and traceback instead. Ctrl-C exits with
    status 130 and a one-line message.

    Args:
        entry: the function decorated with ``@hydra.main``.
        prog: the command name used in messages.
    """
    if not CONFIG_DIR.is_dir():
        fail(
            prog,
            f"config folder {CONFIG_DIR} not found; reinstall vocoder (pip install .)",
        )
    previous = os.environ.get("HYDRA_FULL_ERROR")
    user_wants_traceback = previous == "1"
    # Hydra re-raises composition errors instead of printing them when HYDRA_FULL_ERROR is set
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        entry()
    except (HydraException, OmegaConfBaseException) as error:
        if user_wants_traceback:
            raise
        fail(prog, _describe(error))
    except KeyboardInterrupt:
        fail(prog, "interrupted", status=130)
    finally:
        if previous is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = previous
