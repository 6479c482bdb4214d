"""``vocoder-synth checkpoint=PATH input=WAV_OR_DIR output_dir=DIR``: checkpoint + inputs → wavs."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from vocoder.cli._hydra import fail, run_cli
from vocoder.config import CONFIG_DIR, register_resolvers

PROG = "vocoder-synth"
register_resolvers()


def run(cfg: DictConfig) -> int:
    """Synthesize; returns the exit status (1 when some inputs failed)."""
    from tqdm.auto import tqdm

    from vocoder.inference import (
        CodedVocoder,
        FeatureCodec,
        collect_inputs,
        export_torchscript,
        load,
        synthesize_inputs,
        write_references,
    )

    if cfg.export:
        path = export_torchscript(cfg.checkpoint, cfg.export, use_ema=cfg.use_ema, segments=int(cfg.segments))
        print(
            f"wrote TorchScript synthesis to {path}: "
            f"torch.jit.load('{path}')(mel, seed) with mel (B, T, n_mels)"
        )
        return 0
    for key in ("input", "output_dir"):
        if not cfg[key]:
            fail(PROG, f"{key}: missing; give {key}=... (or export=FILE.pt to export the model)")
    if cfg.batch_size < 1:
        fail(PROG, f"batch_size: must be >= 1, got {cfg.batch_size}")
    from vocoder.data import XIPH_WRITERS

    if cfg.xiph_writer not in XIPH_WRITERS:
        fail(PROG, f"xiph_writer: expected one of {', '.join(XIPH_WRITERS)}, got {cfg.xiph_writer!r}")
    options = {"threads": cfg.threads} if cfg.threads else {}
    for key, default in (("tempering", "xiph"), ("backend", "fast")):  # LPCNet only: others reject them
        if cfg.get(key) not in (None, default):
            options[key] = cfg[key]
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
