"""Corpus layouts (ARCTIC, LJSpeech, VCTK, LibriTTS, folder, file list), speakers and speaker-aware splits.

Every corpus is built from files of the embedded sample, renamed, cut short and rewritten as each
layout has them: other rates (22.05, 44.1, 48 kHz), stereo, FLAC/OGG, nested folders, several speakers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from vocoder.data import (
    LAYOUTS,
    CorpusError,
    FeatureSettings,
    choose_split_sizes,
    discover_corpus,
    held_out_speaker_names,
    list_utterances,
    prepare_corpus,
    split_by_speaker,
    split_ids,
)

SAMPLE = Path(__file__).resolve().parents[1] / "vocoder" / "data" / "sample" / "kathleen"
SECONDS = 0.6  # each utterance is cut to this: the layouts, not the audio, are under test


@pytest.fixture(scope="module")
def clips() -> list[tuple[str, np.ndarray]]:
    """(transcript, 16 kHz waveform cut to SECONDS) of the first 12 sample utterances."""
    out = []
    for utterance in list_utterances(SAMPLE)[:12]:
        audio, rate = sf.read(utterance.wav, dtype="float32")
        out.append((utterance.text, audio[: int(SECONDS * rate)]))
    return out


def _write(path: Path, audio: np.ndarray, rate: int, channels: int = 1, subtype: str | None = None) -> Path:
    """``audio`` (16 kHz) resampled to ``rate``, as ``channels`` channels, in the format of the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = soxr.resample(audio, 16000, rate, quality="HQ") if rate != 16000 else audio
    if channels > 1:
        data = np.stack([data * (0.9 if c else 1.0) for c in range(channels)], axis=1)
    sf.write(path, data, rate, subtype=subtype)
    return path


def _ljspeech(root: Path, clips) -> Path:
    lines = []
    for number, (text, audio) in enumerate(clips[:6], 1):
        uid = f"LJ001-{number:04d}"
        _write(root / "wavs" / f"{uid}.wav", audio, 22050)
        normalized = text.upper() if number % 2 else ""  # odd lines carry a normalized text
        lines.append(f"{uid}|{text}|{normalized}")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root


def _vctk(root: Path, clips) -> Path:
    for index, (text, audio) in enumerate(clips[:9]):
        speaker = ("p225", "p226", "p227")[index % 3]
        base = f"{speaker}_{index // 3 + 1:03d}"
        _write(root / "wav48_silence_trimmed" / speaker / f"{base}_mic1.flac", audio, 48000)
        if speaker != "p227":  # p227 has mic2 only for its first utterance (mic1 missing)
            _write(root / "wav48_silence_trimmed" / speaker / f"{base}_mic2.flac", audio * 0.5, 48000)
        (root / "txt" / speaker).mkdir(parents=True, exist_ok=True)
        (root / "txt" / speaker / f"{base}.txt").write_text(text + "\n")
    # the first p227 utterance exists as mic2 only
    (root / "wav48_silence_trimmed" / "p227" / "p227_001_mic1.flac").rename(
        root / "wav48_silence_trimmed" / "p227" / "p227_001_mic2.flac"
    )
    return root


def _libritts(root: Path, clips) -> Path:
    layout = [("train-clean-100", "19", "198"), ("train-clean-100", "26", "495"), ("dev-clean", "84", "121")]
    for index, (text, audio) in enumerate(clips[:9]):
        subset, speaker, chapter = layout[index % 3]
        stem = f"{speaker}_{chapter}_{index:06d}_000000"
        folder = root / subset / speaker / chapter
        _write(folder / f"{stem}.wav", audio, 24000)
        (folder / f"{stem}.normalized.txt").write_text(text)
        (folder / f"{stem}.original.txt").write_text(text.lower())
    return root


def _folder(root: Path, clips) -> Path:
    """Nested speakers, repeated file names, mixed formats, rates and channel counts, sidecar text."""
    (text0, a0), (_, a1), (text2, a2), (_, a3), (_, a4), (_, a5) = clips[:6]
    _write(root / "alice" / "session1" / "take1.wav", a0, 44100, channels=2)
    (root / "alice" / "session1" / "take1.txt").write_text(text0)
    _write(root / "alice" / "session2" / "take1.flac", a1, 22050)
    _write(root / "alice" / "take2.ogg", a2, 16000, subtype="VORBIS")
    (root / "alice" / "take2.lab").write_text(text2)
    _write(root / "bob" / "take1.wav", a3, 44100, channels=2, subtype="PCM_24")
    _write(root / "bob" / "deeper" / "still" / "take3.wav", a4, 22050)
    _write(root / "loose.wav", a5, 16000)
    (root / ".hidden.wav").write_bytes(b"editor file")  # hidden: ignored
    (root / "notes.md").write_text("not audio")
    return root


def test_layout_names():
    assert LAYOUTS == ("auto", "arctic", "folder", "ljspeech", "vctk", "libritts", "filelist")


def test_arctic_is_found_as_before(sample_root):
    corpus = discover_corpus(sample_root)
    assert corpus.layout == "arctic" and corpus.requested == "auto"
    assert [u.id for u in corpus.utterances] == [u.id for u in list_utterances(sample_root)]
    assert corpus.speakers() == {"kathleen": 40} and all(u.text for u in corpus.utterances)
    assert discover_corpus(sample_root, "arctic").utterances == corpus.utterances
    line = corpus.describe()
    assert line.startswith(
        f"corpus: arctic layout (found by data.layout=auto) at {sample_root}: 40 utterances"
    )
    assert "\n" not in line


def test_ljspeech(tmp_path, clips):
    root = _ljspeech(tmp_path / "LJSpeech-1.1", clips)
    corpus = discover_corpus(root)
    assert corpus.layout == "ljspeech"
    assert [u.id for u in corpus.utterances] == [f"LJ001-{n:04d}" for n in range(1, 7)]
    texts = {u.id: u.text for u in corpus.utterances}
    assert texts["LJ001-0001"] == clips[0][0].upper()  # the normalized text where the line has one
    assert texts["LJ001-0002"] == clips[1][0]  # else the raw text
    assert corpus.speakers() == {"LJSpeech-1.1": 6}
    (root / "metadata.csv").write_text("LJ001-0001 no separator\n")
    with pytest.raises(CorpusError, match=r"metadata\.csv:1: expected ID\|text"):
        discover_corpus(root)


def test_vctk_speakers_mics_and_transcripts(tmp_path, clips):
    root = _vctk(tmp_path / "VCTK-Corpus-0.92", clips)
    corpus = discover_corpus(root)
    assert corpus.layout == "vctk"
    ids = [u.id for u in corpus.utterances]
    assert ids == sorted(f"p22{s}_{n:03d}" for s in (5, 6, 7) for n in (1, 2, 3))  # one file per utterance
    by_id = {u.id: u for u in corpus.utterances}
    assert by_id["p225_001"].wav.name == "p225_001_mic1.flac"  # mic1 where both exist
    assert by_id["p227_001"].wav.name == "p227_001_mic2.flac"  # mic2 where mic1 is missing
    assert corpus.speakers() == {"p225": 3, "p226": 3, "p227": 3}
    assert by_id["p226_002"].text == clips[4][0]
    assert "mic1 (8; mic2 where no mic1 file: 1)" in corpus.describe()


def test_libritts_subsets_speakers_and_normalized_text(tmp_path, clips):
    root = _libritts(tmp_path / "LibriTTS", clips)
    corpus = discover_corpus(root)
    assert corpus.layout == "libritts"
    assert corpus.speakers() == {"19": 3, "26": 3, "84": 3}
    by_id = {u.id: u for u in corpus.utterances}
    assert by_id["19_198_000000_000000"].text == clips[0][0]  # normalized, not the original
    assert "subsets: dev-clean, train-clean-100" in corpus.describe()
    subset = discover_corpus(root / "train-clean-100")  # one subset as the root
    assert subset.layout == "libritts" and subset.speakers() == {"19": 3, "26": 3}


def test_folder_nested_unique_ids_speakers_and_sidecar_text(tmp_path, clips):
    root = _folder(tmp_path / "recordings", clips)
    corpus = discover_corpus(root)
    assert corpus.layout == "folder"
    # "take1" repeats across folders: every id is the path below the root
    assert [u.id for u in corpus.utterances] == [
        "alice_session1_take1",
        "alice_session2_take1",
        "alice_take2",
        "bob_deeper_still_take3",
        "bob_take1",
        "loose",
    ]
    by_id = {u.id: u for u in corpus.utterances}
    assert {u.id: u.speaker for u in corpus.utterances} == {
        "alice_session1_take1": "alice",
        "alice_session2_take1": "alice",
        "alice_take2": "alice",
        "bob_deeper_still_take3": "bob",
        "bob_take1": "bob",
        "loose": "recordings",
    }
    assert by_id["alice_session1_take1"].text == clips[0][0] and by_id["alice_take2"].text == clips[2][0]
    assert by_id["bob_take1"].text == ""
    assert "ids: paths below the root" in corpus.describe()
    # unique names: the ids are the file names
    flat = tmp_path / "flat"
    for name in ("b.wav", "a.flac"):
        _write(flat / "one" / name, clips[0][1], 16000)
    assert [u.id for u in discover_corpus(flat).utterances] == ["a", "b"]
    # two files that would share an id
    _write(flat / "one" / "a.wav", clips[0][1], 16000)
    two_files = r"utterance id one_a would come from two files, .*a\.flac and .*a\.wav"
    with pytest.raises(CorpusError, match=two_files):
        discover_corpus(flat)


def test_filelist_paths_and_speakers(tmp_path, clips):
    audio = tmp_path / "audio"
    for index, (_, clip) in enumerate(clips[:4]):
        _write(audio / f"spk{index % 2}" / f"utt{index}.wav", clip, 22050)
    listing = tmp_path / "lists" / "train.txt"
    listing.parent.mkdir()
    listing.write_text(
        "# HiFi-GAN-style list\n"
        "../audio/spk0/utt0.wav|anna\n"
        f"{audio / 'spk1' / 'utt1.wav'}\tben\n"
        "\n"
        "../audio/spk0/utt2.wav|anna\n"
        "../audio/spk1/utt3.wav\n"
    )
    corpus = discover_corpus(listing)  # a file: auto reads it as a list
    assert corpus.layout == "filelist" and corpus.root == listing
    assert [(u.id, u.speaker) for u in corpus.utterances] == [
        ("utt0", "anna"),
        ("utt1", "ben"),
        ("utt2", "anna"),
        ("utt3", "train"),  # no speaker given: one named after the list
    ]
    assert corpus.utterances[1].wav == audio / "spk1" / "utt1.wav"
    listing.write_text("a.wav|anna|extra\n")
    with pytest.raises(CorpusError, match=r"train\.txt:1: expected PATH or PATH\|SPEAKER"):
        discover_corpus(listing)


@pytest.mark.parametrize(
    "layout, make, message",
    [
        ("auto", None, r"no corpus found \(data\.layout=auto looked for wav/\*\.wav .*\(arctic\); "
                       r"metadata\.csv and wavs/\*\.wav \(ljspeech\).*\(folder\)\); or give a file list"),
        ("ljspeech", None, r"not an LJSpeech corpus \(no metadata\.csv and wavs/\)"),
        ("vctk", None, r"not a VCTK corpus \(no wav48_silence_trimmed or wav48/ folder\)"),
        ("libritts", None, r"not a LibriTTS corpus"),
        ("arctic", None, r"not an ARCTIC-layout corpus \(no wav/\*\.wav files\)"),
        ("folder", "text", r"not a folder corpus: found no any \.wav/\.flac/\.ogg/\.mp3 file below it"),
        ("filelist", None, r"data\.layout=filelist needs data\.root=LIST\.txt"),
        ("ljspeech", "empty_ljspeech", r"not a ljspeech corpus: found no metadata\.csv and wavs/\*\.wav"),
        ("bogus", None, r"data\.layout='bogus': expected one of auto, arctic"),
    ],
)
def test_a_layout_that_matches_nothing_is_one_line(tmp_path, layout, make, message):
    root = tmp_path / "corpus"
    root.mkdir()
    if make == "text":
        (root / "readme.txt").write_text("no audio here")
    if make == "empty_ljspeech":
        (root / "wavs").mkdir()
        (root / "metadata.csv").write_text("")
    with pytest.raises(CorpusError, match=message) as error:
        discover_corpus(root, layout)
    assert "\n" not in str(error.value)
    assert str(error.value).startswith(str(root) if layout != "bogus" else "data.layout")


# ------------------------------------------------------------------------------ speaker-aware splits
def _speakers(sizes: dict[str, int]) -> dict[str, str]:
    return {f"{speaker}_{i:03d}": speaker for speaker, size in sizes.items() for i in range(size)}


@pytest.mark.parametrize("count, n_eval, n_dev", [(40, 4, 4), (1132, 100, 100), (3, 1, 1), (7, 2, 0)])
def test_one_speaker_splits_exactly_as_before(count, n_eval, n_dev):
    speaker_of = {f"arctic_{i:05d}": "slt" for i in range(count)}
    assert split_by_speaker(speaker_of, n_eval, n_dev) == split_ids(list(speaker_of), n_eval, n_dev)


def test_eval_and_dev_are_shared_in_proportion_and_are_each_speakers_last():
    speaker_of = _speakers({"a": 60, "b": 30, "c": 10})
    splits = split_by_speaker(speaker_of, n_eval=10, n_dev=5)
    counts = {name: {s: sum(speaker_of[u] == s for u in ids) for s in "abc"} for name, ids in splits.items()}
    assert counts["eval"] == {"a": 6, "b": 3, "c": 1}  # Sainte-Laguë: 60/30/10 of 10 seats
    assert counts["dev"] == {"a": 3, "b": 2, "c": 0}  # 3 / 1.5 / 0.5 of five: b wins the tie with c
    assert sorted(splits["train"] + splits["dev"] + splits["eval"]) == sorted(speaker_of)
    for speaker in "abc":  # each speaker's last utterances: eval, the ones before them: dev
        own = sorted(u for u in speaker_of if speaker_of[u] == speaker)
        k_eval, k_dev = counts["eval"][speaker], counts["dev"][speaker]
        assert own[len(own) - k_eval :] == [u for u in splits["eval"] if speaker_of[u] == speaker]
        assert own[len(own) - k_eval - k_dev : len(own) - k_eval] == [
            u for u in splits["dev"] if speaker_of[u] == speaker
        ]
    # deterministic whatever the input order
    assert split_by_speaker(dict(reversed(list(speaker_of.items()))), 10, 5) == splits


def test_every_speaker_keeps_a_training_utterance_while_others_have_room():
    speaker_of = _speakers({"a": 1, "b": 2, "c": 12})
    splits = split_by_speaker(speaker_of, n_eval=3, n_dev=3)
    assert {speaker_of[u] for u in splits["train"]} == {"a", "b", "c"}
    # speakers of one utterance each: dev/eval must then take whole speakers
    tiny = _speakers({f"s{i}": 1 for i in range(5)})
    splits = split_by_speaker(tiny, n_eval=1, n_dev=1)
    assert [len(splits[name]) for name in ("train", "dev", "eval")] == [3, 1, 1]


def test_held_out_speakers():
    speaker_of = _speakers({"a": 20, "b": 20, "c": 20, "d": 10})
    assert held_out_speaker_names(list(speaker_of.values()), 2) == ("c", "d")  # the last two
    assert held_out_speaker_names(list(speaker_of.values()), ["b"]) == ("b",)
    assert held_out_speaker_names(list(speaker_of.values()), None) == ()
    splits = split_by_speaker(speaker_of, n_eval=6, n_dev=4, held_out_speakers=("c", "d"))
    assert {speaker_of[u] for u in splits["eval"]} == {"c", "d"} and len(splits["eval"]) == 6
    assert {speaker_of[u] for u in splits["train"] + splits["dev"]} == {"a", "b"}
    assert len(splits["train"]) == 36 and len(splits["dev"]) == 4
    choice = choose_split_sizes(70, None, None, held_out=30, held_out_speakers=("c", "d"))
    assert (choice.n_train, choice.n_dev, choice.n_eval, choice.unused) == (33, 7, 7, 23)
    line = choice.describe()
    assert "eval: 2 held-out speakers unseen in train and dev: c, d; their other 23 utterances" in line
    for request, message in [
        (4, "held_out_speakers=4: the corpus has 4 speakers; at least one must stay"),
        (["x"], "no speaker 'x' among the corpus's 4 \\(a, b, c, d\\)"),
        (["a", "b", "c", "d"], "names every speaker"),
    ]:
        with pytest.raises(CorpusError, match=message):
            held_out_speaker_names(list(speaker_of.values()), request)
    with pytest.raises(CorpusError, match="have 10 usable utterances, too few for n_eval=11"):
        choose_split_sizes(70, 11, None, held_out=10, held_out_speakers=("d",))


# ------------------------------------------------------------------------------ preparation
def test_prepare_vctk_with_held_out_speakers_records_them(tmp_path, clips):
    root = _vctk(tmp_path / "vctk", clips)
    cache = tmp_path / "cache"
    kwargs = dict(n_eval=2, n_dev=2, num_workers=0, progress=False, held_out_speakers=["p227"])
    result = prepare_corpus(root, cache, FeatureSettings(), **kwargs)
    assert set(result.splits["eval"]) == {"p227_002", "p227_003"}  # p227's last two
    assert not {u for name in ("train", "dev") for u in result.splits[name]} & {"p227_001"}
    assert len(result.splits["train"]) == 4 and len(result.splits["dev"]) == 2
    manifest = json.loads((cache / "manifest.json").read_text())
    assert manifest["layout"] == "vctk" and manifest["speakers"] == {"p225": 3, "p226": 3, "p227": 3}
    assert manifest["splits"]["held_out_speakers"] == ["p227"] and manifest["splits"]["unused"] == 1
    assert manifest["splits"]["requested"]["held_out_speakers"] == ["p227"]
    records = {r["id"]: r for r in manifest["utterances"]}
    assert records["p226_001"]["speaker"] == "p226" and records["p226_001"]["file_rate"] == 48000
    assert records["p226_001"]["text"] == clips[1][0]
    summary = result.summary()
    assert summary.splitlines()[0].startswith("corpus: vctk layout (found by data.layout=auto)")
    assert "files: resampled to 16000 Hz (soxr HQ): 9 at 48000 Hz" in summary
    assert "utterances: 9 (train 4, dev 2, eval 2, 1 of held-out speakers in no split); computed 9" in summary
    again = prepare_corpus(root, cache, FeatureSettings(), **kwargs)
    assert (again.computed, again.up_to_date, again.splits) == (0, 9, result.splits)
    # another held-out request is another split over the same entries
    other = prepare_corpus(root, cache, FeatureSettings(), **{**kwargs, "held_out_speakers": 1})
    assert other.computed == 0 and other.splits == result.splits  # 1 = the last speaker, p227
    plain = prepare_corpus(root, cache, FeatureSettings(), **{**kwargs, "held_out_speakers": None})
    assert {u[:4] for u in plain.splits["eval"]} == {"p225", "p226"}  # 3 × 3: ties go to the first names


def test_prepare_mixed_folder_resamples_and_downmixes(tmp_path, clips):
    root = _folder(tmp_path / "recordings", clips)
    cache = tmp_path / "cache"
    result = prepare_corpus(root, cache, FeatureSettings(), n_eval=1, n_dev=1, num_workers=0, progress=False)
    assert sum(len(ids) for ids in result.splits.values()) == 6 and not result.skipped
    assert result.conversion == (
        "files: resampled to 16000 Hz (soxr HQ): 2 at 22050 Hz, 2 at 44100 Hz; "
        "2 multi-channel files averaged to mono"
    )
    with np.load(cache / "features" / "bob_take1.npz") as entry:
        frames = entry["mel"].shape[0]
        assert frames == int(SECONDS * 100) and entry["audio"].shape == (frames * 160,)
        assert entry["features"].shape == (frames, 20)
