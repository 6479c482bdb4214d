#!/usr/bin/env python
"""Write a training checkpoint's EMA weights as a packaged pretrained model (float16, no optimizer).

A GAN run's discriminator weights go into the same file (``networks.disc``), for fine-tuning with it.

    python scripts/export_pretrained.py exp/RUN/checkpoints/last.pt kathleen_lpcnet [key=value ...]

writes vocoder/pretrained/<name>.pt (then usable as ``pretrained:<name>``); the key=value pairs are
stored under ``info`` (e.g. cpu="...", cpu_hours=1.9). The model card <name>.md is written by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

from vocoder.checkpoints import export_weights


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    checkpoint, name, *pairs = argv
    info = dict(pair.split("=", 1) for pair in pairs)
    out = Path(__file__).resolve().parents[1] / "vocoder" / "pretrained" / f"{name}.pt"
    path = export_weights(checkpoint, out, extra=info)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB); use it as pretrained:{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
