"""Corpus layouts: where the recordings, transcripts and speakers of a corpus are (``data.layout``).

=========== ==================================================================================
layout      what it reads
=========== ==================================================================================
``arctic``  ``wav/*.wav`` and ``etc/txt.done.data`` (a CMU ARCTIC release); one speaker
``ljspeech`` ``wavs/*.wav`` and ``metadata.csv`` (``id|text|normalized text``: the normalized
            text where given); one speaker
``vctk``    ``wav48_silence_trimmed/<speaker>/<speaker>_<n>_mic1.flac`` (VCTK 0.92: mic1, or mic2
            where an utterance has no mic1 file; the id drops the ``_micN``) or
            ``wav48/<speaker>/<speaker>_<n>.wav`` (0.80), transcripts ``txt/<speaker>/<id>.txt``
``libritts`` ``[<subset>/]<speaker>/<chapter>/<speaker>_<chapter>_*.wav`` (LibriTTS, LibriTTS-R: the
            root is the corpus with its subsets, e.g. ``train-clean-100/``, or one subset),
            transcripts ``<id>.normalized.txt`` (else ``<id>.original.txt``)
``folder``  every audio file below the root, in any depth of subfolders; the speaker is the first
            subfolder (files directly in the root: one speaker named after it); a ``<name>.txt``
            or ``<name>.lab`` beside ``<name>.wav`` is its transcript
``filelist`` a text file (``data.root=LIST.txt``), one utterance a line: ``PATH`` or
            ``PATH|SPEAKER`` (a tab also separates), paths relative to the list's folder, ``#``
            comments; files without a speaker: one speaker named after the list
``auto``    the first of arctic, ljspeech, vctk, libritts, folder that matches (a file: filelist)
=========== ==================================================================================

Audio files are those with a suffix of a format the installed libsndfile reads
(:data:`AUDIO_SUFFIXES`: ``.wav``, ``.flac``, ``.ogg``, ``.mp3``); names starting with ``.`` (editor
and macOS files) are ignored, symbolic links are followed. Utterance ids are the layout's own
(``arctic_a0001``, ``LJ001-0001``, ``p225_001``, ``19_198_000000_000000``); in the ``folder`` and
``filelist`` layouts they are the file names without their suffix, or — when a name repeats in
several folders — every file's path relative to the root (``alice/take1.wav`` → ``alice_take1``), so
they stay unique. An id that two files would share is a one-line :class:`CorpusError` naming both.
Utterances are listed in sorted id order.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from vocoder.data._corpus import TRANSCRIPT_FILE, WAV_DIR, CorpusUtterance, list_utterances
from vocoder.data._errors import CorpusError

#: Every value of ``data.layout``.
LAYOUTS = ("auto", "arctic", "folder", "ljspeech", "vctk", "libritts", "filelist")
#: Audio file suffixes, each kept only when the installed libsndfile reads its format.
AUDIO_SUFFIXES = tuple(
    suffix
    for suffix, kind in ((".wav", "WAV"), (".flac", "FLAC"), (".ogg", "OGG"), (".mp3", "MP3"))
    if kind in sf.available_formats()
)
VCTK_AUDIO_DIRS = ("wav48_silence_trimmed", "wav48")
LJSPEECH_METADATA = "metadata.csv"
LJSPEECH_WAVS = "wavs"
SIDECAR_TRANSCRIPTS = (".txt", ".lab")

#: The order ``auto`` tries the layouts of a folder in (the most specific first).
_DETECTION_ORDER = ("arctic", "ljspeech", "vctk", "libritts", "folder")
_VCTK_STEM = re.compile(r"^(?P<base>.+?)(?:_mic(?P<mic>[12]))?$")
_LOOKED_FOR = {
    "arctic": f"{WAV_DIR}/*.wav",
    "ljspeech": f"{LJSPEECH_METADATA} and {LJSPEECH_WAVS}/*.wav",
    "vctk": f"{' or '.join(d + '/<speaker>/' for d in VCTK_AUDIO_DIRS)} with audio files",
    "libritts": "[<subset>/]<speaker>/<chapter>/<speaker>_<chapter>_*.wav",
    "folder": f"any {'/'.join(AUDIO_SUFFIXES)} file below it",
    "filelist": "a text file of audio paths (PATH or PATH|SPEAKER per line)",
}


@dataclass(frozen=True)
class Corpus:
    """The utterances of a corpus and how they were found.

    Attributes:
        layout: the layout read (never ``auto``).
        root: the corpus directory (the list file for ``filelist``), absolute.
        utterances: the utterances in sorted id order.
        detail: what of the layout was used (e.g. ``mic1``, the LibriTTS subsets, the id rule).
        requested: the ``data.layout`` asked for (``auto`` when detected).
    """

    layout: str
    root: Path
    utterances: tuple[CorpusUtterance, ...]
    detail: str = ""
    requested: str = "auto"

    def speakers(self) -> dict[str, int]:
        """Utterances per speaker, in sorted speaker order."""
        return dict(sorted(Counter(u.speaker for u in self.utterances).items()))

    def describe(self) -> str:
        """One line: the layout, how it was chosen, utterances, speakers and transcripts."""
        how = "found by data.layout=auto" if self.requested == "auto" else "data.layout"
        speakers = self.speakers()
        named = ", ".join(list(speakers)[:3]) + (", ..." if len(speakers) > 3 else "")
        texts = sum(1 for u in self.utterances if u.text)
        detail = f"; {self.detail}" if self.detail else ""
        return (
            f"corpus: {self.layout} layout ({how}) at {self.root}: {len(self.utterances)} utterances, "
            f"{len(speakers)} speaker{'s' if len(speakers) != 1 else ''} ({named}), "
            f"{texts} with a transcript{detail}"
        )


def discover_corpus(root: str | Path, layout: str = "auto") -> Corpus:
    """List the utterances of a corpus in one of :data:`LAYOUTS` (see the module docstring).

    Args:
        root: the corpus directory, or the list file of the ``filelist`` layout.
        layout: one of :data:`LAYOUTS`; ``auto`` detects it.

    Returns:
        The :class:`Corpus` (its ``describe()`` is the line to print).

    Raises:
        CorpusError: one line: ``root`` missing, a layout that matches nothing (saying what was
            looked for), a malformed transcript or list line (file and line number), or an id two
            files would share.
    """
    if layout not in LAYOUTS:
        raise CorpusError(f"data.layout={layout!r}: expected one of {', '.join(LAYOUTS)}")
    root = Path(root).expanduser().absolute()
    if not root.exists():
        raise CorpusError(f"{root}: corpus not found; pass data.root=DIR (or data.root=LIST.txt)")
    if layout == "auto":
        detected = _detect(root)
        if detected is None:
            looked = "; ".join(f"{_LOOKED_FOR[name]} ({name})" for name in _DETECTION_ORDER)
            raise CorpusError(
                f"{root}: no corpus found (data.layout=auto looked for {looked}); "
                f"or give a file list as data.root=LIST.txt"
            )
    else:
        detected = layout
    if detected == "filelist":
        if not root.is_file():
            raise CorpusError(
                f"{root}: data.layout=filelist needs data.root=LIST.txt, {_LOOKED_FOR['filelist']}"
            )
    elif not root.is_dir():
        raise CorpusError(f"{root}: not a directory (data.layout={layout} reads a corpus folder)")
    utterances, detail = _LISTERS[detected](root)
    if not utterances:
        raise CorpusError(f"{root}: not a {detected} corpus: found no {_LOOKED_FOR[detected]}")
    _check_unique(root, utterances)
    return Corpus(detected, root, tuple(sorted(utterances, key=lambda u: u.id)), detail, layout)


# ------------------------------------------------------------------------------------------ detection
def _detect(root: Path) -> str | None:
    """The first layout whose files are present at ``root``, or ``None``."""
    if root.is_file():
        return "filelist"
    if (root / WAV_DIR).is_dir() and any(_is_audio(p, (".wav",)) for p in (root / WAV_DIR).iterdir()):
        return "arctic"
    if (root / LJSPEECH_METADATA).is_file() and (root / LJSPEECH_WAVS).is_dir():
        return "ljspeech"
    if _vctk_audio_dir(root) is not None:
        return "vctk"
    if _libritts_subsets(root):
        return "libritts"
    if _first_audio_file(root) is not None:
        return "folder"
    return None


def _is_audio(path: Path, suffixes: Sequence[str] = AUDIO_SUFFIXES) -> bool:
    return path.suffix.lower() in suffixes and not path.name.startswith(".") and path.is_file()


def _walk(top: Path) -> Iterable[tuple[Path, list[str]]]:
    """``(folder, file names)`` below ``top`` in sorted order, links followed, hidden entries and
    link cycles skipped."""
    seen: set[tuple[int, int]] = set()
    for folder, dirs, files in os.walk(top, followlinks=True):
        info = os.stat(folder)
        if (info.st_dev, info.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((info.st_dev, info.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        yield Path(folder), sorted(f for f in files if not f.startswith("."))


def _first_audio_file(top: Path) -> Path | None:
    for folder, files in _walk(top):
        for name in files:
            if Path(name).suffix.lower() in AUDIO_SUFFIXES:
                return folder / name
    return None


def _audio_files(top: Path) -> list[tuple[Path, set[str]]]:
    """Every audio file below ``top`` with the names of the files beside it (for sidecar transcripts)."""
    found = []
    for folder, files in _walk(top):
        names = set(files)
        found.extend((folder / name, names) for name in files if Path(name).suffix.lower() in AUDIO_SUFFIXES)
    return found


def _read_text(path: Path) -> str:
    return " ".join(path.read_text(encoding="utf-8", errors="replace").split())


def _unique_ids(paths: Sequence[Path], base: Path) -> tuple[list[str], str]:
    """File names without suffix when they are unique, else every path relative to ``base``."""
    stems = [p.stem for p in paths]
    if len(set(stems)) == len(stems):
        return stems, "ids: file names"
    ids = ["_".join(p.relative_to(base).with_suffix("").parts) for p in paths]
    return ids, "ids: paths below the root (file names repeat across folders)"


def _check_unique(root: Path, utterances: Sequence[CorpusUtterance]) -> None:
    first: dict[str, Path] = {}
    for utterance in utterances:
        if utterance.id in first:
            raise CorpusError(
                f"{root}: utterance id {utterance.id} would come from two files, {first[utterance.id]} "
                f"and {utterance.wav}; rename or remove one"
            )
        first[utterance.id] = utterance.wav


# ------------------------------------------------------------------------------------------ listers
def _arctic(root: Path) -> tuple[list[CorpusUtterance], str]:
    if not any(_is_audio(p, (".wav",)) for p in (root / WAV_DIR).glob("*.wav")):
        raise CorpusError(f"{root}: not an ARCTIC-layout corpus (no {WAV_DIR}/*.wav files)")
    utterances = list_utterances(root)
    has_text = (root / TRANSCRIPT_FILE).is_file()
    return utterances, f"transcripts: {TRANSCRIPT_FILE.as_posix()}" if has_text else "no transcript file"


def _ljspeech(root: Path) -> tuple[list[CorpusUtterance], str]:
    metadata, wavs = root / LJSPEECH_METADATA, root / LJSPEECH_WAVS
    if not metadata.is_file() or not wavs.is_dir():
        raise CorpusError(f"{root}: not an LJSpeech corpus (no {LJSPEECH_METADATA} and {LJSPEECH_WAVS}/)")
    texts: dict[str, str] = {}
    lines = metadata.read_text(encoding="utf-8", errors="replace").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) < 2 or not fields[0].strip():
            raise CorpusError(f"{metadata}:{number}: expected ID|text[|normalized text], got {line[:60]!r}")
        utterance_id = fields[0].strip()
        if Path(utterance_id).suffix.lower() in AUDIO_SUFFIXES:
            utterance_id = Path(utterance_id).stem
        normalized = fields[2].strip() if len(fields) > 2 else ""
        texts[utterance_id] = normalized or fields[1].strip()
    speaker = root.name
    utterances = [
        CorpusUtterance(p.stem, p, texts.get(p.stem, ""), speaker)
        for p in sorted(wavs.iterdir())
        if _is_audio(p)
    ]
    return utterances, f"transcripts: {LJSPEECH_METADATA}"


def _vctk_audio_dir(root: Path) -> Path | None:
    for name in VCTK_AUDIO_DIRS:
        if (root / name).is_dir():
            return root / name
    return None


def _vctk(root: Path) -> tuple[list[CorpusUtterance], str]:
    audio_dir = _vctk_audio_dir(root)
    if audio_dir is None:
        raise CorpusError(f"{root}: not a VCTK corpus (no {' or '.join(VCTK_AUDIO_DIRS)}/ folder)")
    chosen: dict[tuple[str, str], tuple[str, Path]] = {}  # (speaker, id) → (mic, file)
    for speaker_dir in sorted(p for p in audio_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(speaker_dir.iterdir()):
            if not _is_audio(path):
                continue
            match = _VCTK_STEM.match(path.stem)
            key = (speaker_dir.name, match["base"])
            mic = match["mic"] or ""
            # one recording per utterance: mic1 where both microphones were kept
            if key not in chosen or (mic or "9") < (chosen[key][0] or "9"):
                chosen[key] = (mic, path)
    mics = Counter(mic for mic, _ in chosen.values())
    utterances = []
    for (speaker, utterance_id), (_, path) in chosen.items():
        transcript = root / "txt" / speaker / f"{utterance_id}.txt"
        text = _read_text(transcript) if transcript.is_file() else ""
        utterances.append(CorpusUtterance(utterance_id, path, text, speaker))
    detail = f"audio: {audio_dir.name}/"
    if mics.get("1") or mics.get("2"):
        detail += f", mic1 ({mics.get('1', 0)}; mic2 where no mic1 file: {mics.get('2', 0)})"
    return utterances, detail + ", transcripts: txt/"


def _libritts_speakers(base: Path) -> list[Path]:
    """Speaker folders of a LibriTTS subset: ``<digits>/<digits>/`` holding ``<spk>_<chapter>_*`` audio."""
    speakers = []
    for speaker in sorted(p for p in base.iterdir() if p.is_dir() and p.name.isdigit()):
        for chapter in (c for c in speaker.iterdir() if c.is_dir() and c.name.isdigit()):
            prefix = f"{speaker.name}_{chapter.name}_"
            if any(_is_audio(f) for f in chapter.glob(f"{prefix}*")):
                speakers.append(speaker)
                break
    return speakers


def _libritts_subsets(root: Path) -> list[Path]:
    """The subset folders of a LibriTTS root (the root itself when it is one subset)."""
    try:
        if _libritts_speakers(root):
            return [root]
        return [p for p in sorted(root.iterdir()) if p.is_dir() and _libritts_speakers(p)]
    except OSError:
        return []


def _libritts(root: Path) -> tuple[list[CorpusUtterance], str]:
    subsets = _libritts_subsets(root)
    if not subsets:
        raise CorpusError(f"{root}: not a LibriTTS corpus (no {_LOOKED_FOR['libritts']})")
    utterances = []
    for subset in subsets:
        for speaker in _libritts_speakers(subset):
            for chapter in sorted(c for c in speaker.iterdir() if c.is_dir()):
                for path in sorted(chapter.iterdir()):
                    if not _is_audio(path):
                        continue
                    text = ""
                    for kind in (".normalized.txt", ".original.txt"):
                        transcript = chapter / f"{path.stem}{kind}"
                        if transcript.is_file():
                            text = _read_text(transcript)
                            break
                    utterances.append(CorpusUtterance(path.stem, path, text, speaker.name))
    names = ", ".join(s.name for s in subsets) if subsets != [root] else root.name
    return utterances, f"subsets: {names}, transcripts: *.normalized.txt"


def _folder(root: Path) -> tuple[list[CorpusUtterance], str]:
    found = _audio_files(root)
    ids, rule = _unique_ids([path for path, _ in found], root)
    utterances = []
    for utterance_id, (path, beside) in zip(ids, found, strict=True):
        parts = path.relative_to(root).parts
        speaker = parts[0] if len(parts) > 1 else root.name
        text = ""
        for suffix in SIDECAR_TRANSCRIPTS:
            if f"{path.stem}{suffix}" in beside:
                text = _read_text(path.with_suffix(suffix))
                break
        utterances.append(CorpusUtterance(utterance_id, path, text, speaker))
    speakers = len({u.speaker for u in utterances})
    how = "speakers: first subfolder" if speakers > 1 else "one speaker"
    return utterances, f"{rule}, {how}"


def _filelist(list_file: Path) -> tuple[list[CorpusUtterance], str]:
    entries: list[tuple[Path, str]] = []
    for number, line in enumerate(list_file.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = [field.strip() for field in re.split(r"[|\t]", stripped)]
        if len(fields) > 2 or not fields[0]:
            raise CorpusError(f"{list_file}:{number}: expected PATH or PATH|SPEAKER, got {stripped[:60]!r}")
        path = Path(fields[0]).expanduser()
        path = path if path.is_absolute() else list_file.parent / path
        entries.append((Path(os.path.normpath(path)), fields[1] if len(fields) == 2 and fields[1] else ""))
    if not entries:
        return [], ""
    base = Path(os.path.commonpath([str(path.parent) for path, _ in entries]))
    ids, rule = _unique_ids([path for path, _ in entries], base)
    utterances = [
        CorpusUtterance(utterance_id, path, "", speaker or list_file.stem)
        for utterance_id, (path, speaker) in zip(ids, entries, strict=True)
    ]
    return utterances, rule


_LISTERS = {
    "arctic": _arctic,
    "ljspeech": _ljspeech,
    "vctk": _vctk,
    "libritts": _libritts,
    "folder": _folder,
    "filelist": _filelist,
}
