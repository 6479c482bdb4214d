"""``vocoder-eval``: objective scores of synthesized wavs against the natural ones, with plots.

    vocoder-eval ref=DIR hyp=DIR output_dir=DIR
    vocoder-eval ref=DIR hyp=DIR output_dir=DIR anchors=true plots=5 workers=4
    vocoder-eval ref=DIR hyp=DIR output_dir=DIR sample_rate=22050
    python -m vocoder.evaluate ref=DIR hyp=DIR output_dir=DIR

Every wav of ``hyp`` is paired with the wav of the same name in ``ref`` (copy synthesis keeps the
timing) and scored with wide-band PESQ, STOI, mel-cepstral distortion, V/UV error, gross and fine
pitch error (see :mod:`vocoder.evaluation`). ``anchors=true`` also scores WORLD, Griffin-Lim and
8-bit μ-law copies of the natural wavs, as yardsticks. The markdown summary is printed; the
per-utterance CSV, the summary and the plots are written to ``output_dir``.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
from dataclasses import dataclass
from pathlib import Path

import hydra
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from vocoder.cli._hydra import CONFIG_DIR, fail, register_resolvers, run_cli
from vocoder.cli._validate import ConfigError

PROG = "vocoder-eval"
MIN_SAMPLE_RATE = 8000  # PESQ-WB works at 16 kHz; below 8 kHz the pitch range (60–500 Hz) is not safe

register_resolvers()

_MISSING_HINTS = {
    "ref": "the folder of natural wavs, e.g. ref=data/wav",
    "hyp": "the folder of synthesized wavs named like their references, e.g. hyp=exp/run/synth",
    "output_dir": "where the report goes, e.g. output_dir=exp/run/eval",
}


@dataclass
class EvalSettings:
    """The settings of ``vocoder-eval`` (``configs/eval.yaml``)."""

    ref: str = MISSING
    hyp: str = MISSING
    output_dir: str = MISSING
    anchors: bool = False
    plots: int = 3
    workers: int = 2
    sample_rate: int | None = None
    cache: bool = True
    cache_dir: str | None = None


def validate(cfg: DictConfig) -> EvalSettings:
    """Check the config before any work: one :class:`ConfigError` line naming the bad key.

    Args:
        cfg: the composed ``eval`` config (without the ``hydra`` node).

    Returns:
        The typed settings.
    """
    names = [f.name for f in dataclasses.fields(EvalSettings)]
    for key in cfg:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            raise ConfigError(f"{key}: unknown setting" + (f" (did you mean {close[0]}?)" if close else ""))
    for key, hint in _MISSING_HINTS.items():
        if OmegaConf.is_missing(cfg, key) or OmegaConf.select(cfg, key) in (None, ""):
            raise ConfigError(f"{key}: not set; give {hint}")
    try:
        settings = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(EvalSettings), cfg))
    except OmegaConfBaseException as exc:
        detail = str(exc).strip().splitlines()[0]
        raise ConfigError(f"{getattr(exc, 'full_key', None) or 'config'}: {detail}") from None
    if settings.plots < 0:
        raise ConfigError(f"plots: must be >= 0 (0 turns plots off), got {settings.plots}")
    if settings.workers < 1:
        raise ConfigError(f"workers: must be >= 1, got {settings.workers}")
    if settings.sample_rate is not None and settings.sample_rate < MIN_SAMPLE_RATE:
        raise ConfigError(f"sample_rate: must be at least {MIN_SAMPLE_RATE} Hz, got {settings.sample_rate}")
    output_dir = Path(settings.output_dir).expanduser()
    if output_dir.exists() and not output_dir.is_dir():
        raise ConfigError(f"output_dir={output_dir}: exists and is not a folder")
    return settings


def run(settings: EvalSettings) -> dict[str, dict[str, float]]:
    """Score ``settings.hyp`` against ``settings.ref``, write the report and print where it is.

    Returns:
        ``{system: {metric: mean}}`` as :func:`vocoder.evaluation.evaluate_folders` returns it.
    """
    from tqdm import tqdm

    from vocoder.evaluation import default_cache_dir, evaluate_folders

    output_dir = Path(settings.output_dir).expanduser()
    # the bar is drawn on an interactive stderr only (disable=None), so logs and pipes stay clean
    with tqdm(desc="scoring", unit="utt", file=sys.stderr, disable=None, dynamic_ncols=True) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        means = evaluate_folders(
            Path(settings.ref).expanduser(),
            Path(settings.hyp).expanduser(),
            output_dir,
            sample_rate=settings.sample_rate,
            anchors=settings.anchors,
            plots=settings.plots,
            workers=settings.workers,
            progress=progress,
            cache_dir=(Path(settings.cache_dir).expanduser() if settings.cache_dir else default_cache_dir())
            if settings.cache else None,
        )
    print((output_dir / "summary.md").read_text())
    print(f"scores:  {output_dir / 'scores.csv'} (one row per utterance and system)")
    print(f"summary: {output_dir / 'summary.md'}")
    if settings.plots:
        print(f"plots:   {output_dir / 'plots'} (distributions.png, <utterance>_spectrogram.png)")
    return means


@hydra.main(version_base=None, config_path=str(CONFIG_DIR), config_name="eval")
def _hydra_main(cfg: DictConfig) -> None:
    from vocoder.data import DataError
    from vocoder.evaluation import EvaluationError

    try:
        run(validate(cfg))
    except (ConfigError, EvaluationError, DataError) as error:
        fail(PROG, error)
    except OSError as error:  # e.g. output_dir not writable, disk full
        where = f"{error.filename}: " if error.filename else ""
        fail(PROG, f"{where}{error.strerror or error}", status=1)


def main() -> None:
    """Console-script entry point (``vocoder-eval``)."""
    run_cli(_hydra_main, PROG)
