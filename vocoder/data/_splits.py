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

Speakers (:func:`split_by_speaker`): in a corpus of several speakers, the eval and dev sizes are
shared among the speakers in proportion to their utterances (Sainte-Laguë's rule, ties to the
speaker first in sorted order, at most all but one of a speaker's utterances while others have room), and
each speaker's share is the last of *its* utterances in id order, the same rule as above: a corpus
of one speaker is split exactly as :func:`split_ids` splits it. With held-out speakers
(``data.splits.held_out_speakers``: a number N takes the last N speakers in sorted order, a list
names them) the eval split holds only their utterances (unseen-speaker evaluation; ``n_eval`` of
them, drawn the same way, the rest unused) and neither train nor dev holds any.

The lists are written as ``cache_dir/splits/{train,dev,eval}.txt``, one id per line.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
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
        held_out_speakers: the speakers whose utterances only the eval split holds (``()``: none).
        unused: utterances of held-out speakers left out of eval (in no split).
    """

    n_train: int
    n_dev: int
    n_eval: int
    requested_n_eval: int | None
    requested_n_dev: int | None
    held_out_speakers: tuple[str, ...] = ()
    unused: int = 0

    @property
    def adapted(self) -> bool:
        """Whether an unset size was made smaller than :data:`DEFAULT_SPLIT_SIZE` for a small corpus."""
        return (self.requested_n_eval is None and self.n_eval < DEFAULT_SPLIT_SIZE) or (
            self.requested_n_dev is None and self.n_dev < DEFAULT_SPLIT_SIZE
        )

    def describe(self) -> str:
        """One line: the sizes and why they were chosen (e.g. ``split: train 27, dev 3, eval 3 ...``)."""
        sizes = f"split: train {self.n_train}, dev {self.n_dev}, eval {self.n_eval}"
        total = self.n_train + self.n_dev + self.n_eval + self.unused
        if self.held_out_speakers:
            count = len(self.held_out_speakers)
            named = ", ".join(self.held_out_speakers[:5]) + (", ..." if count > 5 else "")
            unused = f"; their other {self.unused} utterances are in no split" if self.unused else ""
            return (
                f"{sizes} (eval: {count} held-out speaker{'s' if count > 1 else ''} unseen in train and dev: "
                f"{named}{unused}; data.splits.n_eval / n_dev / held_out_speakers set them)"
            )
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


def choose_split_sizes(
    count: int,
    n_eval: int | None = None,
    n_dev: int | None = None,
    held_out: int | None = None,
    held_out_speakers: Sequence[str] = (),
) -> SplitChoice:
    """The eval/dev sizes for ``count`` usable utterances (rule in the module docstring).

    Args:
        count: usable utterances.
        n_eval: explicit eval size (kept as given), or ``None`` to choose by the rule.
        n_dev: explicit dev size, or ``None``.
        held_out: usable utterances of the held-out speakers (``None``: no speaker is held out).
            Eval is drawn from them only (an unset ``n_eval`` takes the rule's size or all of
            them, whichever is smaller); train and dev from the ``count - held_out`` others.
        held_out_speakers: their names (recorded in the choice).

    Returns:
        The :class:`SplitChoice` (its ``describe()`` is the line to print).

    Raises:
        CorpusError: negative explicit sizes, or too few utterances for the explicit sizes plus at
            least one training utterance (or, when unset, for one utterance in each split).
    """
    for key, value in (("n_eval", n_eval), ("n_dev", n_dev)):
        if value is not None and value < 0:
            raise CorpusError(f"data.splits.{key}: split sizes must be >= 0, got {value}")
    if held_out is not None:
        return _choose_with_held_out(count, n_eval, n_dev, held_out, tuple(held_out_speakers))
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


def _choose_with_held_out(
    count: int, n_eval: int | None, n_dev: int | None, held_out: int, speakers: tuple[str, ...]
) -> SplitChoice:
    seen = count - held_out
    named = f"the held-out speakers ({', '.join(speakers[:5]) or 'none'})"
    if held_out < 1:
        raise CorpusError(f"{named} have no usable utterance for the eval split")
    automatic = min(DEFAULT_SPLIT_SIZE, max(1, int(count * SMALL_CORPUS_FRACTION)))
    chosen_eval = n_eval if n_eval is not None else min(automatic, held_out)
    chosen_dev = n_dev if n_dev is not None else min(automatic, seen - 1)
    if chosen_eval > held_out or chosen_eval < 1:
        raise CorpusError(
            f"{named} have {held_out} usable utterances, too few for n_eval={chosen_eval}; "
            f"lower data.splits.n_eval or hold out more speakers"
        )
    if seen < chosen_dev + 1 or chosen_dev < 0 or (n_dev is None and chosen_dev < 1):
        raise CorpusError(
            f"{seen} usable utterances of the other speakers are too few for "
            f"n_dev={n_dev if n_dev is not None else 'auto'} and at least one training utterance; "
            f"hold out fewer speakers or lower data.splits.n_dev"
        )
    return SplitChoice(
        seen - chosen_dev, chosen_dev, chosen_eval, n_eval, n_dev, speakers, held_out - chosen_eval
    )


def held_out_speaker_names(speakers: Sequence[str], request: int | Sequence[str] | None) -> tuple[str, ...]:
    """The held-out speakers that ``data.splits.held_out_speakers`` names.

    Args:
        speakers: the corpus's speakers (with usable utterances).
        request: ``None`` or ``0``: none; a number N: the last N speakers in sorted order; a list (or
            one name): those speakers.

    Returns:
        The held-out speakers, sorted.

    Raises:
        CorpusError: an unknown speaker, or every speaker held out (one must stay for training).
    """
    ordered = sorted(set(speakers))
    if request is None or (isinstance(request, int) and request == 0):
        return ()
    if isinstance(request, int):
        if not 0 < request < len(ordered):
            raise CorpusError(
                f"data.splits.held_out_speakers={request}: the corpus has {len(ordered)} "
                f"speaker{'s' if len(ordered) != 1 else ''}; at least one must stay for training"
            )
        return tuple(ordered[-request:])
    names = [request] if isinstance(request, str) else [str(name) for name in request]
    for name in names:
        if name not in ordered:
            shown = ", ".join(ordered[:8]) + (", ..." if len(ordered) > 8 else "")
            raise CorpusError(
                f"data.splits.held_out_speakers: no speaker {name!r} among the corpus's "
                f"{len(ordered)} ({shown})"
            )
    held = tuple(sorted(set(names)))
    if len(held) >= len(ordered):
        raise CorpusError(
            "data.splits.held_out_speakers: names every speaker; at least one must stay for training"
        )
    return held


def _allocate(sizes: Mapping[str, int], seats: int, limits: Mapping[str, int]) -> dict[str, int]:
    """Sainte-Laguë: each seat to the speaker with the largest ``size / (2 · seats so far + 1)`` under
    its limit (proportional shares, rounded without favouring the large speakers)."""
    taken = dict.fromkeys(sizes, 0)
    heap = [(-float(sizes[name]), name) for name in sorted(sizes) if limits.get(name, 0) > 0]
    heapq.heapify(heap)
    for _ in range(seats):
        if not heap:
            break
        _, name = heapq.heappop(heap)
        taken[name] += 1
        if taken[name] < limits[name]:
            heapq.heappush(heap, (-sizes[name] / (2 * taken[name] + 1), name))
    return taken


def _draw(sizes: Mapping[str, int], seats: int, used: dict[str, int]) -> dict[str, int]:
    """``seats`` shared among speakers; all but one utterance each first, then the last ones if needed."""
    first = _allocate(sizes, seats, {name: sizes[name] - 1 - used[name] for name in sizes})
    short = seats - sum(first.values())
    if short:
        second = _allocate(sizes, short, {name: sizes[name] - used[name] - first[name] for name in sizes})
        first = {name: first[name] + second[name] for name in sizes}
    for name, value in first.items():
        used[name] += value
    return first


def split_by_speaker(
    speaker_of: Mapping[str, str], n_eval: int, n_dev: int, held_out_speakers: Sequence[str] = ()
) -> dict[str, list[str]]:
    """Split utterance ids into train/dev/eval speaker by speaker (rule in the module docstring).

    Args:
        speaker_of: the speaker of every utterance id.
        n_eval: eval utterances (drawn from the held-out speakers when there are any).
        n_dev: dev utterances (from the other speakers).
        held_out_speakers: speakers whose utterances go to eval only.

    Returns:
        ``{"train": [...], "dev": [...], "eval": [...]}``, each list sorted; with held-out speakers
        their utterances beyond the ``n_eval`` drawn are in none.

    Raises:
        CorpusError: negative sizes, or fewer utterances than the sizes need.
    """
    if n_eval < 0 or n_dev < 0:
        raise CorpusError(f"split sizes must be >= 0, got n_eval={n_eval}, n_dev={n_dev}")
    by_speaker: dict[str, list[str]] = defaultdict(list)
    for utterance_id, speaker in speaker_of.items():
        by_speaker[speaker].append(utterance_id)
    held = set(held_out_speakers)
    unknown = held - set(by_speaker)
    if unknown:
        raise CorpusError(f"held-out speaker {sorted(unknown)[0]!r} has no utterance")
    seen = {name: len(ids) for name, ids in by_speaker.items() if name not in held}
    if sum(seen.values()) < n_dev + 1 + (0 if held else n_eval):
        raise CorpusError(
            f"the corpus has {sum(seen.values())} utterances of training speakers, too few for "
            f"n_eval={n_eval} + n_dev={n_dev} and at least one training utterance"
        )
    if held:
        held_sizes = {name: len(by_speaker[name]) for name in held}
        if sum(held_sizes.values()) < n_eval:
            raise CorpusError(
                f"the held-out speakers have {sum(held_sizes.values())} utterances, "
                f"too few for n_eval={n_eval}"
            )
        eval_counts = _allocate(held_sizes, n_eval, held_sizes)
        used = dict.fromkeys(seen, 0)
    else:
        used = dict.fromkeys(seen, 0)
        eval_counts = _draw(seen, n_eval, used)
    dev_counts = _draw(seen, n_dev, used)
    splits: dict[str, list[str]] = {name: [] for name in SPLITS}
    for speaker, ids in by_speaker.items():
        ordered = sorted(ids)
        n_speaker_eval = eval_counts.get(speaker, 0)
        n_speaker_dev = dev_counts.get(speaker, 0)
        rest = len(ordered) - n_speaker_eval - n_speaker_dev
        splits["eval"] += ordered[rest + n_speaker_dev :]
        if speaker not in held:
            splits["dev"] += ordered[rest : rest + n_speaker_dev]
            splits["train"] += ordered[:rest]
    return {name: sorted(ids) for name, ids in splits.items()}


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
