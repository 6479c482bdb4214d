"""Block-sparse magnitude pruning on a cubic schedule (LPCNet §3.4, after WaveRNN).

A weight matrix is cut into equal row chunks (the three gates of a GRU matrix, or one chunk for a
``Linear``) and each chunk into blocks of ``block = (rows, cols)`` weights — LPCNet uses 16×1: 16
consecutive output rows × one input column, the unit its sparse matrix–vector product skips. At
scheduled steps the blocks with the smallest L2 norm are zeroed so that a fraction

    d(t) = d_final + (1 − d_final) · (1 − (t − t₀)/(t₁ − t₀))³        (t₀ ≤ t < t₁)

of the blocks survives (``d = 1`` before ``t₀``, ``d_final`` from ``t₁`` on), which is xiph's
``density = 1 − (1 − d_final)(1 − r³)`` with ``r = 1 − (t − t₀)/(t₁ − t₀)``. Masks are recomputed at
``t₀, t₀ + interval, …`` up to ``t₁`` (and at ``t₁``); like xiph, ``round(n_blocks · (1 − d))``
blocks are removed. For square chunks the diagonal (each unit's own recurrent weight) is always
kept and excluded from the block norms.

``regrow=True`` is xiph's ``Sparsify`` callback: weights are zeroed only at the scheduled steps and
grow back from their gradients in between, and from ``t₁`` on the blocks are re-selected by
magnitude after every step. ``regrow=False`` re-applies the masks after every optimizer step, so
pruned blocks stay exactly zero and every intermediate model is as sparse as its schedule says.
:attr:`applied` says whether the last :meth:`step` zeroed the pruned module; a copy such as the EMA
weights should be masked (:meth:`apply_masks_to`) exactly then, so that it averages the trajectory the
module really took: masking an EMA after every step while the module regrows leaves each re-selected
block at a fraction of its weight for ~1/(1 − decay) steps, a damaged network (measured: an LPCNet
whose masked EMA sampled with 91 % gross pitch error while its raw weights had 10 %).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

GRU_GATES = ("reset", "update", "candidate")  # torch's row order of GRU weights: r, z, n


@dataclass(frozen=True)
class SparseTarget:
    """One weight matrix to prune.

    Args:
        name: parameter name inside the pruned module (e.g. ``"weight_hh_l0"``).
        chunks: names of its equal row chunks, top to bottom (e.g. the GRU gates ``reset``,
            ``update``, ``candidate``); one name for a whole matrix.
        densities: final fraction of blocks kept per chunk, in ``(0, 1]``.
        keep_diagonal: always keep the diagonal of square chunks.
    """

    name: str
    chunks: tuple[str, ...]
    densities: tuple[float, ...]
    keep_diagonal: bool = True

    def __post_init__(self) -> None:
        if len(self.chunks) != len(self.densities) or not self.chunks:
            raise ValueError(f"{self.name}: need one density per chunk, got {self.chunks} / {self.densities}")
        if not all(0.0 < d <= 1.0 for d in self.densities):
            raise ValueError(f"{self.name}: densities must be in (0, 1], got {self.densities}")


class BlockSparsifier(nn.Module):
    """Prunes weight matrices of ``module`` to per-chunk block densities on a cubic schedule.

    The masks are boolean buffers (``state_dict`` / ``load_state_dict`` resume them with the step
    of their last update); the pruned module itself is not part of this module's state.

    Args:
        module: the module owning the parameters (e.g. an ``nn.GRU``).
        targets: the matrices to prune.
        start: first pruning step ``t₀`` (xiph: 2,000).
        end: step ``t₁`` at which the final densities are reached (xiph: 40,000).
        interval: steps between mask updates in ``[t₀, t₁]`` (xiph: 400).
        block: block shape ``(rows, cols)``; the chunk sizes must be divisible by it.
        regrow: xiph's behaviour (module docstring) instead of masks held after every step.
    """

    def __init__(self, module: nn.Module, targets: Sequence[SparseTarget], start: int = 2000,
                 end: int = 40000, interval: int = 400, block: Sequence[int] = (16, 1),
                 regrow: bool = False) -> None:
        super().__init__()
        if not 0 <= start < end:
            raise ValueError(f"need 0 <= start < end, got start={start}, end={end}")
        if interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval}")
        block = tuple(int(b) for b in block)
        if len(block) != 2 or min(block) < 1:
            raise ValueError(f"block must be (rows, cols) >= 1, got {block}")
        self.start, self.end, self.interval, self.block = int(start), int(end), int(interval), block
        self.regrow = bool(regrow)
        #: whether the last :meth:`step` zeroed the pruned weights (then copies such as the EMA should be too)
        self.applied = False
        self.targets = tuple(targets)
        # a tuple is not registered as a submodule: the pruned module stays out of our state_dict
        self._module = (module,)
        for target in self.targets:
            weight = self._parameter(module, target)
            rows, cols = weight.shape
            if rows % len(target.chunks) or (rows // len(target.chunks)) % block[0] or cols % block[1]:
                raise ValueError(f"{target.name} {tuple(weight.shape)}: {len(target.chunks)} chunks of "
                                 f"{block}-blocks do not tile it")
            self.register_buffer(self._mask_name(target), torch.ones(rows, cols, dtype=torch.bool,
                                                                     device=weight.device))
        self.register_buffer("last_update", torch.tensor(-1, dtype=torch.int64))

    @classmethod
    def for_gru(cls, gru: nn.GRU, targets: Mapping[str, float] | None = None, start: int = 2000,
                end: int = 40000, interval: int = 400, block: Sequence[int] = (16, 1),
                layer: int = 0, regrow: bool = False) -> BlockSparsifier:
        """Prune the recurrent matrix of one GRU layer per gate.

        Args:
            gru: the GRU.
            targets: final densities by gate name ``update`` / ``reset`` / ``candidate`` (missing
                gates: LPCNet's 0.05 / 0.05 / 0.2).
            start, end, interval, block, regrow: as in the constructor.
            layer: the GRU layer.
        """
        final = {"update": 0.05, "reset": 0.05, "candidate": 0.2}
        unknown = set(targets or {}) - set(final)
        if unknown:
            raise ValueError(f"unknown GRU gates {sorted(unknown)}; use {sorted(final)}")
        final.update({k: float(v) for k, v in (targets or {}).items()})
        target = SparseTarget(f"weight_hh_l{layer}", GRU_GATES, tuple(final[g] for g in GRU_GATES))
        return cls(gru, [target], start=start, end=end, interval=interval, block=block, regrow=regrow)

    # ---------------------------------------------------------------------------------- helpers
    @staticmethod
    def _parameter(module: nn.Module, target: SparseTarget) -> torch.Tensor:
        weight = module.get_parameter(target.name)
        if weight.dim() != 2:
            raise ValueError(f"{target.name} must be a matrix, got shape {tuple(weight.shape)}")
        return weight

    @staticmethod
    def _mask_name(target: SparseTarget) -> str:
        return "mask_" + target.name.replace(".", "_")

    def mask(self, target: SparseTarget) -> torch.Tensor:
        """The boolean keep-mask of ``target`` (shape of its weight)."""
        return self.get_buffer(self._mask_name(target))

    def density_at(self, final: float, step: int) -> float:
        """Scheduled fraction of blocks kept at ``step`` for a final density ``final``."""
        if step < self.start:
            return 1.0
        if step >= self.end:
            return final
        remaining = 1.0 - (step - self.start) / (self.end - self.start)
        return final + (1.0 - final) * remaining**3

    def is_update_step(self, step: int) -> bool:
        """Whether :meth:`step` recomputes the masks at ``step``."""
        if step < self.start:
            return False
        if step >= self.end:
            return self.regrow or int(self.last_update) < self.end
        return (step - self.start) % self.interval == 0

    # -------------------------------------------------------------------------------- pruning
    @torch.no_grad()
    def update_masks(self, step: int) -> None:
        """Recompute every mask for the scheduled densities at ``step`` (weights are not touched)."""
        rows_per_block, cols_per_block = self.block
        module = self._module[0]
        for target in self.targets:
            weight = self._parameter(module, target).detach()
            mask = self.mask(target)
            chunk_rows = weight.shape[0] // len(target.chunks)
            for index, final in enumerate(target.densities):
                rows = slice(index * chunk_rows, (index + 1) * chunk_rows)
                chunk = weight[rows].float()
                square = chunk.shape[0] == chunk.shape[1] and target.keep_diagonal
                if square:
                    chunk = chunk - torch.diag(torch.diagonal(chunk))
                r, c = chunk.shape
                blocks = chunk.reshape(r // rows_per_block, rows_per_block, c // cols_per_block, -1)
                norms = blocks.square().sum((1, 3))  # (row blocks, column blocks)
                n_blocks = norms.numel()
                # xiph removes round(n · (1 − d)) blocks (Python's round: half to even)
                n_keep = n_blocks - round(n_blocks * (1.0 - self.density_at(final, step)))
                keep = torch.zeros(n_blocks, dtype=torch.bool, device=weight.device)
                keep[torch.topk(norms.flatten(), n_keep, sorted=False).indices] = True
                chunk_mask = keep.reshape(norms.shape)
                chunk_mask = chunk_mask.repeat_interleave(rows_per_block, 0)
                chunk_mask = chunk_mask.repeat_interleave(cols_per_block, 1)
                if square:
                    chunk_mask |= torch.eye(r, dtype=torch.bool, device=weight.device)
                mask[rows] = chunk_mask
        self.last_update.fill_(step)

    @torch.no_grad()
    def apply_masks_to(self, module: nn.Module) -> None:
        """Zero the pruned weights of ``module`` (the pruned module or a copy of it, e.g. EMA)."""
        for target in self.targets:
            self._parameter(module, target).mul_(self.mask(target))

    def apply_masks(self) -> None:
        """Zero the pruned weights of the pruned module."""
        self.apply_masks_to(self._module[0])

    def step(self, step: int) -> bool:
        """Call after every optimizer step: update the masks when scheduled, then apply them.

        Args:
            step: the global step just completed.

        Returns:
            whether the masks were recomputed.
        """
        updated = self.is_update_step(step)
        if updated:
            self.update_masks(step)
        self.applied = updated or (not self.regrow and int(self.last_update) >= 0)
        if self.applied:
            self.apply_masks()
        return updated

    def densities(self) -> dict[str, float]:
        """Fraction of blocks kept per chunk (the always-kept diagonal not counted).

        Keys are the chunk names (e.g. ``update``) for a single target, ``"<name>/<chunk>"``
        otherwise.
        """
        rows_per_block, cols_per_block = self.block
        result = {}
        for target in self.targets:
            mask = self.mask(target)
            chunk_rows = mask.shape[0] // len(target.chunks)
            for index, chunk_name in enumerate(target.chunks):
                chunk = mask[index * chunk_rows : (index + 1) * chunk_rows]
                if chunk.shape[0] == chunk.shape[1] and target.keep_diagonal:
                    chunk = chunk & ~torch.eye(chunk.shape[0], dtype=torch.bool, device=chunk.device)
                r, c = chunk.shape
                blocks = chunk.reshape(r // rows_per_block, rows_per_block, c // cols_per_block, -1)
                key = chunk_name if len(self.targets) == 1 else f"{target.name}/{chunk_name}"
                result[key] = float(blocks.any(3).any(1).float().mean())
        return result

    def extra_repr(self) -> str:
        names = ", ".join(t.name for t in self.targets)
        return (f"[{names}], start={self.start}, end={self.end}, interval={self.interval}, block={self.block}, "
                f"regrow={self.regrow}")
