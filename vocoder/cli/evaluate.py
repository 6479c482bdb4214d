"""``vocoder-eval``: objective scores of synthesized wavs against the natural ones, plots, a listening page.

    vocoder-eval ref=DIR hyp=DIR output_dir=DIR
    vocoder-eval ref=DIR hyp=DIR output_dir=DIR anchors=true plots=5 workers=4
    vocoder-eval ref=DIR hyp.fast=DIR_A hyp.int8=DIR_B output_dir=DIR     # two systems in one report
    vocoder-eval ref=DIR 'hyp=[DIR_A,DIR_B]' output_dir=DIR              # systems named after their folders
    vocoder-eval ref=DIR hyp=DIR output_dir=DIR sample_rate=22050
    python -m vocoder.evaluate ref=DIR hyp=DIR output_dir=DIR

Every wav of ``hyp`` is paired with the wav of the same name in ``ref`` (copy synthesis keeps the
timing) and scored with wide-band PESQ, STOI, mel-cepstral distortion, V/UV error, gross and fine
pitch error (see :mod:`vocoder.evaluation`). ``anchors=true`` also scores WORLD, Griffin-Lim and
8-bit μ-law copies of the natural wavs, as yardsticks. The markdown summary is printed; the
per-utterance CSV, the summary, the plots and the listening page ``index.html`` (every system's audio,
spectrogram and scores per utterance beside the recording's) are written to ``output_dir``.

Several systems: ``hyp.NAME=DIR`` once per system (``NAME``: letters, digits, ``_ . + -``; the same as
Hydra's ``+hyp.NAME=DIR``), ``hyp={a:DIR_A,b:DIR_B}``, or a list ``hyp=[DIR_A,DIR_B]`` named after the
folders. They are compared on the utterances that every folder has.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from vocoder.cli._hydra import fail, run_cli
from vocoder.config import CONFIG_DIR, register_resolvers
from vocoder.errors import ConfigError

PROG = "vocoder-eval"
MIN_SAMPLE_RATE = 8000  # PESQ-WB works at 16 kHz; below 8 kHz the pitch range (60–500 Hz) is not safe

register_resolvers()

_MISSING_HINTS = {
    "ref": "the folder of natural wavs, e.g. ref=data/wav",
    "hyp": "the folder of synthesized wavs named like their references, e.g. hyp=exp/run/synth "
           "(several: hyp.NAME=DIR for each)",
    "output_dir": "where the report goes, e.g. output_dir=exp/run/eval",
}


@dataclass
class EvalSettings:
    """The settings of ``vocoder-eval`` (``configs/eval.yaml``)."""

    ref: str = MISSING
    hyp: Any = MISSING  # a folder, {name: folder} or [folder, ...]
    output_dir: str = MISSING
    anchors: bool = False
    plots: int = 3
    page: int = 100
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
    if settings.page < 0:
        raise ConfigError(f"page: must be >= 0 (0 writes no listening page), got {settings.page}")
    if settings.workers < 1:
        raise ConfigError(f"workers: must be >= 1, got {settings.workers}")
    if settings.sample_rate is not None and settings.sample_rate < MIN_SAMPLE_RATE:
        raise ConfigError(f"sample_rate: must be at least {MIN_SAMPLE_RATE} Hz, got {settings.sample_rate}")
    settings.hyp = hyp_systems(settings.hyp)
    output_dir = Path(settings.output_dir).expanduser()
    if output_dir.exists() and not output_dir.is_dir():
        raise ConfigError(f"output_dir={output_dir}: exists and is not a folder")
    return settings


def hyp_systems(hyp: Any) -> str | dict[str, str]:
    """The ``hyp`` setting as :func:`vocoder.evaluation.evaluate_folders` takes it.

    Args:
        hyp: one folder (a string), ``{name: folder}``, or a list of folders (named after their last
            path component, which must then differ).

    Returns:
        The folder, or ``{system name: folder}`` in the order given.

    Raises:
        ConfigError: an empty folder setting, a list of folders with the same name, or a system name
            :func:`vocoder.evaluation.synthesized_systems` refuses.
    """
    from vocoder.evaluation import EvaluationError, synthesized_systems

    if isinstance(hyp, str):
        return hyp
    if isinstance(hyp, list):
        named: dict[str, str] = {}
        for folder in hyp:
            if not isinstance(folder, str) or not folder:
                raise ConfigError(f"hyp: every entry of the list must be a folder, got {folder!r}")
            name = Path(folder).expanduser().resolve().name
            if name in named:
                raise ConfigError(f"hyp: two folders are named {name} ({named[name]}, {folder}); name the "
                                  f"systems: hyp.A={named[name]} hyp.B={folder}")
            named[name] = folder
        hyp = named
    if not isinstance(hyp, dict) or not hyp:
        raise ConfigError("hyp: give a folder (hyp=DIR) or named folders (hyp.NAME=DIR for each system)")
    for name, folder in hyp.items():
        if not isinstance(folder, str) or not folder:
            raise ConfigError(f"hyp.{name}: give the folder of its synthesized wavs, got {folder!r}")
    try:
        synthesized_systems(hyp)
    except EvaluationError as error:
        raise ConfigError(str(error)) from None
    return {str(name): folder for name, folder in hyp.items()}


def run(settings: EvalSettings) -> dict[str, dict[str, float]]:
    """Score ``settings.hyp`` against ``settings.ref``, write the report, print where it is (the page last).

    Returns:
        ``{system: {metric: mean}}`` as :func:`vocoder.evaluation.evaluate_folders` returns it.
    """
    from tqdm import tqdm

    from vocoder.evaluation import default_cache_dir, evaluate_folders

    output_dir = Path(settings.output_dir).expanduser()
    hyp = settings.hyp
    synthesized = (Path(hyp).expanduser() if isinstance(hyp, str)
                   else {name: Path(folder).expanduser() for name, folder in hyp.items()})
    # the bar is drawn on an interactive stderr only (disable=None), so logs and pipes stay clean
    with tqdm(desc="scoring", unit="utt", file=sys.stderr, disable=None, dynamic_ncols=True) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        means = evaluate_folders(
            Path(settings.ref).expanduser(),
            synthesized,
            output_dir,
            sample_rate=settings.sample_rate,
            anchors=settings.anchors,
            plots=settings.plots,
            workers=settings.workers,
            progress=progress,
            cache_dir=(Path(settings.cache_dir).expanduser() if settings.cache_dir else default_cache_dir())
            if settings.cache else None,
            page=settings.page,
        )
    print((output_dir / "summary.md").read_text())
    print(f"scores:  {output_dir / 'scores.csv'} (one row per utterance and system)")
    print(f"summary: {output_dir / 'summary.md'}")
    if settings.plots:
        stem = "<utterance>" if isinstance(hyp, str) else "<utterance>_<system>"
        print(f"plots:   {output_dir / 'plots'} (distributions.png, {stem}_spectrogram.png)")
    if settings.page:
        print(f"page:    {output_dir / 'index.html'} (open it in a browser: each utterance's audio, "
              "spectrograms and scores, every system beside the recording)")
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


_NAMED_HYP = re.compile(r"hyp\.[^=]+=")


def named_hyp_overrides(argv: list[str]) -> list[str]:
    """``hyp.NAME=DIR`` → ``+hyp.NAME=DIR``: ``hyp`` has no keys in the config, so Hydra adds one with ``+``.

    Raises:
        ConfigError: ``hyp=…`` and ``hyp.NAME=…`` in one command (the named folders would replace it).
    """
    named = [arg for arg in argv if _NAMED_HYP.match(arg.lstrip("+"))]
    if named and any(arg.lstrip("+").startswith("hyp=") for arg in argv):
        raise ConfigError(f"hyp: give one folder (hyp=DIR) or named folders (hyp.NAME=DIR for each), "
                          f"not both ({named[0]})")
    return ["+" + arg if _NAMED_HYP.match(arg) else arg for arg in argv]


def main() -> None:
    """Console-script entry point (``vocoder-eval``)."""
    try:
        sys.argv[1:] = named_hyp_overrides(sys.argv[1:])
    except ConfigError as error:
        fail(PROG, error)
    run_cli(_hydra_main, PROG)
