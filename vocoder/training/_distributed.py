"""Data-parallel set-up from torchrun's environment (gloo on CPU, nccl on GPU)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_kind: str) -> DistributedContext:
    """Join the process group described by torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``.

    A plain ``python`` launch (no ``WORLD_SIZE`` or 1) is a single process and touches nothing.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device_kind == "cuda" else "gloo"
        if device_kind == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank)


def shutdown_distributed(clean: bool = True) -> None:
    """Leave the process group; after a clean run every rank first waits for the others.

    Without the barrier a rank that finishes early (the others still writing a checkpoint) tears its gloo
    connections down under a peer, which can abort that peer's process (SIGABRT) instead of exiting 0.
    After an error there is no barrier: the other ranks may never reach it.
    """
    if dist.is_available() and dist.is_initialized():
        if clean:
            dist.barrier()
        dist.destroy_process_group()


def any_rank(flag: bool, context: DistributedContext, device: torch.device) -> bool:
    """True on every rank if ``flag`` is true on at least one (e.g. a stop request)."""
    if not context.enabled:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)
