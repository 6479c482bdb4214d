"""Pretrained weights shipped inside the package: ``vocoder/pretrained/<name>.pt`` + ``<name>.md``.

Each ``<name>.pt`` is a *weights file* (:func:`vocoder.checkpoints.export_weights`): the EMA weights
(floating tensors stored as float16), the resolved config the model is rebuilt from, the training
module's plain state (e.g. normalization statistics) and the step — tensors and plain types only,
loadable with ``torch.load(..., weights_only=True)``, no optimizer state. ``<name>.md`` is its model
card (data, recipe and overrides, steps, CPU time and CPU, dev scores, licence).

``pretrained:<name>`` is accepted wherever a checkpoint path is: ``vocoder-synth checkpoint=``,
:func:`vocoder.inference.load`, ``trainer.init_from=``. This package sits at the bottom of the house
(it imports nothing of ``vocoder``): it only turns names into files.
"""

from __future__ import annotations

from pathlib import Path

#: The prefix that names a packaged model instead of a file.
PREFIX = "pretrained:"
_HERE = Path(__file__).resolve().parent


class PretrainedNotFound(LookupError):
    """``pretrained:NAME`` names no packaged model; the message lists the available ones."""


def available() -> list[str]:
    """Names of the packaged models (sorted)."""
    return sorted(p.stem for p in _HERE.glob("*.pt"))


def is_pretrained(spec: str | Path) -> bool:
    """Whether ``spec`` is a ``pretrained:NAME`` reference."""
    return isinstance(spec, str) and spec.startswith(PREFIX)


def resolve(spec: str | Path) -> Path:
    """The file behind ``spec``: ``pretrained:NAME`` → the packaged ``NAME.pt``; a path → itself."""
    if not is_pretrained(spec):
        return Path(spec)
    name = str(spec)[len(PREFIX):]
    path = _HERE / f"{name}.pt"
    if not name or "/" in name or not path.is_file():
        names = ", ".join(PREFIX + n for n in available()) or "none"
        raise PretrainedNotFound(f"{spec}: no such pretrained model (available: {names})")
    return path


def model_card(spec: str) -> str:
    """The model card (markdown) of ``pretrained:NAME``."""
    path = resolve(spec).with_suffix(".md")
    return path.read_text() if path.is_file() else ""


__all__ = ["PREFIX", "PretrainedNotFound", "available", "is_pretrained", "model_card", "resolve"]
