"""Where the Hydra config tree and the embedded corpora are, and the OmegaConf resolvers the configs use."""

from __future__ import annotations

from pathlib import Path

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


def register_resolvers() -> None:
    """Register the OmegaConf resolvers the configs use (idempotent)."""
    OmegaConf.register_new_resolver("vocoder_sample_root", sample_root, replace=True)
