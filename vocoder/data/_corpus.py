"""Corpora in the CMU ARCTIC release layout.

A corpus directory holds ``wav/<utterance_id>.wav`` and, optionally, the festvox transcript file
``etc/txt.done.data`` with one line per utterance::

    ( arctic_a0001 "Author of the danger trail, Philip Steels, etc." )

Utterances are listed in sorted id order, so everything derived from the listing (splits, the
manifest, statistics) is deterministic whatever the file system's directory order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from vocoder.data._errors import CorpusError

TRANSCRIPT_FILE = Path("etc") / "txt.done.data"
WAV_DIR = "wav"

# ( <id> "<text>" ) — the text may itself contain escaped quotes (\")
_RELEASE_FOLDER = re.compile(r"^cmu_[a-z]+_(?P<speaker>[a-z0-9]+)_arctic")
_FESTVOX_LINE = re.compile(r'^\(\s*(?P<id>\S+)\s+"(?P<text>(?:[^"\\]|\\.)*)"\s*\)$')


@dataclass(frozen=True)
class CorpusUtterance:
    """One utterance of a corpus.

    Attributes:
        id: utterance id, unique in the corpus (the cache entry is ``features/<id>.npz``).
        wav: its audio file (any format soundfile reads, despite the name).
        text: its transcript ("" when the layout gives none).
        speaker: its speaker ("" for none given; a single-speaker corpus has one value throughout).
    """

    id: str
    wav: Path
    text: str
    speaker: str = ""


def read_transcripts(path: str | Path) -> dict[str, str]:
    """Parse a festvox ``txt.done.data`` file into ``{utterance_id: text}``.

    Args:
        path: the transcript file.

    Returns:
        The transcripts by utterance id, with ``\\"`` unescaped.

    Raises:
        CorpusError: a line that is not ``( id "text" )`` (the message names file and line number)
            or an id given twice.
    """
    path = Path(path)
    transcripts: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        match = _FESTVOX_LINE.match(line)
        if match is None:
            raise CorpusError(f'{path}:{number}: not a festvox transcript line ( id "text" ): {line[:60]!r}')
        utterance_id = match["id"]
        if utterance_id in transcripts:
            raise CorpusError(f"{path}:{number}: utterance {utterance_id} is listed twice")
        transcripts[utterance_id] = re.sub(r"\\(.)", r"\1", match["text"])
    return transcripts


def list_utterances(root: str | Path) -> list[CorpusUtterance]:
    """List the utterances of an ARCTIC-layout corpus, sorted by id.

    Every ``wav/*.wav`` file is an utterance (its id is the file stem); its transcript comes from
    ``etc/txt.done.data`` when that file exists. Transcript lines without a wav file are ignored:
    the waveforms define the corpus. The one speaker is named after the release folder
    (``cmu_us_slt_arctic`` → ``slt``; another folder name as it is).

    Args:
        root: the corpus directory (the one holding ``wav/`` and ``etc/``).

    Returns:
        The utterances in sorted id order.

    Raises:
        CorpusError: ``root`` is not a directory or has no ``wav/*.wav`` file.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise CorpusError(
            f"{root}: corpus directory not found; pass data.root=DIR (ARCTIC layout: wav/*.wav)"
        )
    wav_files = sorted((root / WAV_DIR).glob("*.wav"), key=lambda p: p.stem)
    if not wav_files:
        raise CorpusError(f"{root}: not an ARCTIC-layout corpus (no {WAV_DIR}/*.wav files)")
    transcript_path = root / TRANSCRIPT_FILE
    transcripts = read_transcripts(transcript_path) if transcript_path.is_file() else {}
    speaker = arctic_speaker_name(root)
    return [
        CorpusUtterance(id=wav.stem, wav=wav, text=transcripts.get(wav.stem, ""), speaker=speaker)
        for wav in wav_files
    ]


def arctic_speaker_name(root: Path) -> str:
    """The speaker of an ARCTIC release folder: ``cmu_us_slt_arctic`` → ``slt``, else the folder name."""
    match = _RELEASE_FOLDER.match(root.name)
    return match["speaker"] if match else root.name
