"""ARCTIC corpus listing, transcripts, splits and audio loading (bad files, subtypes, resampling)."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
import soundfile as sf

from vocoder.data import (
    BadAudioError,
    CorpusError,
    choose_split_sizes,
    list_utterances,
    load_audio,
    read_transcripts,
    split_ids,
    write_splits,
)


def _sine(n: int, sample_rate: int, frequency: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * frequency * np.arange(n) / sample_rate)


def _write(path, data: np.ndarray, sample_rate: int = 16000, subtype: str = "PCM_16"):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, sample_rate, subtype=subtype)
    return path


# ---------------------------------------------------------------- corpus listing and transcripts


def test_sample_corpus_listing(sample_root):
    utterances = list_utterances(sample_root)
    ids = [u.id for u in utterances]
    assert len(ids) == 40 and ids == sorted(ids)
    assert {p.stem for p in (sample_root / "wav").glob("*.wav")} == set(ids)
    assert all(u.wav == sample_root / "wav" / f"{u.id}.wav" for u in utterances)
    assert utterances[0].id == "arctic_a0001"
    assert utterances[0].text == "Author of the danger trail, Philip Steels, etc."
    assert all(u.text for u in utterances)


def test_listing_is_sorted_whatever_the_creation_order(tmp_path):
    names = ["arctic_b0002", "arctic_a0010", "arctic_a0002", "arctic_b0001"]
    for name in names:
        _write(tmp_path / "wav" / f"{name}.wav", _sine(1600, 16000))
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "txt.done.data").write_text('( arctic_a0002 "two" )\n( arctic_zzzz "no wav" )\n')
    utterances = list_utterances(tmp_path)
    assert [u.id for u in utterances] == sorted(names)
    assert {u.id: u.text for u in utterances}["arctic_a0002"] == "two"
    assert {u.id: u.text for u in utterances}["arctic_b0001"] == ""  # no transcript line: empty text


def test_read_transcripts_festvox_format(tmp_path):
    path = tmp_path / "txt.done.data"
    path.write_text(
        '( arctic_a0001 "Author of the danger trail, Philip Steels, etc." )\n'
        "\n"
        '(arctic_a0002   "He said \\"no\\", twice."   )\n'
        '( arctic_b0539 "" )\n'
    )
    assert read_transcripts(path) == {
        "arctic_a0001": "Author of the danger trail, Philip Steels, etc.",
        "arctic_a0002": 'He said "no", twice.',
        "arctic_b0539": "",
    }


@pytest.mark.parametrize(
    "content, line, reason",
    [
        ('( arctic_a0001 "ok" )\narctic_a0002 no parentheses\n', 2, "not a festvox transcript line"),
        ('( arctic_a0001 "unterminated )\n', 1, "not a festvox transcript line"),
        ('( arctic_a0001 "one" )\n( arctic_a0001 "again" )\n', 2, "listed twice"),
    ],
)
def test_read_transcripts_rejects_malformed_lines(tmp_path, content, line, reason):
    path = tmp_path / "txt.done.data"
    path.write_text(content)
    with pytest.raises(CorpusError, match=reason) as error:
        read_transcripts(path)
    assert str(error.value).startswith(f"{path}:{line}:")


def test_not_a_corpus(tmp_path):
    with pytest.raises(CorpusError, match="corpus directory not found"):
        list_utterances(tmp_path / "missing")
    (tmp_path / "wav").mkdir()
    with pytest.raises(CorpusError, match=r"no wav/\*\.wav"):
        list_utterances(tmp_path)


# ---------------------------------------------------------------- splits


@pytest.mark.parametrize(
    "count, n_eval, n_dev", [(40, 4, 4), (1132, 100, 100), (3, 1, 1), (10, 0, 0), (7, 2, 0)]
)
def test_splits_rule_and_sizes(count, n_eval, n_dev):
    ids = [f"arctic_{i:05d}" for i in range(count)]
    shuffled = ids.copy()
    random.Random(count).shuffle(shuffled)
    splits = split_ids(shuffled, n_eval, n_dev)
    assert splits == split_ids(list(reversed(ids)), n_eval, n_dev)  # independent of input order
    assert (len(splits["train"]), len(splits["dev"]), len(splits["eval"])) == (
        count - n_eval - n_dev,
        n_dev,
        n_eval,
    )
    assert splits["train"] + splits["dev"] + splits["eval"] == ids
    assert splits["eval"] == ids[count - n_eval :]


@pytest.mark.parametrize("count, n_eval, n_dev", [(8, 4, 4), (5, 4, 4), (0, 1, 1), (100, 100, 1)])
def test_splits_too_small_corpus(count, n_eval, n_dev):
    with pytest.raises(
        CorpusError, match=f"has {count} utterances, too few for n_eval={n_eval} \\+ n_dev={n_dev}"
    ):
        split_ids([f"u{i:03d}" for i in range(count)], n_eval, n_dev)


@pytest.mark.parametrize(
    "count, n_eval, n_dev, expected",
    [
        (3, None, None, (1, 1, 1)),
        (5, None, None, (3, 1, 1)),
        (33, None, None, (27, 3, 3)),
        (999, None, None, (801, 99, 99)),
        (1000, None, None, (800, 100, 100)),
        (1132, None, None, (932, 100, 100)),
        (33, 2, 5, (26, 5, 2)),  # explicit sizes are kept as given
        (33, 30, None, (1, 2, 30)),  # the unset one takes what the explicit one leaves
        (5, 2, None, (2, 1, 2)),
    ],
)
def test_choose_split_sizes(count, n_eval, n_dev, expected):
    choice = choose_split_sizes(count, n_eval, n_dev)
    assert (choice.n_train, choice.n_dev, choice.n_eval) == expected
    line = choice.describe()
    assert line.startswith(f"split: train {expected[0]}, dev {expected[1]}, eval {expected[2]} (")
    assert "\n" not in line
    assert choice.adapted == (None in (n_eval, n_dev) and count < 1000)
    assert ("small corpus" in line) == (n_eval is None and n_dev is None and count < 1000)


@pytest.mark.parametrize(
    "count, n_eval, n_dev, message",
    [
        (2, None, None, "2 usable utterances are too few for a train, a dev and an eval split"),
        (0, None, None, "0 usable utterances are too few"),
        (33, 100, 100, "33 usable utterances are too few for n_eval=100 \\+ n_dev=100"),
        (31, 30, None, "31 usable utterances are too few for n_eval=30 \\+ n_dev=auto"),
        (10, -1, None, "data.splits.n_eval: split sizes must be >= 0"),
    ],
)
def test_choose_split_sizes_impossible(count, n_eval, n_dev, message):
    with pytest.raises(CorpusError, match=message):
        choose_split_sizes(count, n_eval, n_dev)


def test_splits_reject_duplicates_and_negative_sizes():
    with pytest.raises(CorpusError, match="duplicate utterance ids: b"):
        split_ids(["a", "b", "b", "c"], 1, 1)
    with pytest.raises(CorpusError, match="must be >= 0"):
        split_ids(["a", "b", "c"], -1, 1)


def test_write_splits(tmp_path):
    splits = split_ids([f"u{i}" for i in range(6)], 2, 1)
    written = write_splits(tmp_path, splits)
    for name, ids in splits.items():
        assert written[name] == tmp_path / "splits" / f"{name}.txt"
        assert written[name].read_text().splitlines() == ids
    assert sorted(p.name for p in (tmp_path / "splits").iterdir()) == ["dev.txt", "eval.txt", "train.txt"]


# ---------------------------------------------------------------- audio loading: bad files


def _wav_bytes(data: np.ndarray, sample_rate: int = 16000, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, data, sample_rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def _make_bad(kind: str, path):
    good = _wav_bytes(_sine(1600, 16000))
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "not_audio":
        path.write_text("this is a transcript, not a waveform\n" * 10)
    elif kind == "corrupt_header":
        broken = bytearray(good)
        broken[20:36] = b"\xff" * 16  # the 'fmt ' chunk body
        path.write_bytes(bytes(broken))
    elif kind == "truncated_header":
        path.write_bytes(good[:30])
    elif kind == "zero_length":
        path.write_bytes(_wav_bytes(np.zeros(0)))
    elif kind == "all_zero":
        path.write_bytes(_wav_bytes(np.zeros(16000)))
    elif kind == "too_short":
        path.write_bytes(_wav_bytes(_sine(400, 16000)))  # 25 ms
    elif kind == "nan":
        path.write_bytes(_wav_bytes(np.full(1600, np.nan), subtype="FLOAT"))
    elif kind == "missing":
        pass
    else:
        raise AssertionError(kind)
    return path


BAD_FILES = {
    "empty": "empty file (0 bytes)",
    "not_audio": "not a readable audio file (Format not recognised.)",
    "corrupt_header": "not a readable audio file (Error in WAV/W64/RF64 file. Malformed 'fmt ' chunk.)",
    "truncated_header": "not a readable audio file (Error in WAV file. No 'data' chunk marker.)",
    "zero_length": "contains no audio samples",
    "all_zero": "all samples are zero (silent file)",
    "too_short": "too short (25.0 ms; at least 50 ms needed)",
    "nan": "contains NaN or infinite samples",
    "missing": "file not found",
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_files_are_reported_by_name_with_reason(tmp_path, kind):
    path = _make_bad(kind, tmp_path / f"{kind}.wav")
    with pytest.raises(BadAudioError) as error:
        load_audio(path, 16000, min_samples=800)
    assert str(error.value) == f"{path}: {BAD_FILES[kind]}"
    assert error.value.path == path and error.value.reason == BAD_FILES[kind]


def test_bad_audio_error_survives_pickling(tmp_path):
    import pickle

    error = BadAudioError(tmp_path / "x.wav", "all samples are zero (silent file)")
    clone = pickle.loads(pickle.dumps(error))
    assert (clone.path, clone.reason, str(clone)) == (error.path, error.reason, str(error))


# ---------------------------------------------------------------- audio loading: formats


@pytest.mark.parametrize(
    "subtype, step",
    [
        ("PCM_U8", 2.0**-7),
        ("PCM_16", 2.0**-15),
        ("PCM_24", 2.0**-23),
        ("PCM_32", 2.0**-31),
        ("FLOAT", 0.0),
        ("DOUBLE", 0.0),
    ],
)
def test_subtypes_load_to_the_same_signal(tmp_path, subtype, step):
    reference = _sine(8000, 16000, amplitude=0.7)
    path = _write(tmp_path / f"{subtype}.wav", reference, subtype=subtype)
    assert sf.info(path).subtype == subtype
    audio = load_audio(path, 16000)
    assert audio.dtype == np.float32 and audio.shape == reference.shape
    # error: one quantization step of the format (rounding) plus float32 storage
    np.testing.assert_allclose(audio, reference, rtol=0, atol=step + 1e-7)
    if step:
        assert (
            np.abs(audio - reference).max() > 0.1 * step
        )  # really quantized: the test can tell formats apart


def test_stereo_is_downmixed_by_averaging(tmp_path):
    left = _sine(4000, 16000, 300.0, 0.6)
    right = _sine(4000, 16000, 1100.0, -0.3)
    path = _write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), subtype="FLOAT")
    assert sf.info(path).channels == 2
    audio = load_audio(path, 16000)
    expected = (left.astype(np.float32).astype(np.float64) + right.astype(np.float32)) / 2
    np.testing.assert_allclose(audio, expected, rtol=0, atol=1e-7)


def test_four_channels_are_averaged(tmp_path):
    channels = np.stack([_sine(1600, 16000, 200.0 * (k + 1), 0.2) for k in range(4)], axis=1)
    audio = load_audio(_write(tmp_path / "quad.wav", channels, subtype="FLOAT"), 16000)
    np.testing.assert_allclose(audio, channels.astype(np.float32).mean(axis=1), rtol=0, atol=1e-7)


@pytest.mark.parametrize("file_rate", [22050, 44100, 8000, 48000])
@pytest.mark.parametrize("n", [22050, 31337])
def test_resampling_to_16k(tmp_path, file_rate, n):
    frequency = 440.0
    path = _write(tmp_path / f"{file_rate}.wav", _sine(n, file_rate, frequency), file_rate, subtype="FLOAT")
    audio = load_audio(path, 16000)
    assert audio.shape == (round(n * 16000 / file_rate),)
    # away from the edges (filter transients) the result is the same sine sampled at 16 kHz
    expected = _sine(audio.shape[0], 16000, frequency)
    margin = 400
    np.testing.assert_allclose(audio[margin:-margin], expected[margin:-margin], rtol=0, atol=2e-3)


def test_no_resampling_at_the_target_rate(tmp_path):
    reference = _sine(3210, 16000)
    audio = load_audio(_write(tmp_path / "x.wav", reference, subtype="FLOAT"), 16000)
    np.testing.assert_array_equal(audio, reference.astype(np.float32))


def test_minimum_length_applies_after_resampling(tmp_path):
    # 1,000 samples at 44.1 kHz are 363 samples at 16 kHz
    path = _write(tmp_path / "short.wav", _sine(1000, 44100), 44100)
    assert load_audio(path, 16000, min_samples=363).shape == (363,)
    with pytest.raises(BadAudioError, match="too short"):
        load_audio(path, 16000, min_samples=364)
