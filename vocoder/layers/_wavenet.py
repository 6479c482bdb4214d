"""WaveNet building blocks shared by the autoregressive teacher and the IAF student.

A :class:`WaveNetStack` is: a 1×1 input convolution, ``layers`` :class:`ResidualBlock` s (causal
dilated convolution, gated ``tanh ⊙ sigmoid`` activation with local conditioning added inside the
gate, 1×1 residual and skip convolutions), and an output head ``ReLU → 1×1 → ReLU → 1×1`` fed by the
scaled sum of the skip outputs (or, with ``skip_channels=None``, by the last residual output, as in the
Parallel WaveNet student). Residual sums are scaled by ``√½`` and the skip sum by ``√(1/layers)``
so activations keep their variance through deep stacks (wavenet_vocoder's convention).

Output ``t`` depends on inputs ``≤ t`` only; callers shift their inputs for strict autoregression.

Three evaluations of the same parameters:

* :meth:`WaveNetStack.forward` — channels-first ``(B, C, T)`` convolutions, differentiable, training.
* :meth:`WaveNetStack.stream` — time-major ``(n, B, C)`` blocks of any length with a per-layer history
  of the last ``(kernel_size - 1) · dilation`` inputs; evaluating a signal block by block equals
  evaluating it at once. Used for fast cache-friendly synthesis (the student), exact to rounding.
* :meth:`WaveNetStack.step` — one sample at a time with per-layer ring-buffer queues of past inputs
  (Fast WaveNet), used by the teacher's autoregressive generation.

The two inference paths read weights rearranged once by :meth:`WaveNetStack.streaming_weights`:
convolution taps stacked into one matrix, the tanh half of each gate pre-scaled by 2 so that one
sigmoid serves both halves (``tanh(a) = 2σ(2a) − 1``, and ``σ(b) − 2σ(2a)σ(b) = −tanh(a)σ(b)`` is one
``addcmul``; torch's CPU sigmoid is far cheaper than its tanh), the sign and the residual/skip
scales folded into the 1×1 output matrices, and every dilated-convolution bias folded into the
conditioning projection. Both are inference paths: dropout is not applied.

This module avoids ``from __future__ import annotations`` because TorchScript cannot resolve string
annotations inside ``NamedTuple`` s; the student is scripted through it.
"""

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

SQRT_HALF = math.sqrt(0.5)


def wavenet_dilations(layers: int, dilation_cycle: int) -> list[int]:
    """Dilations ``1, 2, 4, …, 2**(cycle-1)`` repeated until ``layers`` values.

    Args:
        layers: number of residual layers.
        dilation_cycle: dilations double ``dilation_cycle`` times before restarting at 1.

    Returns:
        List of ``layers`` dilations.
    """
    if layers < 1 or dilation_cycle < 1:
        raise ValueError(f"layers and dilation_cycle must be ≥ 1, got {layers}, {dilation_cycle}")
    return [2 ** (i % dilation_cycle) for i in range(layers)]


def shift_right(x: torch.Tensor) -> torch.Tensor:
    """Delay a signal by one sample along the last axis, filling the first sample with zero.

    Args:
        x: (..., T) signal.

    Returns:
        (..., T) signal ``y`` with ``y[..., 0] = 0`` and ``y[..., t] = x[..., t - 1]``.
    """
    return F.pad(x, (1, 0))[..., :-1]


class CausalConv1d(nn.Conv1d):
    """Dilated 1-D convolution padded on the left only, so output ``t`` sees inputs ``≤ t``.

    Args:
        in_channels: input channels C_in.
        out_channels: output channels C_out.
        kernel_size: taps k.
        dilation: spacing d between taps; the receptive field is ``(k - 1) · d + 1``.
        bias: add a learned bias.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1, bias: bool = True
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation, bias=bias)
        self.left_padding = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, T) → (B, C_out, T)."""
        return self._conv_forward(F.pad(x, (self.left_padding, 0)), self.weight, self.bias)


class ResidualBlock(nn.Module):
    """One gated residual layer: causal dilated conv, conditioning inside the gate, residual/skip 1×1.

    ``h = W_d * x + V c``, ``g = tanh(h_a) ⊙ σ(h_b)`` (halves of ``h``), residual output
    ``√½ (x + W_r g)``, skip output ``W_s g``.

    Args:
        residual_channels: channels C of the residual stream.
        gate_channels: channels G of the dilated convolution (split into two halves of G/2).
        skip_channels: channels S of the skip output; 0 for none.
        cond_channels: channels of the (upsampled) conditioning; 0 for none.
        kernel_size: taps of the dilated convolution (≥ 2).
        dilation: dilation of the dilated convolution.
        dropout: dropout probability on the block input while training.
    """

    def __init__(
        self,
        *,
        residual_channels: int,
        gate_channels: int,
        skip_channels: int,
        cond_channels: int,
        kernel_size: int,
        dilation: int,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if gate_channels % 2:
            raise ValueError(f"gate_channels must be even, got {gate_channels}")
        if kernel_size < 2:
            raise ValueError(f"kernel_size must be ≥ 2, got {kernel_size}")
        self.residual_channels = residual_channels
        self.skip_channels = skip_channels
        self.dilation = dilation
        self.dropout = dropout
        self.residual_scale = SQRT_HALF
        self.conv = CausalConv1d(residual_channels, gate_channels, kernel_size, dilation)
        # No bias: the dilated convolution already has one.
        self.cond = nn.Conv1d(cond_channels, gate_channels, 1, bias=False) if cond_channels > 0 else None
        # Residual and skip 1×1 convolutions as one matrix (residual rows first).
        self.out = nn.Conv1d(gate_channels // 2, residual_channels + skip_channels, 1)

    def forward(
        self, x: torch.Tensor, cond: torch.Tensor | None = None, cond_repeat: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Apply the layer.

        Args:
            x: (B, C, T) residual input.
            cond: (B, C_cond, T / cond_repeat) conditioning, or None when ``cond_channels`` is 0.
            cond_repeat: each conditioning column stands for this many consecutive samples (its
                1×1 projection is computed at the low rate and then repeated, which equals
                projecting the repeated features).

        Returns:
            ``(residual, skip)``: (B, C, T) and (B, S, T) (S may be 0).
        """
        h = F.dropout(x, p=self.dropout, training=self.training)
        h = self.conv(h)
        cond_conv = self.cond
        if cond_conv is not None:
            if cond is None:
                raise ValueError("this block is conditioned: pass cond")
            c = cond_conv(cond)
            if cond_repeat > 1:
                c = c.repeat_interleave(cond_repeat, dim=2)
            h = h + c
        a, b = h.chunk(2, dim=1)
        out = self.out(torch.tanh(a) * torch.sigmoid(b))
        residual = (x + out[:, : self.residual_channels]) * self.residual_scale
        return residual, out[:, self.residual_channels :]


class LayerWeights(NamedTuple):
    """Weights of one residual layer rearranged for the matrix-product inference paths."""

    taps: torch.Tensor  # (k·C, G): rows of the oldest tap first; tanh half × 2
    bias: torch.Tensor  # (G,): tanh half × 2
    residual: torch.Tensor  # (G/2, C): × −1 (the gate is −tanh·σ) × √½ (residual scale)
    residual_bias: torch.Tensor  # (C,): × √½
    skip: torch.Tensor  # (G/2, S): × −1 (gate) × √(1/layers); S may be 0
    # For :meth:`WaveNetStack.stream`, whose residual stream is kept as u_i = h_i / √½^i so that the
    # residual update is one in-place product (u_{i+1} = u_i + gate·R' + b'), without the √½ rescaling:
    stream_taps: torch.Tensor  # taps × √½^i
    stream_residual: torch.Tensor  # residual / √½^(i+1)
    stream_residual_bias: torch.Tensor  # residual_bias / √½^(i+1)


class StreamingWeights(NamedTuple):
    """All weights of a :class:`WaveNetStack` rearranged for :meth:`~WaveNetStack.stream`/``step``."""

    input_weight: torch.Tensor  # (C_in, C)
    input_bias: torch.Tensor  # (C,)
    layers: list[LayerWeights]
    cond_weight: torch.Tensor | None  # (C_cond, L·G): every layer's projection; tanh halves × 2
    cond_bias: torch.Tensor  # (L·G,): every layer's dilated-conv bias (tanh halves × 2)
    skip_bias: torch.Tensor  # (S,): Σ skip biases × √(1/layers)
    head_weight: torch.Tensor  # (S or C, H)
    stream_head_weight: torch.Tensor  # head_weight, × √½^layers when the head reads the residual stream
    head_bias: torch.Tensor  # (H,)
    output_weight: torch.Tensor  # (H, C_out)
    output_bias: torch.Tensor  # (C_out,)


class WaveNetStack(nn.Module):
    """A conditioned WaveNet: input 1×1, dilated gated residual layers, skip sum and output head.

    Args:
        in_channels: channels of the input signal (1 for a waveform).
        out_channels: channels of the output (e.g. 3K mixture parameters, or 2 for μ and log s).
        layers: number of residual layers.
        dilation_cycle: dilations ``1 … 2**(cycle-1)`` repeat every ``dilation_cycle`` layers.
        residual_channels: channels C of the residual stream.
        gate_channels: channels G of each dilated convolution (two halves of G/2).
        skip_channels: channels S of the skip connections, or None for no skip connections (the
            head then reads the last residual output).
        cond_channels: channels of the conditioning features; 0 for an unconditioned stack.
        kernel_size: taps of every dilated convolution (≥ 2).
        head_channels: hidden channels of the output head (default: S, or C without skips).
        dropout: dropout probability at each residual block input while training.
    """

    dilations: list[int]

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        layers: int,
        dilation_cycle: int,
        residual_channels: int,
        gate_channels: int,
        skip_channels: int | None,
        cond_channels: int,
        kernel_size: int = 2,
        head_channels: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if skip_channels is not None and skip_channels < 1:
            raise ValueError(f"skip_channels must be ≥ 1 or None, got {skip_channels}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.residual_channels = residual_channels
        self.gate_channels = gate_channels
        self.skip_channels = 0 if skip_channels is None else skip_channels
        self.cond_channels = cond_channels
        self.kernel_size = kernel_size
        self.dilations = wavenet_dilations(layers, dilation_cycle)
        self.skip_scale = math.sqrt(1.0 / layers)
        self.residual_scale = SQRT_HALF
        feature_channels = self.skip_channels if self.skip_channels > 0 else residual_channels
        self.head_channels = feature_channels if head_channels is None else head_channels
        self.input_conv = nn.Conv1d(in_channels, residual_channels, 1)
        self.blocks = nn.ModuleList(
            [
                ResidualBlock(
                    residual_channels=residual_channels,
                    gate_channels=gate_channels,
                    skip_channels=self.skip_channels,
                    cond_channels=cond_channels,
                    kernel_size=kernel_size,
                    dilation=d,
                    dropout=dropout,
                )
                for d in self.dilations
            ]
        )
        self.head = nn.Conv1d(feature_channels, self.head_channels, 1)
        self.output = nn.Conv1d(self.head_channels, out_channels, 1)

    __jit_unused_properties__ = ["receptive_field"]

    @property
    def receptive_field(self) -> int:
        """Number of input samples (current one included) that output ``t`` depends on."""
        return 1 + (self.kernel_size - 1) * sum(self.dilations)

    def forward(
        self, x: torch.Tensor, cond: torch.Tensor | None = None, cond_repeat: int = 1
    ) -> torch.Tensor:
        """Evaluate the whole sequence (training path).

        Args:
            x: (B, C_in, T) input signal.
            cond: (B, C_cond, T / cond_repeat) conditioning, or None for an unconditioned stack.
            cond_repeat: samples per conditioning column (see :meth:`ResidualBlock.forward`).

        Returns:
            (B, C_out, T) output; column ``t`` depends on ``x[..., :t+1]`` only.
        """
        h = self.input_conv(x)
        skip_sum: torch.Tensor | None = None
        for block in self.blocks:
            h, skip = block(h, cond, cond_repeat)
            if self.skip_channels > 0:
                skip_sum = skip if skip_sum is None else skip_sum + skip
        features = h if skip_sum is None else skip_sum * self.skip_scale
        return self.output(F.relu(self.head(F.relu(features))))

    # ------------------------------------------------------------------ inference paths

    def streaming_weights(self) -> StreamingWeights:
        """Rearrange the parameters for :meth:`stream` and :meth:`step` (call once per synthesis).

        Returns:
            The weights as a :class:`StreamingWeights` (views/copies; gradients are not intended).
        """
        half = self.gate_channels // 2
        reference = self.input_conv.weight
        gate_scale = torch.ones(self.gate_channels, dtype=reference.dtype, device=reference.device)
        gate_scale[:half] = 2.0  # tanh(a) = 2σ(2a) − 1: one sigmoid over both halves
        layers: list[LayerWeights] = []
        cond_weights: list[torch.Tensor] = []
        cond_biases: list[torch.Tensor] = []
        skip_bias = torch.zeros(self.skip_channels, dtype=reference.dtype, device=reference.device)
        c = self.residual_channels
        for index, block in enumerate(self.blocks):
            conv_weight = block.conv.weight  # (G, C, k); tap j multiplies x[t - (k - 1 - j) d]
            taps = conv_weight.permute(2, 1, 0).reshape(-1, self.gate_channels) * gate_scale
            conv_bias = block.conv.bias
            bias = conv_bias * gate_scale if conv_bias is not None else torch.zeros_like(gate_scale)
            out_weight = -block.out.weight[:, :, 0].t()  # (G/2, C + S); the paths' gate is −tanh(a)·σ(b)
            out_bias = block.out.bias
            if out_bias is None:
                out_bias = torch.zeros(c + self.skip_channels, dtype=reference.dtype, device=reference.device)
            residual = out_weight[:, :c] * self.residual_scale
            residual_bias = out_bias[:c] * self.residual_scale
            stream_in = self.residual_scale**index  # h_i = √½^i · u_i
            stream_out = self.residual_scale ** (index + 1)
            layers.append(
                LayerWeights(
                    taps=taps.contiguous(),
                    bias=bias,
                    residual=residual.contiguous(),
                    residual_bias=residual_bias,
                    skip=(out_weight[:, c:] * self.skip_scale).contiguous(),
                    stream_taps=(taps * stream_in).contiguous(),
                    stream_residual=(residual / stream_out).contiguous(),
                    stream_residual_bias=residual_bias / stream_out,
                )
            )
            skip_bias = skip_bias + out_bias[c:] * self.skip_scale
            cond_conv = block.cond
            if cond_conv is not None:
                cond_weights.append(cond_conv.weight[:, :, 0].t() * gate_scale)
            cond_biases.append(bias)
        cond_weight: torch.Tensor | None = None
        if len(cond_weights) > 0:
            cond_weight = torch.cat(cond_weights, dim=1).contiguous()
        input_bias = self.input_conv.bias
        head_bias = self.head.bias
        output_bias = self.output.bias
        if input_bias is None or head_bias is None or output_bias is None:
            raise RuntimeError("WaveNetStack convolutions are built with biases")
        return StreamingWeights(
            input_weight=self.input_conv.weight[:, :, 0].t().contiguous(),
            input_bias=input_bias,
            layers=layers,
            cond_weight=cond_weight,
            cond_bias=torch.cat(cond_biases),
            skip_bias=skip_bias,
            head_weight=self.head.weight[:, :, 0].t().contiguous(),
            stream_head_weight=(
                self.head.weight[:, :, 0].t()
                * (self.residual_scale ** len(self.blocks) if self.skip_channels == 0 else 1.0)
            ).contiguous(),
            head_bias=head_bias,
            output_weight=self.output.weight[:, :, 0].t().contiguous(),
            output_bias=output_bias,
        )

    def project_conditioning(self, cond: torch.Tensor, weights: StreamingWeights) -> torch.Tensor:
        """Project conditioning features for every layer at once (biases included), time-major.

        Args:
            cond: (B, C_cond, T_c) conditioning features (frame-rate or sample-rate).
            weights: from :meth:`streaming_weights`.

        Returns:
            (T_c, B, L, G) per-layer gate pre-activation offsets, in the scaled gate convention of
            :meth:`streaming_weights` (pass to :meth:`stream` / :meth:`step`).
        """
        cond_weight = weights.cond_weight
        if cond_weight is None:
            raise ValueError("this stack is unconditioned")
        batch, _, length = cond.shape
        projected = torch.matmul(cond.permute(2, 0, 1), cond_weight) + weights.cond_bias
        return projected.view(length, batch, len(self.dilations), self.gate_channels)

    def init_history(self, batch: int, dtype: torch.dtype, device: torch.device) -> list[torch.Tensor]:
        """Zero input history for :meth:`stream` (the signal starts after silence).

        Returns:
            One time-major ((k - 1)·d, B, C) tensor per layer: the layer's last inputs, oldest first.
        """
        span = self.kernel_size - 1
        return [
            torch.zeros(span * d, batch, self.residual_channels, dtype=dtype, device=device)
            for d in self.dilations
        ]

    def init_queues(self, batch: int, dtype: torch.dtype, device: torch.device) -> list[torch.Tensor]:
        """Zero ring-buffer queues for :meth:`step`.

        Returns:
            One ((k - 1)·d, B, C) tensor per layer; slot ``τ mod (k - 1)d`` holds the layer input of time τ.
        """
        return self.init_history(batch, dtype, device)

    def stream(
        self,
        x: torch.Tensor,
        cond: torch.Tensor | None,
        cond_repeat: int,
        history: list[torch.Tensor],
        weights: StreamingWeights,
    ) -> torch.Tensor:
        """Evaluate the next block of a signal, carrying each layer's input history (inference path).

        Data are time-major, ``(n, B, C)``, so that ``n·B`` rows form one matrix for every product and
        a delay of ``τ`` samples is an offset of ``τ·B`` rows. The dilated convolution is one product
        per tap: the current tap reads the layer input, each delayed tap reads its rows in two
        contiguous pieces (the history for the first ``lag`` rows, the block itself for the rest), so
        no tap matrix is ever assembled and every operand is a contiguous row range.

        Args:
            x: (n, B, C_in) next ``n`` input samples.
            cond: (n / cond_repeat, B, L, G) projected conditioning from :meth:`project_conditioning`
                for these samples, or None for an unconditioned stack.
            cond_repeat: samples per conditioning row (must divide ``n``).
            history: per-layer input history from :meth:`init_history`; replaced in place.
            weights: from :meth:`streaming_weights`.

        Returns:
            (n, B, C_out) outputs, equal to the corresponding columns of :meth:`forward` on the
            concatenation of all blocks so far.
        """
        n, batch, _ = x.shape
        c = self.residual_channels
        g = self.gate_channels
        half = g // 2
        k = self.kernel_size
        rows = n * batch
        # u: the layer input divided by √½^i (see LayerWeights.stream_*), updated in place layer by layer
        u = torch.addmm(weights.input_bias, x.reshape(rows, self.in_channels), weights.input_weight)
        skip: torch.Tensor | None = None
        # gate pre-activations and outputs: one buffer each for all layers (fresh large tensors
        # per layer cost as much as a product here, in allocation and first-touch page faults)
        a = torch.empty(rows, g, dtype=x.dtype, device=x.device)
        gate = torch.empty(rows, half, dtype=x.dtype, device=x.device)
        for i, lw in enumerate(weights.layers):
            d = self.dilations[i]
            past = history[i]
            span = past.shape[0]
            flat_past = past.view(span * batch, c)
            taps = lw.stream_taps
            torch.mm(u, taps[(k - 1) * c :], out=a)
            for j in range(k - 1):
                lag = (k - 1 - j) * d
                tap = taps[j * c : (j + 1) * c]
                m = min(lag, n)
                # rows t < lag read x[t - lag] from the history, the others from this block
                a[: m * batch].addmm_(flat_past[(span - lag) * batch : (span - lag + m) * batch], tap)
                if n > lag:
                    a[m * batch :].addmm_(u[: (n - lag) * batch], tap)
            # the history keeps its own copy: u is updated in place below
            if n >= span:
                history[i] = u[(n - span) * batch :].view(span, batch, c).clone()
            else:
                history[i] = torch.cat([past[n:], u.view(n, batch, c)], dim=0)
            if cond is None:
                a.add_(lw.bias)
            else:
                a.view(n // cond_repeat, cond_repeat, batch, g).add_(cond[:, :, i].unsqueeze(1))
            a.sigmoid_()
            sigmoid_half = a[:, half:]
            torch.addcmul(sigmoid_half, a[:, :half], sigmoid_half, value=-2.0, out=gate)  # −tanh(a)·σ(b)
            if self.skip_channels > 0:
                skip = torch.mm(gate, lw.skip) if skip is None else skip.addmm_(gate, lw.skip)
            u.addmm_(gate, lw.stream_residual).add_(lw.stream_residual_bias)
        # relu commutes with the positive scale folded into stream_head_weight
        features = u if skip is None else skip.add_(weights.skip_bias)
        hidden = torch.addmm(weights.head_bias, features.relu_(), weights.stream_head_weight).relu_()
        out = torch.addmm(weights.output_bias, hidden, weights.output_weight)
        return out.view(n, batch, self.out_channels)

    def step(
        self,
        x: torch.Tensor,
        cond: torch.Tensor | None,
        queues: list[torch.Tensor],
        time: int,
        weights: StreamingWeights,
    ) -> torch.Tensor:
        """Evaluate one sample given per-layer queues of past inputs (autoregressive generation).

        Args:
            x: (B, C_in) input at time ``time``.
            cond: (B, L, G) projected conditioning for this sample (one row of
                :meth:`project_conditioning`'s output), or None when unconditioned.
            queues: per-layer ring buffers from :meth:`init_queues`; the current inputs are written.
            time: index of this sample (0 for the first); must advance by one per call.
            weights: from :meth:`streaming_weights`.

        Returns:
            (B, C_out) output at ``time``, equal to column ``time`` of :meth:`forward`.
        """
        half = self.gate_channels // 2
        k = self.kernel_size
        h = torch.addmm(weights.input_bias, x, weights.input_weight)
        skip: torch.Tensor | None = None
        for i, lw in enumerate(weights.layers):
            d = self.dilations[i]
            queue = queues[i]
            span = queue.shape[0]
            taps = [queue[(time - (k - 1 - j) * d) % span] for j in range(k - 1)]
            taps.append(h)
            stacked = torch.cat(taps, dim=1)
            if cond is None:
                a = torch.addmm(lw.bias, stacked, lw.taps)
            else:
                a = torch.addmm(cond[:, i], stacked, lw.taps)
            # The oldest tap's slot is now free: it receives the current input.
            queue[time % span].copy_(h)
            a.sigmoid_()
            sigmoid_half = a[:, half:]
            gate = torch.addcmul(sigmoid_half, a[:, :half], sigmoid_half, value=-2.0)  # −tanh(a)·σ(b)
            if self.skip_channels > 0:
                skip = torch.mm(gate, lw.skip) if skip is None else skip.addmm_(gate, lw.skip)
            h = torch.addmm(h, gate, lw.residual, beta=self.residual_scale).add_(lw.residual_bias)
        features = h if skip is None else skip.add_(weights.skip_bias)
        hidden = torch.addmm(weights.head_bias, features.relu_(), weights.head_weight).relu_()
        return torch.addmm(weights.output_bias, hidden, weights.output_weight)
