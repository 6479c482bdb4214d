"""Error types shared by every layer, below all of them (this module imports nothing of ``vocoder``).

A layer raises the error of the layer it belongs to (``vocoder.data.DataError``,
``vocoder.checkpoints.CheckpointError``, ...); a bad *setting*, found wherever it is checked (the
config schemas of :mod:`vocoder.cli`, a training module's constructor, a data set), is a
:class:`ConfigError`. The commands of :mod:`vocoder.cli` catch these and print their one line.
"""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """An invalid setting; the message is one line that names the key and what to do.

    Example: ``optim.lr: expected float, got 'abc'``.
    """
