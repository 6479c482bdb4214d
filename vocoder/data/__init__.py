"""Corpora (ARCTIC, LJSpeech, VCTK, LibriTTS, folders, file lists; download, speakers, splits), feature
extraction and cache, torch datasets."""

from vocoder.data._audio import load_audio, load_audio_with_info
from vocoder.data._augment import AugmentDraw, AugmentSettings, augment_waveform, draw_augmentation
from vocoder.data._corpus import CorpusUtterance, list_utterances, read_transcripts
from vocoder.data._datasets import (
    CacheError,
    LPCNetSegments,
    Utterance,
    load_manifest,
    load_stats,
    load_utterance,
    read_split,
)
from vocoder.data._download import (
    ARCTIC_SPEAKERS,
    DEFAULT_BASE_URL,
    KNOWN_CHECKSUMS,
    ArchiveChecksum,
    arctic_archive_name,
    arctic_url,
    download,
    fetch_arctic,
    safe_extract,
    sha256_file,
)
from vocoder.data._errors import BadAudioError, CorpusError, DataError, DownloadError
from vocoder.data._fsutil import write_atomic
from vocoder.data._layouts import AUDIO_SUFFIXES, LAYOUTS, Corpus, discover_corpus
from vocoder.data._mel_segments import MelSegments, log_mel_frames
from vocoder.data._prepare import (
    DataSource,
    PreparedCorpus,
    SkippedFile,
    compute_features,
    ensure_prepared,
    prepare_corpus,
    prepare_data,
)
from vocoder.data._settings import (
    LPCNET_HOP_LENGTH,
    LPCNET_SAMPLE_RATE,
    FeatureSettings,
    standard_analysis,
)
from vocoder.data._splits import (
    DEFAULT_SPLIT_SIZE,
    SMALL_CORPUS_FRACTION,
    SPLITS,
    SplitChoice,
    choose_split_sizes,
    held_out_speaker_names,
    split_by_speaker,
    split_ids,
    write_splits,
)
from vocoder.data._xiph_features import (
    XIPH_FEATURES,
    XIPH_TOTAL_FEATURES,
    read_xiph_features,
    write_xiph_features,
)

__all__ = [
    "AUDIO_SUFFIXES",
    "LAYOUTS",
    "LPCNET_HOP_LENGTH",
    "LPCNET_SAMPLE_RATE",
    "Corpus",
    "discover_corpus",
    "held_out_speaker_names",
    "load_audio_with_info",
    "split_by_speaker",
    "standard_analysis",
    "XIPH_FEATURES",
    "XIPH_TOTAL_FEATURES",
    "read_xiph_features",
    "write_xiph_features",
    "AugmentDraw",
    "AugmentSettings",
    "augment_waveform",
    "draw_augmentation",
    "ARCTIC_SPEAKERS",
    "DEFAULT_BASE_URL",
    "DEFAULT_SPLIT_SIZE",
    "KNOWN_CHECKSUMS",
    "LPCNetSegments",
    "MelSegments",
    "SMALL_CORPUS_FRACTION",
    "SPLITS",
    "ArchiveChecksum",
    "BadAudioError",
    "CacheError",
    "CorpusError",
    "CorpusUtterance",
    "DataError",
    "DataSource",
    "DownloadError",
    "FeatureSettings",
    "PreparedCorpus",
    "SkippedFile",
    "SplitChoice",
    "Utterance",
    "arctic_archive_name",
    "arctic_url",
    "choose_split_sizes",
    "compute_features",
    "download",
    "ensure_prepared",
    "fetch_arctic",
    "list_utterances",
    "load_manifest",
    "load_stats",
    "load_utterance",
    "load_audio",
    "log_mel_frames",
    "prepare_corpus",
    "prepare_data",
    "read_split",
    "read_transcripts",
    "safe_extract",
    "sha256_file",
    "split_ids",
    "write_atomic",
    "write_splits",
]
