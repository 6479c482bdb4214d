"""Deterministic train/dev/eval splits of a corpus.

Rule: with the utterance ids sorted, the **last** ``n_eval`` are the eval split, the ``n_dev``
before them the dev split, and all the others the train split. For CMU ARCTIC this puts the end of
the "b" set in eval/dev, the same utterances on every machine and at every run. The split is
assigned before feature extraction, so a file rejected as unusable simply goes missing from its
split and never moves another utterance across splits.

The split is decided over the *usable* utterances, after every file has been read (see
:func:`vocoder.data.prepare_corpus`): a broken file is reported by name and never leaves a split
empty.

Sizes: an explicit ``n_eval`` / ``n_dev`` is used as given (too large is an error). Left unset
(``None``, the default of ``data.splits``), each is :data:`DEFAULT_SPLIT_SIZE` (100) when the corpus
is large enough (at least ``DEFAULT_SPLIT_SIZE / SMALL_CORPUS_FRACTION`` = 1,000 utterances) and
otherwise :data:`SMALL_CORPUS_FRACTION` (10 %) of the corpus, at least one utterance: 33 utterances
give 27 / 3 / 3 (train / dev / eval), 5 give 3 / 1 / 1. :func:`choose_split_sizes` applies the rule
and says in one line what it chose.

The lists are written as ``cache_dir/splits/{train,dev,eval}.txt``, one id per line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vocoder.data._errors import CorpusError
from vocoder.data._fsutil import write_atomic

SPLITS = ("train", "dev", "eval")
#: Size of the eval and of the dev split when ``data.splits.n_eval`` / ``n_dev`` are left unset.
DEFAULT_SPLIT_SIZE = 100
#: Share of a small corpus (fewer than 1,000 utterances) that goes to eval, and again to dev.
SMALL_CORPUS_FRACTION = 0.1


@dataclass(frozen=True)
class SplitChoice:
    """The split sizes chosen for a corpus, and how.

    Attributes:
        n_train: training utterances (at least one).
        n_dev: dev utterances.
        n_eval: eval utterances.
        requested_n_eval: ``data.splits.n_eval`` as given (``None``: unset, chosen by the rule).
        requested_n_dev: ``data.splits.n_dev`` as given (``None``: unset).
    """

    n_train: int
    n_dev: int
    n_eval: int
    requested_n_eval: int | None
    requested_n_dev: int | None

    @property
    def adapted(self) -> bool:
        """Whether an unset size was made smaller than :data:`DEFAULT_SPLIT_SIZE` for a small corpus."""
        return (self.requested_n_eval is None and self.n_eval < DEFAULT_SPLIT_SIZE) or (
            self.requested_n_dev is None and self.n_dev < DEFAULT_SPLIT_SIZE
        )

    def describe(self) -> str:
        """One line: the sizes and why they were chosen (e.g. ``split: train 27, dev 3, eval 3 ...``)."""
        sizes = f"split: train {self.n_train}, dev {self.n_dev}, eval {self.n_eval}"
        total = self.n_train + self.n_dev + self.n_eval
        explicit = [
            f"{key}={value}"
            for key, value in (("n_eval", self.requested_n_eval), ("n_dev", self.requested_n_dev))
            if value is not None
        ]
        if len(explicit) == 2:
            return f"{sizes} (data.splits.{', '.join(explicit)} as set)"
        if explicit:
            return f"{sizes} (data.splits.{explicit[0]} as set, the other chosen for {total} utterances)"
        if self.adapted:
            return (
                f"{sizes} (a small corpus of {total} usable utterances: {SMALL_CORPUS_FRACTION:.0%} "
                f"each for dev and eval instead of {DEFAULT_SPLIT_SIZE}, at least one; "
                f"data.splits.n_eval / n_dev set them)"
            )
        return f"{sizes} (default sizes; data.splits.n_eval / n_dev set them)"


def choose_split_sizes(count: int, n_eval: int | None = None, n_dev: int | None = None) -> SplitChoice:
    """The eval/dev sizes for ``count`` usable utterances (rule in the module docstring).

    Args:
        count: usable utterances.
        n_eval: explicit eval size (kept as given), or ``None`` to choose by the rule.
        n_dev: explicit dev size, or ``None``.

    Returns:
        The :class:`SplitChoice` (its ``describe()`` is the line to print).

    Raises:
        CorpusError: negative explicit sizes, or too few utterances for the explicit sizes plus at
            least one training utterance (or, when unset, for one utterance in each split).
    """
    for key, value in (("n_eval", n_eval), ("n_dev", n_dev)):
        if value is not None and value < 0:
            raise CorpusError(f"data.splits.{key}: split sizes must be >= 0, got {value}")
    fixed = (n_eval or 0) + (n_dev or 0)
    unset = (n_eval is None) + (n_dev is None)
    automatic = min(DEFAULT_SPLIT_SIZE, max(1, int(count * SMALL_CORPUS_FRACTION)))
    if unset:
        # what the explicit sizes leave, with at least one training utterance
        automatic = min(automatic, (count - fixed - 1) // unset)
    chosen_eval = n_eval if n_eval is not None else automatic
    chosen_dev = n_dev if n_dev is not None else automatic
    if (unset and automatic < 1) or count < chosen_eval + chosen_dev + 1:
        shown_eval = n_eval if n_eval is not None else "auto"
        shown_dev = n_dev if n_dev is not None else "auto"
        raise CorpusError(
            f"{count} usable utterances are too few for n_eval={shown_eval} + n_dev={shown_dev} "
            f"and at least one training utterance; lower data.splits.n_eval / data.splits.n_dev"
            if unset < 2
            else f"{count} usable utterances are too few for a train, a dev and an eval split "
            f"(at least 3 needed)"
        )
    return SplitChoice(count - chosen_eval - chosen_dev, chosen_dev, chosen_eval, n_eval, n_dev)


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
