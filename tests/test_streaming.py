"""Streaming synthesis: pushes of any size equal offline synthesis; streams are independent; the CLI pipe."""

from __future__ import annotations

import dataclasses
import io
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from vocoder.data import FeatureSettings, write_xiph_features, xiph_feature_delay
from vocoder.inference import (
    AudioWriter,
    FrameReader,
    IAFVocoder,
    LPCNetVocoder,
    SynthesisError,
    frame_network_terms,
    load,
    pack_frame_network,
    stream_synthesize,
)
from vocoder.models import IAFStudent, LPCNet

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]
SLT_WAV = REPO / "vocoder" / "data" / "sample" / "slt" / "wav" / "arctic_a0009.wav"
LPCNET = dict(frame_channels=16, pitch_embedding_size=8, sample_embedding_size=8, gru_a_size=32, gru_b_size=8)
N_MELS = 80
STUDENT = dict(n_mels=N_MELS, hop_length=160, flow_layers=[2, 2], dilation_cycle=2, residual_channels=8,
               gate_channels=8)
#: chunk patterns: fixed sizes, and seeded random sizes (zero-frame pushes included)
PATTERNS = ["1", "3", "7", "random"]


def _sizes(pattern: str, total: int, seed: int = 0) -> list[int]:
    rng = np.random.default_rng(seed)
    sizes: list[int] = []
    while sum(sizes) < total:
        sizes.append(int(rng.integers(0, 9)) if pattern == "random" else int(pattern))
    return sizes


def _stream_all(stream, frames: np.ndarray, sizes: list[int]) -> np.ndarray:
    pieces, first = [], 0
    for size in sizes:
        pieces.append(stream.push(frames[first : first + size]))
        first += size
    pieces.append(stream.flush())
    return np.concatenate(pieces)


def _lpcnet_model() -> LPCNet:
    torch.manual_seed(0)
    return LPCNet(**LPCNET).eval()


@pytest.fixture(scope="module")
def speech_features() -> np.ndarray:
    """LPCNet features of 0.25 s of real speech (25 frames)."""
    vocoder = LPCNetVocoder(_lpcnet_model(), FeatureSettings())
    wave, _ = sf.read(SLT_WAV, dtype="float32")
    return vocoder.analyze(wave[8000:12000]).astype(np.float32)


@pytest.mark.parametrize("backend", ["fast", "int8", "int8_xiph"])
@pytest.mark.parametrize("pattern", PATTERNS)
def test_lpcnet_stream_is_sample_exact(speech_features, backend, pattern):
    # exact by construction: the frame terms and LPC are computed row by row in a fixed order, the
    # sampler carries its whole state, the uniforms come from the utterance's generator in order
    vocoder = LPCNetVocoder(_lpcnet_model(), FeatureSettings(), backend=backend)
    offline = vocoder.synthesize([speech_features], seed=7)[0]
    streamed = _stream_all(vocoder.stream(seed=7), speech_features, _sizes(pattern, len(speech_features)))
    assert streamed.dtype == np.float32 and streamed.shape == offline.shape
    np.testing.assert_array_equal(streamed, offline)


def test_lpcnet_stream_torch_backend_is_sample_exact(speech_features):
    vocoder = LPCNetVocoder(_lpcnet_model(), FeatureSettings(), backend="torch")
    frames = speech_features[:8]
    offline = vocoder.synthesize([frames], seed=2)[0]
    np.testing.assert_array_equal(_stream_all(vocoder.stream(seed=2), frames, _sizes("random", 8)), offline)


def test_lpcnet_delay_and_what_each_push_returns(speech_features):
    vocoder = LPCNetVocoder(_lpcnet_model(), FeatureSettings())
    stream = vocoder.stream(seed=0)
    assert stream.delay_frames == vocoder.model.frame_context == 2 and stream.delay_ms == pytest.approx(20.0)
    returned = 0
    for pushed in range(1, 6):
        returned += len(stream.push(speech_features[pushed - 1]))  # one (C,) frame at a time
        assert returned == max(0, pushed - 2) * 160
    assert len(stream.flush()) == 2 * 160  # the end of the utterance stands in for the look-ahead
    assert stream.flush().size == 0


def test_two_interleaved_streams_are_independent(speech_features):
    vocoder = LPCNetVocoder(_lpcnet_model(), FeatureSettings(), backend="int8")
    inputs = [speech_features, speech_features[::-1].copy()]
    offline = [vocoder.synthesize([inputs[0]], seed=1)[0], vocoder.synthesize([inputs[1]], seed=4)[0]]
    streams = [vocoder.stream(seed=1), vocoder.stream(seed=4)]
    sizes = [_sizes("random", len(speech_features), seed=s) for s in (5, 6)]
    pieces: list[list[np.ndarray]] = [[], []]
    positions = [0, 0]
    for step in range(max(map(len, sizes))):
        for k in (1, 0):  # alternate, the second stream first
            if step < len(sizes[k]):
                frames = inputs[k][positions[k] : positions[k] + sizes[k][step]]
                pieces[k].append(streams[k].push(frames))
                positions[k] += sizes[k][step]
    for k in (0, 1):
        pieces[k].append(streams[k].flush())
        np.testing.assert_array_equal(np.concatenate(pieces[k]), offline[k])
    assert not np.array_equal(offline[0][:1000], offline[1][:1000])


def test_bad_pushes_are_refused_and_leave_the_stream_unchanged(speech_features):
    vocoder = LPCNetVocoder(_lpcnet_model(), FeatureSettings())
    offline = vocoder.synthesize([speech_features], seed=3)[0]
    stream = vocoder.stream(seed=3)
    pieces = [stream.push(speech_features[:4])]
    bad = speech_features[4:6].copy()
    bad[1, 0] = np.nan
    with pytest.raises(SynthesisError, match="non-finite"):
        stream.push(bad)
    with pytest.raises(SynthesisError, match=r"\(T, 20\)"):
        stream.push(np.zeros((3, 18), np.float32))
    pieces.append(stream.push(speech_features[4:]))
    pieces.append(stream.flush())
    np.testing.assert_array_equal(np.concatenate(pieces), offline)
    with pytest.raises(SynthesisError, match="after flush"):
        stream.push(speech_features[:1])


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
def test_frame_network_kernel_matches_the_module(speech_features, dtype, tolerance):
    model = _lpcnet_model().to(dtype)
    with torch.no_grad():
        model.pitch_embedding.weight.normal_()  # non-trivial period rows
    padded = np.concatenate([speech_features[:1]] * 2 + [speech_features] + [speech_features[-1:]] * 2)[None]
    a_frame, b_frame = frame_network_terms(pack_frame_network(model), padded)
    with torch.no_grad():
        a_ref, b_ref = model.frame_projections(model.frame_rate_network(torch.from_numpy(padded).to(dtype)))
    assert a_frame.shape == (1, len(speech_features), 3 * LPCNET["gru_a_size"])
    # float32: sums of ~250 products of O(1) terms in another order (≈ 1e-6 each) through tanh layers
    np.testing.assert_allclose(a_frame, a_ref.numpy(), rtol=0, atol=tolerance)
    np.testing.assert_allclose(b_frame, b_ref.numpy(), rtol=0, atol=tolerance)


def _student(upsample: str, **options) -> IAFVocoder:
    torch.manual_seed(0)
    model = IAFStudent(**STUDENT, upsample=upsample, **options)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.1)
    mean, std = torch.linspace(-8.0, -2.0, N_MELS), torch.linspace(1.0, 3.0, N_MELS)
    return IAFVocoder(model.eval(), FeatureSettings(), mean, std)


def _mel(frames: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((frames, N_MELS)) * 2.0 - 5.0).astype(np.float32)


@pytest.mark.parametrize("upsample, options, delay", [
    ("centred", {"upsample_context": 1}, 2),
    ("repeat", {}, 0),
    ("transposed", {"upsample_overlap": 40}, 1),
])
@pytest.mark.parametrize("pattern", PATTERNS)
def test_iaf_stream_equals_offline(upsample, options, delay, pattern):
    vocoder = _student(upsample, **options)
    mel = _mel(23)
    offline = vocoder.synthesize([mel], seed=5)[0]
    stream = vocoder.stream(seed=5)
    assert stream.delay_frames == delay and stream.delay_ms == pytest.approx(10.0 * delay)
    streamed = _stream_all(stream, mel, _sizes(pattern, len(mel)))
    assert streamed.shape == offline.shape
    # the same noise and arithmetic over other block boundaries: float32 products over other row
    # counts differ by a few ulps per layer (relative ~1e-7), compounded over 2 flows × 2 layers
    np.testing.assert_allclose(streamed, offline, rtol=0, atol=1e-5 * float(np.abs(offline).max()))


def test_iaf_streams_interleaved_and_delay():
    vocoder = _student("centred", upsample_context=1)
    mels = [_mel(12, seed=1), _mel(9, seed=2)]
    offline = [vocoder.synthesize([m], seed=s)[0] for m, s in zip(mels, (3, 8), strict=True)]
    streams = [vocoder.stream(seed=3), vocoder.stream(seed=8)]
    pieces: list[list[np.ndarray]] = [[], []]
    for step in range(12):
        for k in (0, 1):
            if step < len(mels[k]):
                pieces[k].append(streams[k].push(mels[k][step : step + 1]))
                assert sum(map(len, pieces[k])) == max(0, step + 1 - 2) * 160
    for k in (0, 1):
        pieces[k].append(streams[k].flush())
        np.testing.assert_allclose(np.concatenate(pieces[k]), offline[k], rtol=0,
                                   atol=1e-5 * float(np.abs(offline[k]).max()))


def test_the_wavenet_teacher_has_no_stream():
    from vocoder.inference import WaveNetVocoder
    from vocoder.models import WaveNetTeacher

    teacher = WaveNetTeacher(n_mels=N_MELS, layers=2, dilation_cycle=2, residual_channels=4, gate_channels=8,
                             skip_channels=4, mixture_components=2)
    vocoder = WaveNetVocoder(teacher, FeatureSettings(), torch.zeros(N_MELS), torch.ones(N_MELS))
    with pytest.raises(SynthesisError, match=r"WaveNetVocoder \(WaveNetTeacher\) has no streaming synthesis"):
        vocoder.stream(seed=0)


class _Pipe(io.RawIOBase):
    """A non-seekable byte stream that hands out at most ``chunk`` bytes per read (a pipe)."""

    def __init__(self, data: bytes = b"", chunk: int = 100) -> None:
        self.data, self.position, self.chunk, self.written = data, 0, chunk, bytearray()

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read1(self, size: int = -1) -> bytes:
        piece = self.data[self.position : self.position + min(size, self.chunk)]
        self.position += len(piece)
        return piece

    def write(self, data) -> int:
        self.written += data
        return len(data)


def test_frame_reader_f32_and_npy(speech_features):
    xiph = np.concatenate([speech_features, np.ones((len(speech_features), 16), np.float32)], axis=1)
    inputs = ((xiph.astype("<f4").tobytes(), "f32"), (_npy_bytes(speech_features.astype(">f8")), "npy"))
    for data, kind in inputs:
        chunks = list(FrameReader(_Pipe(data, chunk=100), "pipe", 20))
        assert len(chunks) > 3, kind  # frames come as they arrive, not at the end
        np.testing.assert_array_equal(np.concatenate(chunks), speech_features)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize("case, message", [
    ("f32_truncated", "truncated xiph .f32 input: 3 complete frames and 8 more bytes"),
    ("npy_truncated", "truncated .npy input: 3 complete frames"),
    ("npy_width", r"must be \(T, 20\), got \(5, 18\)"),
    ("empty", "empty input"),
])
def test_frame_reader_refuses_bad_input_after_the_complete_frames(speech_features, case, message):
    frames = speech_features[:5]
    xiph = np.concatenate([frames, np.zeros((5, 16), np.float32)], 1).astype("<f4").tobytes()
    data = {
        "f32_truncated": xiph[: 3 * 144 + 8],
        "npy_truncated": _npy_bytes(frames)[: -(80 + 4)],
        "npy_width": _npy_bytes(frames[:, :18]),
        "empty": b"",
    }[case]
    reader = FrameReader(_Pipe(data, chunk=1000), "pipe", 20)
    got = []
    with pytest.raises(SynthesisError, match=message) as error:
        for chunk in reader:
            got.append(chunk)
    assert "\n" not in str(error.value)
    if case.endswith("truncated"):
        np.testing.assert_array_equal(np.concatenate(got), frames[:3])


def test_wav_header_unknown_size_on_a_pipe_patched_on_a_file(tmp_path):
    audio = np.linspace(-1.0, 1.0, 999, dtype=np.float32)
    pipe = _Pipe()
    writer = AudioWriter(pipe, 16000)
    writer.write(audio[:500])
    writer.write(audio[500:])
    writer.close()
    data = bytes(pipe.written)
    assert data[:4] == b"RIFF" and struct.unpack("<I", data[4:8])[0] == 0xFFFFFFFF
    assert data[36:40] == b"data" and struct.unpack("<I", data[40:44])[0] == 0xFFFFFFFF
    decoded, rate = sf.read(io.BytesIO(data), dtype="float32")  # readers take the data to the end
    assert rate == 16000 and len(decoded) == 999
    path = tmp_path / "out.wav"
    with open(path, "wb") as sink:
        writer = AudioWriter(sink, 16000)
        writer.write(audio)
        writer.close()
    assert struct.unpack("<I", path.read_bytes()[40:44])[0] == 2 * 999
    reference = tmp_path / "reference.wav"
    sf.write(reference, audio, 16000, subtype="PCM_16")  # the batch path's conversion
    np.testing.assert_array_equal(sf.read(path, dtype="int16")[0], sf.read(reference, dtype="int16")[0])


def test_stream_synthesize_writes_the_frames_before_a_bad_one(speech_features):
    vocoder = LPCNetVocoder(_lpcnet_model(), FeatureSettings(), backend="int8")
    frames = np.concatenate([speech_features[:9], np.zeros((9, 16), np.float32)], 1)
    frames[6, 2] = np.inf
    pipe = _Pipe(frames.astype("<f4").tobytes(), chunk=3 * 144 + 5)
    with pytest.raises(SynthesisError, match="frame 6: non-finite values"):
        stream_synthesize(vocoder.stream(seed=0), FrameReader(pipe, "pipe", 20), AudioWriter(pipe, 16000))
    written, _ = sf.read(io.BytesIO(bytes(pipe.written)), dtype="int16")
    expected = vocoder.synthesize([speech_features[:6]], seed=0)[0]
    buffer = io.BytesIO()
    sf.write(buffer, expected, 16000, subtype="PCM_16", format="WAV")
    np.testing.assert_array_equal(written, sf.read(io.BytesIO(buffer.getvalue()), dtype="int16")[0])


# --------------------------------------------------------------------------------------- the CLI pipe


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    model = _lpcnet_model()
    config = {"model": {"_target_": "vocoder.models.LPCNet", **LPCNET},
              "data": {"features": dataclasses.asdict(FeatureSettings())}}
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    torch.save({"model": model.state_dict(), "ema": model.state_dict(), "optimizer": {}, "step": 1,
                "config": config}, path)
    return path


def _pipe(checkpoint: Path, data: bytes, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vocoder.synth", f"checkpoint={checkpoint}", "input=-",
                           "output=-", "backend=int8", *args], input=data, capture_output=True, timeout=300)


def _wav_int16(audio: np.ndarray) -> np.ndarray:
    buffer = io.BytesIO()
    sf.write(buffer, audio, 16000, subtype="PCM_16", format="WAV")
    return sf.read(io.BytesIO(buffer.getvalue()), dtype="int16")[0]


def test_cli_pipe_round_trip_and_truncated_input(tmp_path, checkpoint, speech_features):
    path = write_xiph_features(tmp_path / "utterance.f32", speech_features)
    data = path.read_bytes()
    expected = load(checkpoint, backend="int8").synthesize([speech_features], seed=0)[0]

    done = _pipe(checkpoint, data, "xiph_writer=vocoder")  # rows at our frame positions: nothing to drop
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout[:4] == b"RIFF" and done.stdout[40:44] == b"\xff\xff\xff\xff"  # a pipe: unknown size
    audio, rate = sf.read(io.BytesIO(done.stdout), dtype="int16")
    assert rate == 16000
    np.testing.assert_array_equal(audio, _wav_int16(expected))  # what output_dir= would have written
    assert b"streamed 25 frames" in done.stderr and b"delay 2 frames = 20 ms" in done.stderr

    # rows as xiph's dump_data writes them lie 240 samples early: the stream drops that many
    shifted = _pipe(checkpoint, data)
    assert shifted.returncode == 0, shifted.stderr.decode()
    np.testing.assert_array_equal(sf.read(io.BytesIO(shifted.stdout), dtype="int16")[0],
                                  _wav_int16(expected)[xiph_feature_delay("dump_data"):])

    truncated = _pipe(checkpoint, data[: 10 * 144 + 100], "xiph_writer=vocoder")
    lines = truncated.stderr.decode().strip().splitlines()
    assert truncated.returncode == 1 and len(lines) == 1, lines
    assert "truncated xiph .f32 input: 10 complete frames and 100 more bytes" in lines[0]
    kept, _ = sf.read(io.BytesIO(truncated.stdout), dtype="int16")  # a valid WAV of the complete frames
    reference = load(checkpoint, backend="int8").synthesize([speech_features[:10]], seed=0)[0]
    np.testing.assert_array_equal(kept, _wav_int16(reference))
