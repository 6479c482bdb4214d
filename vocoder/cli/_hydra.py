"""Shared Hydra plumbing of every ``vocoder-*`` command: config folder, resolvers, one-line errors.

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
from pathlib import Path
from typing import Any, NoReturn

from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

def _config_dir() -> Path:
    """``vocoder/configs`` in an installed wheel, else ``configs/`` at the top of the source tree."""
    packaged = Path(__file__).resolve().parents[1] / "configs"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "configs"


#: The Hydra config tree (``configs/`` at the top of the repository, installed as ``vocoder/configs``).
CONFIG_DIR = _config_dir()
#: The corpora shipped inside the package (``vocoder/data/sample/<name>``).
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "sample"


def sample_root(name: str) -> str:
    """Absolute path of the embedded sample corpus ``name`` (e.g. ``kathleen``, ``slt``).

    Registered as the OmegaConf resolver ``${vocoder_sample_root:NAME}``.

    Raises:
        ValueError: no such sample corpus (the message lists the available ones).
    """
    path = SAMPLE_DIR / str(name)
    if not (path / "wav").is_dir():
        available = (
            sorted(p.name for p in SAMPLE_DIR.iterdir() if (p / "wav").is_dir())
            if SAMPLE_DIR.is_dir()
            else []
        )
        raise ValueError(f"no embedded sample corpus {name!r}; available: {', '.join(available) or 'none'}")
    return str(path)


def analysis_setting(key: str, sample_rate: Any) -> int | float:
    """One value of the standard analysis at ``sample_rate`` (:func:`vocoder.data.standard_analysis`).

    Registered as ``${vocoder_analysis:KEY,RATE}``: the data configs take ``hop_length``,
    ``win_length``, ``n_fft`` and ``fmax`` from it, so they follow ``data.features.sample_rate``.

    Raises:
        ValueError: an unknown key or a rate that is not a positive whole number.
    """
    from vocoder.data import standard_analysis

    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ValueError(f"data.features.sample_rate: a positive whole number of Hz, got {sample_rate!r}")
    values = standard_analysis(sample_rate)
    if key not in values:
        raise ValueError(f"vocoder_analysis: no setting {key!r} (one of {', '.join(values)})")
    return values[key]


def corpus_basename(root: Any) -> str:
    """The name of a corpus folder (a list file: its stem); registered as ``${vocoder_basename:PATH}``."""
    if root is None:
        return "local"
    path = Path(str(root)).expanduser().absolute()
    return path.stem if path.is_file() else path.name


def rate_suffix(sample_rate: Any) -> str:
    """``""`` at 16 kHz, else ``_<rate>hz``: caches of one corpus at two rates stay apart.

    Registered as ``${vocoder_rate_suffix:RATE}`` (``cache_dir: cache/${data.name}${...}``).
    """
    return "" if sample_rate == 16000 else f"_{sample_rate}hz"


def register_resolvers() -> None:
    """Register the OmegaConf resolvers the configs use (idempotent)."""
    OmegaConf.register_new_resolver("vocoder_sample_root", sample_root, replace=True)
    OmegaConf.register_new_resolver("vocoder_analysis", analysis_setting, replace=True)
    OmegaConf.register_new_resolver("vocoder_rate_suffix", rate_suffix, replace=True)
    OmegaConf.register_new_resolver("vocoder_basename", corpus_basename, replace=True)


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
