"""Typed schemas of the config sections, checked before any work starts.

Each section is merged into its dataclass with ``OmegaConf.structured`` (see
:func:`vocoder.config.check_dataclass_section`): unknown keys and wrong types are reported
there; impossible values are reported by the dataclasses' ``__post_init__`` as a one-line
:class:`~vocoder.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from vocoder.config._validate import ConfigError, check_dataclass_section
from vocoder.data import ARCTIC_SPEAKERS, DEFAULT_BASE_URL, LAYOUTS, AugmentSettings, FeatureSettings

# FeatureSettings is frozen (it is hashed into cache fingerprints) and OmegaConf cannot merge into
# frozen dataclasses; this mutable twin is generated from it so the fields are defined only once.
_FEATURE_HINTS = typing.get_type_hints(FeatureSettings)
_FeaturesFields = dataclasses.make_dataclass(
    "_FeaturesFields",
    [(f.name, _FEATURE_HINTS[f.name], field(default=f.default)) for f in dataclasses.fields(FeatureSettings)],
)

# AugmentSettings is frozen too (the datasets hold it); its mutable twin checks values through it.
_AUGMENT_HINTS = typing.get_type_hints(AugmentSettings)
_AugmentFields = dataclasses.make_dataclass(
    "_AugmentFields",
    [(f.name, _AUGMENT_HINTS[f.name], field(default=f.default)) for f in dataclasses.fields(AugmentSettings)],
)


@dataclass
class AugmentConfig(_AugmentFields):
    """``data.augment``: the fields of :class:`vocoder.data.AugmentSettings` (xiph's augmentation)."""

    def __post_init__(self) -> None:
        try:
            AugmentSettings(**dataclasses.asdict(self))
        except ValueError as exc:
            key = str(exc).split(" ", 1)[0]
            raise ConfigError(f"data.augment.{key}: {str(exc).split(' ', 1)[1]}") from None


MAX_LPC_ORDER = 159  # vocoder.dsp.lpc_from_cepstrum works on a 320-sample analysis window
#: Sample rates a corpus can be prepared at (PESQ-WB and the pitch range need at least 8 kHz).
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 192000


@dataclass
class FeaturesConfig(_FeaturesFields):
    """``data.features``: the fields of :class:`vocoder.data.FeatureSettings`, with value checks.

    Any rate from 8 to 192 kHz is accepted here; the models that need LPCNet's 16 kHz features (LPCNet)
    or 10 ms frames (the feature converter) refuse other settings themselves, in one line.
    """

    def __post_init__(self) -> None:
        def bad(key: str, why: str) -> ConfigError:
            return ConfigError(f"data.features.{key}: {why}, got {getattr(self, key)!r}")

        if not MIN_SAMPLE_RATE <= self.sample_rate <= MAX_SAMPLE_RATE:
            raise bad("sample_rate", f"must be in [{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}] Hz")
        if not 1 <= self.hop_length <= self.n_fft:
            raise bad("hop_length", f"must be in [1, n_fft={self.n_fft}]")
        if not 1 <= self.win_length <= self.n_fft:
            raise bad("win_length", f"must be in [1, n_fft={self.n_fft}]")
        if self.n_mels < 1:
            raise bad("n_mels", "must be >= 1")
        if not 0.0 <= self.fmin < self.fmax:
            raise bad("fmin", f"must be >= 0 and below fmax={self.fmax}")
        if self.fmax > self.sample_rate / 2:
            raise bad("fmax", f"must be at most the Nyquist frequency {self.sample_rate / 2:g} Hz")
        if not self.mel_floor > 0.0:
            raise bad("mel_floor", "must be > 0 (it bounds the argument of the log)")
        if not 0.0 <= self.preemphasis < 1.0:
            raise bad("preemphasis", "must be in [0, 1)")
        if not 1 <= self.lpc_order <= MAX_LPC_ORDER:
            raise bad("lpc_order", f"must be in [1, {MAX_LPC_ORDER}]")
        if not 1 <= self.mulaw_bits <= 16:
            raise bad("mulaw_bits", "must be in [1, 16]")
        if self.pitch_correlation not in ("xiph", "ncc"):
            raise bad("pitch_correlation", "expected one of xiph, ncc")

    def settings(self) -> FeatureSettings:
        """The immutable :class:`~vocoder.data.FeatureSettings` of these values."""
        return FeatureSettings(**dataclasses.asdict(self))


@dataclass
class SplitsConfig:
    """``data.splits``: sizes of the eval and dev splits (each speaker's last utterances in id order).

    ``None`` (the default) chooses for the corpus: 100 each from 1,000 usable utterances on, 10 %
    each (at least one) below (:func:`vocoder.data.choose_split_sizes`). A value that is set is kept
    as given; one the corpus cannot hold is an error when the corpus is prepared.
    ``held_out_speakers``: ``null`` (none), a number N (the last N speakers in sorted order) or a
    list of speaker names whose utterances only the eval split holds (unseen-speaker evaluation).
    """

    n_eval: int | None = None
    n_dev: int | None = None
    # a number or a list of names: OmegaConf has no union of a number and a list, so checked here
    held_out_speakers: Any = None

    def __post_init__(self) -> None:
        for key in ("n_eval", "n_dev"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(
                    f"data.splits.{key}: must be >= 1, got {value} (or null: chosen for the corpus)"
                )
        held = self.held_out_speakers
        if isinstance(held, bool) or not (
            held is None
            or (isinstance(held, int) and held >= 0)
            or isinstance(held, str)
            or (isinstance(held, list | tuple) and all(isinstance(v, str | int) for v in held))
        ):
            raise ConfigError(
                f"data.splits.held_out_speakers: expected null, a number of speakers >= 0 or a list of "
                f"speaker names, got {held!r}"
            )
        if isinstance(held, list | tuple):
            self.held_out_speakers = [str(name) for name in held]


@dataclass
class DataConfig:
    """``data``: the corpus, where its features are cached, and how they are prepared.

    Attributes:
        name: corpus name (used in paths such as the default cache directory).
        speaker: CMU ARCTIC speaker downloaded when ``root`` is unset.
        root: local corpus directory (or a file list) in ``layout``; ``None`` downloads ``speaker``.
        layout: one of :data:`vocoder.data.LAYOUTS` (``auto``: detected, printed in one line).
        download_dir: where archives are downloaded and extracted.
        base_url: URL of the directory holding the ARCTIC release archives.
        cache_dir: feature cache directory.
        features: feature settings.
        splits: eval/dev split sizes.
        num_workers: feature-extraction processes (0: in the main process).
        on_error: ``skip`` unusable audio files (listed in the summary) or ``fail`` on the first.
        limit: prepare only the first ``limit`` utterances in id order (``None``: all).
    """

    name: str = "slt"
    speaker: str = "slt"
    root: str | None = None
    layout: str = "auto"
    download_dir: str = "downloads"
    base_url: str = DEFAULT_BASE_URL
    cache_dir: str = "cache/slt"
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    splits: SplitsConfig = field(default_factory=SplitsConfig)
    num_workers: int = 2
    on_error: str = "skip"
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.root is None and not self.speaker:  # data=local: nothing to download
            raise ConfigError(
                "data.root: not set; give data.root=DIR (a corpus in any layout) or a file list"
            )
        if self.root is None and self.speaker not in ARCTIC_SPEAKERS:
            raise ConfigError(
                f"data.speaker: unknown CMU ARCTIC speaker {self.speaker!r} "
                f"(one of {', '.join(ARCTIC_SPEAKERS)}); or pass data.root=DIR"
            )
        if self.layout not in LAYOUTS:
            raise ConfigError(f"data.layout: expected one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.root is not None:
            root = Path(self.root).expanduser()
            if self.layout == "filelist" and not root.is_file():
                raise ConfigError(
                    f"data.root: {self.root} is not a file (data.layout=filelist reads a list of paths)"
                )
            if self.layout not in ("filelist", "auto") and not root.is_dir():
                raise ConfigError(f"data.root: {self.root} is not a directory (data.layout={self.layout})")
            if self.layout == "auto" and not root.exists():
                raise ConfigError(
                    f"data.root: {self.root} is not a directory (a corpus in any layout) nor a file list"
                )
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"data.base_url: expected an http:// or https:// URL, got {self.base_url!r}")
        for key in ("cache_dir", "download_dir"):
            if not getattr(self, key).strip():
                raise ConfigError(f"data.{key}: must not be empty")
        if self.num_workers < 0:
            raise ConfigError(f"data.num_workers: must be >= 0, got {self.num_workers}")
        if self.on_error not in ("skip", "fail"):
            raise ConfigError(f"data.on_error: expected skip or fail, got {self.on_error!r}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"data.limit: must be >= 1 or null, got {self.limit}")

    def feature_settings(self) -> FeatureSettings:
        """The immutable :class:`~vocoder.data.FeatureSettings` of ``features``."""
        return self.features.settings()


def validate_data(section: DictConfig) -> DataConfig:
    """Check the ``data`` section of a composed config and return it typed.

    Interpolations (``cache_dir: cache/${data.name}``, ``${vocoder_sample_root:...}``) are resolved
    against the whole config first: merged on its own into the schema, the section would no longer
    find ``data.*`` keys.

    Args:
        section: ``cfg.data`` of the composed Hydra config.

    Returns:
        The validated :class:`DataConfig`.

    Raises:
        ConfigError: one line naming the key (unknown key, wrong type, impossible value, failing
            interpolation).
    """
    try:
        resolved = OmegaConf.create(OmegaConf.to_container(section, resolve=True))
    except OmegaConfBaseException as exc:
        key = str(getattr(exc, "full_key", "") or "")
        key = key if key.startswith("data") else f"data.{key}".rstrip(".")
        raise ConfigError(f"{key}: {str(exc).strip().splitlines()[0]}") from None
    return check_dataclass_section(resolved, DataConfig, "data")
