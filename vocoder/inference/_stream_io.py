"""Streaming synthesis between byte streams: frames in (xiph ``.f32``, ``.npy``), audio out (WAV, raw s16).

What ``vocoder-synth checkpoint=… input=- output=-`` runs: a :class:`FrameReader` hands over the
frames as they arrive (whatever a read returns, never waiting for more than one frame's bytes), each
batch goes through a :class:`~vocoder.inference._streaming.SynthesisStream`, and an
:class:`AudioWriter` writes and flushes its samples at once. Bad or truncated input is a
:class:`~vocoder.inference.SynthesisError` raised *after* the audio of every complete frame has been
written, and the output is left a valid file.

WAV on a stream that cannot seek (a pipe) gets a header whose RIFF and data sizes are ``0xFFFFFFFF``
("unknown length", as streaming writers do; readers take the data to the end of the stream); on a
seekable output (a file) the sizes are patched when the writer closes.
"""

from __future__ import annotations

import ast
import io
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import soundfile as sf

from vocoder.inference._streaming import SynthesisStream
from vocoder.inference._vocoders import SynthesisError

#: floats per frame of xiph's ``.f32`` files (20 features + 16 LPC) and the features the network reads
XIPH_FLOATS = 36
XIPH_FEATURES = 20
NPY_MAGIC = b"\x93NUMPY"
INPUT_FORMATS = ("auto", "f32", "npy")
OUTPUT_FORMATS = ("wav", "raw")
#: RIFF/data size of a WAV header written before the length is known
UNKNOWN_SIZE = 0xFFFFFFFF


class FrameReader:
    """Conditioning frames from a binary stream, as they arrive.

    Args:
        source: binary stream (``sys.stdin.buffer``, an open file); read with ``read1`` where it has one.
        name: what messages call it (``stdin``, the file name).
        channels: values per frame the vocoder reads.
        input_format: ``f32`` (xiph's 36 float32 per frame, native byte order: the first 20 are the
            features), ``npy`` (a ``(T, channels)`` float array, C order) or ``auto`` (``npy`` when the
            stream starts with the ``.npy`` magic, else ``f32``).
        chunk_bytes: most bytes asked for per read.
    """

    def __init__(self, source: BinaryIO, name: str, channels: int, input_format: str = "auto",
                 chunk_bytes: int = 1 << 16) -> None:
        if input_format not in INPUT_FORMATS:
            raise SynthesisError(f"input_format={input_format!r}: must be one of {', '.join(INPUT_FORMATS)}")
        self._source = source
        self._read = getattr(source, "read1", source.read)
        self.name = name
        self.channels = channels
        self.input_format = input_format
        self.chunk_bytes = chunk_bytes
        self.frames_read = 0
        #: the format found at the first read (``f32`` or ``npy``; None before)
        self.kind: str | None = None
        self._pending = b""

    def _more(self, size: int) -> bytes:
        """Up to ``size`` bytes: the buffered ones first, else one read (``b""`` at the end)."""
        if self._pending:
            data, self._pending = self._pending[:size], self._pending[size:]
            return data
        return self._read(size)

    def _exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            more = self._more(size - len(data))
            if not more:
                break
            data += more
        return data

    def __iter__(self) -> Iterator[np.ndarray]:
        """Yield ``(T ≥ 1, channels)`` float32 frames until the stream ends.

        Raises:
            SynthesisError: one line naming the stream: not a frame file, wrong width, truncated
                (raised after every complete frame has been yielded).
        """
        head = self._exactly(len(NPY_MAGIC))
        self._pending = head + self._pending
        if not head:
            raise SynthesisError(f"{self.name}: empty input; expected xiph .f32 or .npy frames")
        is_npy = head == NPY_MAGIC
        kind = self.input_format if self.input_format != "auto" else ("npy" if is_npy else "f32")
        self.kind = kind
        if kind == "npy":
            if not is_npy:
                raise SynthesisError(f"{self.name}: input_format=npy but the input does not start with the "
                                     ".npy magic")
            yield from self._npy_frames()
        else:
            if self.channels != XIPH_FEATURES:
                raise SynthesisError(f"{self.name}: xiph .f32 frames hold LPCNet's {XIPH_FEATURES} features; "
                                     f"this checkpoint reads {self.channels} values per frame "
                                     "(give .npy frames)")
            yield from self._rows(np.dtype("<f4" if np.little_endian else ">f4"), XIPH_FLOATS, None,
                                  "xiph .f32")

    def _npy_frames(self) -> Iterator[np.ndarray]:
        self._exactly(len(NPY_MAGIC))
        version = self._exactly(2)
        if len(version) < 2 or version[0] not in (1, 2, 3):
            raise SynthesisError(f"{self.name}: unsupported .npy version")
        size_bytes = 2 if version[0] == 1 else 4
        raw_size = self._exactly(size_bytes)
        if len(raw_size) < size_bytes:
            raise SynthesisError(f"{self.name}: truncated .npy header")
        header_size = struct.unpack("<H" if size_bytes == 2 else "<I", raw_size)[0]
        header = self._exactly(header_size)
        try:
            fields = ast.literal_eval(header.decode("latin1" if version[0] < 3 else "utf8"))
            dtype = np.lib.format.descr_to_dtype(fields["descr"])
            shape, fortran = tuple(fields["shape"]), bool(fields["fortran_order"])
        except (ValueError, SyntaxError, KeyError, TypeError):
            raise SynthesisError(f"{self.name}: unreadable .npy header") from None
        if len(header) < header_size:
            raise SynthesisError(f"{self.name}: truncated .npy header")
        if dtype.kind != "f":
            raise SynthesisError(f"{self.name}: .npy frames must be float32 or float64, got {dtype}")
        if len(shape) != 2 or shape[1] != self.channels:
            raise SynthesisError(f"{self.name}: .npy frames must be (T, {self.channels}), got {shape}")
        if fortran and shape[0] > 1:
            raise SynthesisError(f"{self.name}: a Fortran-ordered .npy cannot be read frame by frame; "
                                 "save it C-ordered (np.save(path, np.ascontiguousarray(frames)))")
        yield from self._rows(dtype, self.channels, shape[0], ".npy")

    def _rows(self, dtype: np.dtype, width: int, total: int | None, label: str) -> Iterator[np.ndarray]:
        """Rows of ``width`` values of ``dtype`` (``total`` of them, or up to the end of the stream)."""
        row_bytes = width * dtype.itemsize
        buffer = b""
        while total is None or self.frames_read < total:
            want = self.chunk_bytes
            if total is not None:
                want = min(want, (total - self.frames_read) * row_bytes - len(buffer))
            data = self._more(max(want, 1))
            if not data:
                break
            buffer += data
            rows = len(buffer) // row_bytes
            if rows:
                block = np.frombuffer(buffer[: rows * row_bytes], dtype=dtype).reshape(rows, width)
                buffer = buffer[rows * row_bytes :]
                self.frames_read += rows
                yield np.ascontiguousarray(block[:, : self.channels], dtype=np.float32)
        if buffer or (total is not None and self.frames_read < total):
            expected = f"{total} frames" if total is not None else f"whole {width}-float frames"
            raise SynthesisError(f"{self.name}: truncated {label} input: {self.frames_read} complete frames "
                                 f"and {len(buffer)} more bytes, expected {expected}; "
                                 "the audio of the complete frames was written")
        if total is not None and self._more(1):
            raise SynthesisError(f"{self.name}: bytes after the {total} frames of the .npy header; "
                                 "send one array per run")


def _pcm16(audio: np.ndarray) -> bytes:
    """float audio → little-endian 16-bit PCM, converted by libsndfile (as the ``output_dir=`` wavs are)."""
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(audio, -1.0, 1.0), 16000, format="RAW", subtype="PCM_16", endian="LITTLE")
    return buffer.getvalue()


class AudioWriter:
    """Mono 16-bit audio to a binary stream, written and flushed as it comes.

    Args:
        sink: binary stream (``sys.stdout.buffer``, an open file).
        sample_rate: Hz.
        output_format: ``wav`` (a RIFF header first; see the module docstring for its sizes) or ``raw``
            (headerless little-endian s16, e.g. ``aplay -f S16_LE -r 16000 -c 1``).
    """

    def __init__(self, sink: BinaryIO, sample_rate: int, output_format: str = "wav") -> None:
        if output_format not in OUTPUT_FORMATS:
            raise SynthesisError(f"output_format={output_format!r}: must be one of "
                                 f"{', '.join(OUTPUT_FORMATS)}")
        self._sink = sink
        self.sample_rate = sample_rate
        self.output_format = output_format
        self.data_bytes = 0
        try:
            self._start = sink.tell() if sink.seekable() else None
        except OSError:
            self._start = None
        if output_format == "wav":
            self._put(self.wav_header(sample_rate, None))

    @staticmethod
    def wav_header(sample_rate: int, data_bytes: int | None) -> bytes:
        """The 44-byte header of a mono 16-bit PCM WAV (``data_bytes=None``: sizes ``0xFFFFFFFF``)."""
        riff = UNKNOWN_SIZE if data_bytes is None else min(36 + data_bytes, UNKNOWN_SIZE)
        data = UNKNOWN_SIZE if data_bytes is None else min(data_bytes, UNKNOWN_SIZE)
        return (b"RIFF" + struct.pack("<I", riff) + b"WAVE"
                + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, 2 * sample_rate, 2, 16)
                + b"data" + struct.pack("<I", data))

    def _put(self, data: bytes) -> None:
        self._sink.write(data)
        self._sink.flush()

    def write(self, audio: np.ndarray) -> None:
        """Append ``(n,)`` float audio in [-1, 1] (an empty array writes nothing)."""
        if len(audio):
            data = _pcm16(audio)
            self._put(data)
            self.data_bytes += len(data)

    def close(self) -> None:
        """Patch the WAV sizes where the output can seek; flush."""
        if self.output_format == "wav" and self._start is not None:
            end = self._sink.tell()
            self._sink.seek(self._start)
            self._sink.write(self.wav_header(self.sample_rate, self.data_bytes))
            self._sink.seek(end)
        self._sink.flush()


@dataclass
class StreamReport:
    """What a streaming run did.

    Attributes:
        frames: conditioning frames read.
        samples: audio samples written.
        seconds: wall time from the first frame read to the last sample written.
        first_audio_seconds: from the first frame read to the first samples written (None: none written).
    """

    frames: int = 0
    samples: int = 0
    seconds: float = 0.0
    first_audio_seconds: float | None = None


def stream_synthesize(stream: SynthesisStream, reader: FrameReader, writer: AudioWriter,
                      xiph_delay: int = 0) -> StreamReport:
    """Synthesize the reader's frames into the writer as they arrive.

    Args:
        stream: a fresh stream (``vocoder.stream(seed=…)``); its ``channels`` are the reader's.
        reader: the frames.
        writer: the audio's destination (closed on return).
        xiph_delay: samples by which xiph ``.f32`` rows lie before our frames
            (:func:`vocoder.data.xiph_feature_delay`): that many leading samples are dropped when the
            input turns out to be ``.f32``, so the audio lines up with the recording the rows came from.

    On bad or truncated input the frames read so far are synthesized to the end (the stream is
    flushed), the writer is closed (a valid file), and the error is raised.

    Raises:
        SynthesisError: one line naming the input (after the audio of its complete frames was written).
    """
    report = StreamReport()
    start: float | None = None
    to_drop = [xiph_delay]

    def emit(audio: np.ndarray) -> None:
        if reader.kind == "f32" and to_drop[0] > 0:
            dropped = min(to_drop[0], len(audio))
            audio, to_drop[0] = audio[dropped:], to_drop[0] - dropped
        writer.write(audio)
        if len(audio) and report.first_audio_seconds is None and start is not None:
            report.first_audio_seconds = time.perf_counter() - start
        report.samples += len(audio)

    def finish() -> None:
        # the utterance ends with what came before an error (or an interrupt); the file stays valid
        if report.frames:
            emit(stream.flush())
        writer.close()
        if start is not None:
            report.seconds = time.perf_counter() - start

    try:
        for frames in reader:
            if start is None:
                start = time.perf_counter()
            finite = np.isfinite(frames).all(axis=1)
            good = len(frames) if finite.all() else int(np.argmin(finite))
            emit(stream.push(frames[:good]))
            report.frames += good
            if good < len(frames):
                raise SynthesisError(f"{reader.name}: frame {report.frames}: non-finite values; the audio "
                                     f"of the {report.frames} frames before it was written")
    except (SynthesisError, KeyboardInterrupt):
        finish()
        raise
    finish()
    return report
