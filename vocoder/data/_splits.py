"""Deterministic train/dev/eval splits of a corpus.

Rule: with the utterance ids sorted, the **last** ``n_eval`` are the eval split, the ``n_dev``
before them the dev split, and all the others the train split. For CMU ARCTIC this puts the end of
the "b" set in eval/dev, the same utterances on every machine and at every run. The split is
assigned before feature extraction, so a file rejected as unusable simply goes missing from its
split and never moves another utterance across splits.

The lists are written as ``cache_dir/splits/{train,dev,eval}.txt``, one id per line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from vocoder.data._errors import CorpusError
from vocoder.data._fsutil import write_atomic

SPLITS = ("train", "dev", "eval")


def split_ids(ids: Sequence[str], n_eval: int, n_dev: int) -> dict[str, list[str]]:
    """Split utterance ids into train/dev/eval (see the module docstring for the rule).

    Args:
        ids: utterance ids (any order; they are sorted first; duplicates are an error).
        n_eval: number of eval utterances (≥ 0).
        n_dev: number of dev utterances (≥ 0).

    Returns:
        ``{"train": [...], "dev": [...], "eval": [...]}``, each list sorted.

    Raises:
        CorpusError: negative sizes, duplicate ids, or fewer than ``n_eval + n_dev + 1`` ids (the
            train split must not be empty).
    """
    if n_eval < 0 or n_dev < 0:
        raise CorpusError(f"split sizes must be >= 0, got n_eval={n_eval}, n_dev={n_dev}")
    ordered = sorted(ids)
    if len(set(ordered)) != len(ordered):
        duplicates = sorted(i for i, count in Counter(ordered).items() if count > 1)
        raise CorpusError(f"duplicate utterance ids: {', '.join(duplicates[:5])}")
    if len(ordered) < n_eval + n_dev + 1:
        raise CorpusError(
            f"the corpus has {len(ordered)} utterances, too few for n_eval={n_eval} + n_dev={n_dev} "
            f"and at least one training utterance; lower data.splits.n_eval / data.splits.n_dev"
        )
    n_train = len(ordered) - n_eval - n_dev
    return {
        "train": ordered[:n_train],
        "dev": ordered[n_train : n_train + n_dev],
        "eval": ordered[n_train + n_dev :],
    }


def write_splits(cache_dir: str | Path, splits: dict[str, Iterable[str]]) -> dict[str, Path]:
    """Write ``cache_dir/splits/<name>.txt`` (one id per line) for each split, atomically.

    Args:
        cache_dir: the feature cache directory.
        splits: ids per split name (``train``, ``dev``, ``eval``).

    Returns:
        The written file of each split.
    """
    directory = Path(cache_dir) / "splits"
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, ids in splits.items():
        text = "".join(f"{utterance_id}\n" for utterance_id in ids)
        written[name] = write_atomic(
            directory / f"{name}.txt", lambda stream, text=text: stream.write(text.encode())
        )
    return written
