"""Where the Hydra config tree and the embedded corpora are, and the OmegaConf resolvers the configs use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf


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
