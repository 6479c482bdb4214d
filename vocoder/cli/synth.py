"""``vocoder-synth checkpoint=PATH input=WAV_OR_DIR output_dir=DIR``: checkpoint + inputs → wavs.

``vocoder-synth checkpoint=PATH input=- output=-`` streams: frames (xiph ``.f32`` or ``.npy``) from
standard input, audio (WAV or raw s16) to standard output as they are synthesized.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from vocoder.cli._hydra import fail, run_cli
from vocoder.config import CONFIG_DIR, register_resolvers

PROG = "vocoder-synth"
register_resolvers()

#: output suffixes written as headerless little-endian 16-bit PCM
RAW_SUFFIXES = {".raw", ".pcm", ".s16"}


def _vocoder_options(cfg: DictConfig) -> dict:
    options = {"threads": cfg.threads} if cfg.threads else {}
    for key, default in (("tempering", "xiph"), ("backend", "fast")):  # LPCNet only: others reject them
        if cfg.get(key) not in (None, default):
            options[key] = cfg[key]
    return options


def _export(cfg: DictConfig) -> int:
    from vocoder.inference import export_onnx, export_torchscript

    if str(cfg.export).lower().endswith(".onnx"):
        path = export_onnx(cfg.checkpoint, cfg.export, use_ema=cfg.use_ema)
        print(f"wrote ONNX graph to {path} (onnxruntime.InferenceSession('{path}'); inputs and outputs "
              f"are named in the graph)")
        return 0
    path = export_torchscript(cfg.checkpoint, cfg.export, use_ema=cfg.use_ema, segments=int(cfg.segments))
    print(
        f"wrote TorchScript synthesis to {path}: "
        f"torch.jit.load('{path}')(mel, seed) with mel (B, T, n_mels)"
    )
    return 0


def _stream(cfg: DictConfig) -> int:
    """``output=-|FILE``: frames in as they arrive, audio out as it is synthesized."""
    from vocoder.data import XIPH_WRITERS, xiph_feature_delay
    from vocoder.inference import AudioWriter, FrameReader, SynthesisError, load, stream_synthesize

    if cfg.xiph_writer not in XIPH_WRITERS:
        fail(PROG, f"xiph_writer: expected one of {', '.join(XIPH_WRITERS)}, got {cfg.xiph_writer!r}")

    if cfg.get("codec"):
        fail(PROG, "codec: the feature codec works on whole utterances; stream without it or use output_dir=")
    source, target = str(cfg.input), str(cfg.output)
    if source != "-" and Path(source).suffix.lower() not in {".f32", ".npy"}:
        fail(PROG, f"input={source}: streaming reads xiph .f32 or .npy frames (input=- for standard input); "
                   "for audio or a prepared cache use output_dir=")
    output_format = cfg.output_format or ("raw" if Path(target).suffix.lower() in RAW_SUFFIXES else "wav")
    if target == "-" and sys.stdout.isatty():
        fail(PROG, "output=-: standard output is a terminal; pipe it (... | aplay) or give output=FILE.wav")
    vocoder = load(cfg.checkpoint, use_ema=cfg.use_ema, **_vocoder_options(cfg))
    stream = vocoder.stream(seed=cfg.seed)
    if target == "-":
        # the audio gets standard output's descriptor to itself: anything printed (by us, a library,
        # a logging handler) goes to standard error instead
        sys.stdout.flush()
        sink = os.fdopen(os.dup(1), "wb")
        os.dup2(2, 1)
        sys.stdout = sys.stderr
    else:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        sink = open(target, "wb")  # noqa: SIM115 (closed below; written as it is synthesized)
    name = "stdin" if source == "-" else source
    try:
        with sink, (sys.stdin.buffer if source == "-" else open(source, "rb")) as stdin:
            reader = FrameReader(stdin, name, stream.channels, cfg.input_format)
            report = stream_synthesize(stream, reader, AudioWriter(sink, vocoder.sample_rate, output_format),
                                       xiph_delay=xiph_feature_delay(cfg.xiph_writer))
    except FileNotFoundError:
        fail(PROG, f"input={source}: no such file")
    except BrokenPipeError:
        fail(PROG, "output: the reader closed the pipe before the end of the audio", status=1)
    except SynthesisError as exc:
        fail(PROG, exc, status=1)
    seconds = report.samples / vocoder.sample_rate
    first = ("" if report.first_audio_seconds is None
             else f", first audio after {1000 * report.first_audio_seconds:.1f} ms")
    print(f"streamed {report.frames} frames to {'stdout' if target == '-' else target} ({output_format}): "
          f"{seconds:.2f} s of audio in {report.seconds:.2f} s (real-time factor "
          f"{report.seconds / seconds if seconds else float('nan'):.3f}{first}; delay {stream.delay_frames} "
          f"frames = {stream.delay_ms:.0f} ms)", file=sys.stderr)
    return 0


def run(cfg: DictConfig) -> int:
    """Synthesize; returns the exit status (1 when some inputs failed)."""
    from tqdm.auto import tqdm

    from vocoder.inference import (
        CodedVocoder,
        FeatureCodec,
        collect_inputs,
        load,
        synthesize_inputs,
        write_references,
    )

    if cfg.export:
        return _export(cfg)
    if cfg.get("output"):
        if cfg.get("output_dir"):
            fail(PROG, "output / output_dir: give one (output=- or FILE streams one utterance, output_dir= "
                       "writes one wav per input)")
        if not cfg.input:
            fail(PROG, "input: missing; give input=- (frames on standard input) or input=FILE.f32|.npy")
        return _stream(cfg)
    if cfg.input == "-":
        fail(PROG, "input=-: frames from standard input are streamed; give output=- (or output=FILE.wav)")
    for key in ("input", "output_dir"):
        if not cfg[key]:
            fail(PROG, f"{key}: missing; give {key}=... (or output=- to stream, export=FILE.pt|.onnx to "
                       "export)")
    if cfg.batch_size < 1:
        fail(PROG, f"batch_size: must be >= 1, got {cfg.batch_size}")
    from vocoder.data import XIPH_WRITERS

    if cfg.xiph_writer not in XIPH_WRITERS:
        fail(PROG, f"xiph_writer: expected one of {', '.join(XIPH_WRITERS)}, got {cfg.xiph_writer!r}")
    options = _vocoder_options(cfg)
    vocoder = load(cfg.checkpoint, use_ema=cfg.use_ema, **options)
    if cfg.get("codec"):
        codec = FeatureCodec.load(cfg.codec)
        vocoder = CodedVocoder(vocoder, codec)
        print(f"conditioning through the codec {cfg.codec}: {codec.latent_size} latent values per "
              f"{codec.downsample} frame(s)")
    inputs = collect_inputs(Path(cfg.input), cfg.split)
    if cfg.limit:
        inputs = inputs[: int(cfg.limit)]
    with tqdm(total=len(inputs), disable=not sys.stderr.isatty(), desc="synthesizing") as bar:
        report = synthesize_inputs(
            vocoder,
            inputs,
            Path(cfg.output_dir),
            batch_size=cfg.batch_size,
            seed=cfg.seed,
            progress=bar.update,
            xiph_writer=cfg.xiph_writer,
        )
    if cfg.reference_dir:
        count = write_references(inputs, Path(cfg.reference_dir), vocoder.sample_rate)
        print(f"wrote {count} natural reference wavs to {cfg.reference_dir}")
    for uid, reason in report.failed:
        print(f"skipped {uid}: {reason}", file=sys.stderr)
    print(
        f"wrote {len(report.written)} wav files to {cfg.output_dir} "
        f"({report.audio_seconds:.1f} s of audio in {report.synthesis_seconds:.1f} s, "
        f"real-time factor {report.real_time_factor:.3f})"
    )
    return 1 if report.failed else 0


@hydra.main(version_base=None, config_path=str(CONFIG_DIR), config_name="synth")
def _hydra_main(cfg: DictConfig) -> None:
    from vocoder.checkpoints import CheckpointError
    from vocoder.data import DataError
    from vocoder.inference import SynthesisError

    try:
        status = run(cfg)
    except (SynthesisError, CheckpointError, DataError) as exc:
        fail(PROG, exc)
    if status:
        sys.exit(status)


def main() -> None:
    """Console-script entry point."""
    run_cli(_hydra_main, PROG)
