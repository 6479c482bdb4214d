"""A resumable, distributed-aware sampler that also hands out per-item crop seeds."""

from __future__ import annotations

from collections.abc import Iterator

import torch


class ResumableSampler(torch.utils.data.Sampler):
    """Yields ``(index, crop_seed)`` pairs in a seeded per-epoch permutation, endlessly.

    The position is set from the trainer's count of consumed batches, so a resumed run sees exactly
    the items (and random crops) the uninterrupted run would have seen. With ``world_size > 1``
    rank ``r`` takes every ``world_size``-th item of the permutation (all ranks agree on the epoch).

    Args:
        num_items: dataset length.
        seed: base seed of the permutations and crop seeds.
        shuffle: permute each epoch (else natural order).
        rank, world_size: data-parallel position.
    """

    def __init__(
        self, num_items: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1
    ) -> None:
        if num_items < 1:
            raise ValueError("the dataset is empty: nothing to sample")
        self.num_items = num_items
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.offset = 0  # items of this rank already consumed in self.epoch

    @property
    def items_per_epoch(self) -> int:
        """Items this rank draws per epoch (the permutation is truncated to a multiple of world_size)."""
        return max(self.num_items // self.world_size, 1)

    def set_position(self, items_consumed: int) -> None:
        """Place the sampler after ``items_consumed`` items of this rank since the start of training."""
        self.epoch, self.offset = divmod(items_consumed, self.items_per_epoch)

    def _epoch_order(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(self.num_items, generator=generator) if self.shuffle else torch.arange(
            self.num_items
        )
        usable = self.items_per_epoch * self.world_size
        if usable > self.num_items:  # fewer items than ranks: wrap around
            order = order.repeat(usable // self.num_items + 1)
        return order[:usable][self.rank :: self.world_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, offset = self.epoch, self.offset
        while True:
            order = self._epoch_order(epoch)
            for position in range(offset, len(order)):
                crop_seed = (self.seed * 7_919 + epoch * 104_729 + position * 15_485_863 + self.rank) % (2**31)
                yield int(order[position]), crop_seed
            epoch, offset = epoch + 1, 0

    def __len__(self) -> int:
        return self.items_per_epoch
