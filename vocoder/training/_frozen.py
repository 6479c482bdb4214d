"""Frozen pretrained networks inside training: :class:`FrozenModule` and a feature-consistency loss.

The bug this prevents: a "frozen" pretrained network (a speaker encoder, a teacher) used inside a loss
whose weights change after one optimizer step, because ``eval()`` does not stop gradients and the
network's parameters went into the optimizer with the rest of the owner's parameters. A
:class:`FrozenModule` holds the network *outside* PyTorch's module registry, so the owner's
``parameters()``, ``state_dict()`` (hence every checkpoint and the EMA's averaging) and any optimizer
built from them never see its weights; its parameters do not require grad (gradients flow through it
to its inputs only) and it stays in eval mode when the owner calls ``train()``. Device and dtype moves
of the owner (``.to``, ``.cuda``, ``.double``) still reach it.

Every parameter of a frozen network is *marked* (:func:`mark_frozen`); the trainer refuses to start
when an optimizer holds a marked parameter — e.g. the same network registered a second time as a
plain submodule.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

#: attribute set to True on the parameters of a frozen network
FROZEN_MARK = "_vocoder_frozen"


def mark_frozen(module: nn.Module) -> nn.Module:
    """Declare a network's parameters frozen: an optimizer that holds one makes the trainer refuse.

    Marking changes nothing else (gradients, mode); :class:`FrozenModule` marks *and* freezes.

    Args:
        module: the pretrained network.

    Returns:
        The same module.
    """
    for param in module.parameters():
        setattr(param, FROZEN_MARK, True)
    return module


def is_frozen(param: torch.Tensor) -> bool:
    """Whether ``param`` belongs to a network marked frozen (:func:`mark_frozen`)."""
    return bool(getattr(param, FROZEN_MARK, False))


def frozen_parameters_in(optimizer: torch.optim.Optimizer) -> int:
    """Number of parameters marked frozen among an optimizer's parameter groups."""
    return sum(is_frozen(p) for group in optimizer.param_groups for p in group["params"])


class FrozenModule(nn.Module):
    """Holds a pretrained network so that it is used, never trained, by the module that owns it.

    Calling the wrapper calls the network; other attributes are looked up on the network
    (``frozen.bits``, ``frozen.mixture_params(...)``); :attr:`module` is the network itself.

    * not the owner's: the network is kept outside ``_modules``, so it is absent from the owner's
      ``parameters()``, ``named_modules()``, ``state_dict()`` and so from optimizers, EMA and
      checkpoints (a checkpoint names the pretrained network's source, not its weights);
    * no gradients to its weights: ``requires_grad`` is off on every parameter (and each is marked,
      :func:`mark_frozen`); gradients still flow through it to its inputs;
    * always eval: ``owner.train()`` leaves it in eval mode (dropout off, batch-norm statistics fixed);
    * moves with the owner: ``.to(device)``, ``.double()``… apply to it;
    * a deep copy (e.g. the trainer's EMA copy of a model that holds one) shares the network, which
      cannot change.

    Args:
        module: the pretrained network (frozen in place).

    Example:
        >>> encoder = nn.Linear(3, 2)
        >>> owner = nn.Module()
        >>> owner.encoder = FrozenModule(encoder)
        >>> list(owner.parameters()), list(owner.state_dict())
        ([], [])
        >>> x = torch.ones(1, 3, requires_grad=True)
        >>> owner.encoder(x).sum().backward()
        >>> encoder.weight.grad is None, x.grad is not None
        (True, True)
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        if isinstance(module, FrozenModule):
            module = module.module
        module.requires_grad_(False)
        mark_frozen(module)
        module.eval()
        # outside nn.Module's registry on purpose: that is what keeps it out of parameters()/state_dict()
        object.__setattr__(self, "_frozen", module)
        self.training = False

    @property
    def module(self) -> nn.Module:
        """The wrapped network."""
        return self._frozen

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self._frozen(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "_frozen":  # not yet set (during construction or unpickling)
                raise
            return getattr(self._frozen, name)

    def train(self, mode: bool = True) -> FrozenModule:
        # the wrapper reports eval too: nothing of a frozen network follows the owner's mode
        self.training = False
        self._frozen.eval()
        return self

    def _apply(self, fn, recurse: bool = True):
        self._frozen._apply(fn)
        # conversions may create new parameter objects: keep them frozen and marked
        self._frozen.requires_grad_(False)
        mark_frozen(self._frozen)
        return super()._apply(fn, recurse)

    def __deepcopy__(self, memo: dict) -> FrozenModule:
        return FrozenModule(self._frozen)

    def extra_repr(self) -> str:
        return f"frozen={type(self._frozen).__name__}"


def _masked_frames(
    lengths: torch.Tensor | None, batch: int, frames: int, device: torch.device
) -> torch.Tensor:
    if lengths is None:
        return torch.ones(batch, frames, dtype=torch.bool, device=device)
    return torch.arange(frames, device=device)[None, :] < torch.as_tensor(lengths, device=device)[:, None]


class FeatureConsistencyLoss(nn.Module):
    """Distance between the embeddings a frozen pretrained network gives generated and natural inputs.

    ``loss = mean_t d(φ(generated)_t, φ(natural)_t)`` over valid frames, ``φ`` the frozen network
    (e.g. a pretrained LPCNet's frame-rate network, :func:`lpcnet_frame_embedding`), ``d`` one of

    * ``l1``: mean absolute difference over the embedding channels;
    * ``mse``: mean squared difference;
    * ``cosine``: ``1 - cos(φ(generated)_t, φ(natural)_t)``.

    Gradients reach ``generated`` through ``φ``; ``φ`` itself is never trained (:class:`FrozenModule`).

    Args:
        network: the pretrained network ``(B, T, D) → (B, T - trim, C)`` (wrapped here if it is not a
            :class:`FrozenModule` already).
        distance: ``l1``, ``mse`` or ``cosine``.
        trim: frames the network's output is shorter than its input (valid convolutions; ``None``:
            the network's ``frames_trimmed`` attribute, else 0). Output frame ``t`` is valid when
            ``t + trim < length``.
    """

    DISTANCES = ("l1", "mse", "cosine")

    def __init__(self, network: nn.Module, distance: str = "l1", trim: int | None = None) -> None:
        super().__init__()
        if distance not in self.DISTANCES:
            raise ValueError(f"distance must be one of {', '.join(self.DISTANCES)}, got {distance!r}")
        self.network = network if isinstance(network, FrozenModule) else FrozenModule(network)
        self.distance = distance
        self.trim = int(getattr(self.network.module, "frames_trimmed", 0) if trim is None else trim)

    def forward(
        self, generated: torch.Tensor, natural: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The loss.

        Args:
            generated: ``(B, T, D)`` synthesized or decoded inputs of the network.
            natural: ``(B, T, D)`` the natural ones.
            lengths: ``(B,)`` valid frames per sequence (``None``: all).

        Returns:
            Scalar.
        """
        with torch.no_grad():
            target = self.network(natural)
        embedded = self.network(generated)
        if self.distance == "l1":
            per_frame = (embedded - target).abs().mean(-1)
        elif self.distance == "mse":
            per_frame = (embedded - target).square().mean(-1)
        else:
            per_frame = 1.0 - nn.functional.cosine_similarity(embedded, target, dim=-1)
        B, frames = per_frame.shape
        valid_lengths = None if lengths is None else (torch.as_tensor(lengths) - self.trim).clamp_min(0)
        valid = _masked_frames(valid_lengths, B, frames, per_frame.device)
        return (per_frame * valid).sum() / valid.sum().clamp_min(1)


class LPCNetFrameEmbedding(nn.Module):
    """LPCNet's frame-rate network as an embedding of raw LPCNet features.

    ``(B, T, n_features) → (B, T - 2·frame_context, frame_channels)``: the conditioning vectors the
    sample-rate network sees (its valid convolutions consume ``frame_context`` frames on each side).

    Args:
        lpcnet: a trained :class:`vocoder.models.LPCNet` (its feature normalization is used).
    """

    def __init__(self, lpcnet: nn.Module) -> None:
        super().__init__()
        self.lpcnet = lpcnet
        self.frames_trimmed = 2 * lpcnet.frame_context

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.lpcnet.frame_rate_network(features)


def lpcnet_frame_embedding(checkpoint: str, use_ema: bool = True) -> FrozenModule:
    """The frozen frame-rate network of a trained LPCNet checkpoint (for :class:`FeatureConsistencyLoss`).

    Args:
        checkpoint: a ``vocoder-train`` LPCNet checkpoint (``recipe=demo``, ``slt_lpcnet_small``…), its
            weights file, or ``pretrained:NAME``.
        use_ema: the EMA weights (default) or the raw ones.

    Returns:
        A :class:`FrozenModule` of :class:`LPCNetFrameEmbedding` on the CPU (it follows the owner's
        device).

    Raises:
        CheckpointError: one line, for a missing, unreadable or non-LPCNet checkpoint.
    """
    from vocoder.checkpoints import rebuild_model

    model, _ = rebuild_model(checkpoint, use_ema=use_ema, device="cpu", expect="LPCNet")
    return FrozenModule(LPCNetFrameEmbedding(model))

