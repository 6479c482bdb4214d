"""Autoregressive WaveNet teacher with a discretized mixture-of-logistics output, and ``freeze``.

The teacher models ``p(x_t | x_<t, mel)`` for a waveform in [-1, 1] quantized to ``2**bits`` levels
(65,536 for 16 bits, the PixelCNN++ / wavenet_vocoder convention; see
:mod:`vocoder.losses._logistic`). Conditioning is the natural-log mel magnitude ``(B, n_mels, F)``
at ``hop_length`` samples per frame; frame ``k`` describes samples ``[k·hop, (k+1)·hop)`` and a
waveform of ``N = F·hop`` samples goes with ``F`` frames.

Default architecture (documented choice, sized for the 16 kHz speech of this project): 24 layers
with kernel 3 and dilations ``1 … 128`` repeated three times — a receptive field of
``1 + 2·3·255 = 1531`` samples (96 ms, several pitch periods even at 50 Hz); 64 residual, 128 gate
(64 tanh + 64 sigmoid) and 64 skip channels; 10 logistic components; log-scales floored at -7
(PixelCNN++'s floor, a scale of 9·10⁻⁴ ≈ 30 quantization bins at 16 bits).
"""

from __future__ import annotations

import torch
from torch import nn

from vocoder.layers import DualSoftmax, WaveNetStack, build_upsampler, shift_right
from vocoder.losses import discretized_mix_logistic_log_prob, sample_discretized_mix_logistic

#: output distributions of :class:`WaveNetTeacher`
OUTPUT_HEADS = ("logistic", "dual_softmax")


def waveform_to_levels(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Waveform in [-1, 1] → the nearest of the ``2**bits`` level indices (int64)."""
    top = 2**bits - 1
    return torch.round((x.clamp(-1.0, 1.0) + 1.0) * (top / 2.0)).long()


def levels_to_waveform(levels: torch.Tensor, bits: int) -> torch.Tensor:
    """Level indices → values ``-1 + 2 i / (2**bits - 1)`` (float32), inverting :func:`waveform_to_levels`."""
    return levels.float() * (2.0 / (2**bits - 1)) - 1.0


def freeze(module: nn.Module) -> nn.Module:
    """Put a module in eval mode and stop gradients to its parameters (in place).

    Gradients still flow *through* a frozen module to its inputs, which is what distillation needs
    (the student's sample is fed to the frozen teacher). ``nn.Module.train()`` on a parent module
    recurses into children and would switch this one back to training mode; a training module that
    owns a frozen network should call ``freeze`` again after ``train()`` (or override ``train``) if the
    network's behaviour depends on the mode (dropout, batch norm).

    Args:
        module: the network to freeze.

    Returns:
        The same module, for chaining.
    """
    module.eval()
    module.requires_grad_(False)
    return module


class WaveNetTeacher(nn.Module):
    """Mel-conditioned autoregressive WaveNet with a discretized mixture-of-logistics output.

    Args:
        n_mels: mel channels of the conditioning.
        hop_length: samples per mel frame.
        layers: residual layers.
        dilation_cycle: dilations ``1 … 2**(cycle-1)`` repeat every ``dilation_cycle`` layers.
        kernel_size: taps of the dilated convolutions.
        residual_channels: residual stream channels.
        gate_channels: dilated-convolution channels (two gate halves).
        skip_channels: skip-connection channels.
        mixture_components: logistic components K (1 allowed).
        bits: quantization depth of the output distribution.
        log_scale_min: floor of the components' log-scales.
        upsample: ``"repeat"`` or ``"transposed"`` (see :mod:`vocoder.layers._upsample`).
        upsample_overlap: cross-frame reach of the transposed-convolution upsampler.
        dropout: dropout at each residual block input while training.
        output_head: ``"logistic"`` (the discretized mixture of logistics) or ``"dual_softmax"``: a
            categorical distribution over the ``2**bits`` levels as p(coarse) · p(fine | coarse)
            (:class:`vocoder.layers.DualSoftmax`, ``bits - bits // 2`` coarse and ``bits // 2`` fine
            bits) read from ``head_size`` ReLU features of the stack; ``mixture_components`` and
            ``log_scale_min`` are then unused. Distillation needs the logistic head.
        head_size: features fed to the dual softmax (``None``: ``skip_channels``).
    """

    def __init__(
        self,
        *,
        n_mels: int = 80,
        hop_length: int = 160,
        layers: int = 24,
        dilation_cycle: int = 8,
        kernel_size: int = 3,
        residual_channels: int = 64,
        gate_channels: int = 128,
        skip_channels: int = 64,
        mixture_components: int = 10,
        bits: int = 16,
        log_scale_min: float = -7.0,
        upsample: str = "repeat",
        upsample_overlap: int = 0,
        dropout: float = 0.0,
        output_head: str = "logistic",
        head_size: int | None = None,
    ) -> None:
        super().__init__()
        if output_head not in OUTPUT_HEADS:
            raise ValueError(f"output_head must be one of {', '.join(OUTPUT_HEADS)}, got {output_head!r}")
        if mixture_components < 1:
            raise ValueError(f"mixture_components must be ≥ 1, got {mixture_components}")
        self.n_mels = n_mels
        self.hop_length = hop_length
        self.mixture_components = mixture_components
        self.bits = bits
        self.log_scale_min = log_scale_min
        self.output_head = output_head
        categorical = output_head == "dual_softmax"
        head_size = skip_channels if head_size is None else head_size
        self.upsampler = build_upsampler(
            upsample, channels=n_mels, hop_length=hop_length, overlap=upsample_overlap
        )
        self.net = WaveNetStack(
            in_channels=1,
            out_channels=head_size if categorical else 3 * mixture_components,
            layers=layers,
            dilation_cycle=dilation_cycle,
            residual_channels=residual_channels,
            gate_channels=gate_channels,
            skip_channels=skip_channels,
            cond_channels=n_mels,
            kernel_size=kernel_size,
            dropout=dropout,
        )
        # None for the logistic head: its state_dict (and every existing checkpoint) is unchanged
        self.dual_softmax = DualSoftmax(head_size, bits - bits // 2, bits // 2) if categorical else None

    @property
    def receptive_field(self) -> int:
        """Past samples (plus the current input) that each prediction depends on."""
        return self.net.receptive_field

    def _check_lengths(self, num_samples: int, mel: torch.Tensor) -> None:
        if mel.dim() != 3 or mel.shape[1] != self.n_mels:
            raise ValueError(f"mel must be (B, {self.n_mels}, F), got {tuple(mel.shape)}")
        if num_samples != mel.shape[2] * self.hop_length:
            raise ValueError(
                f"waveform of {num_samples} samples does not match {mel.shape[2]} frames × {self.hop_length}"
            )

    def _finalize(self, raw: torch.Tensor) -> torch.Tensor:
        """Clamp the log-scale channels of raw (B, 3K, N) outputs at ``log_scale_min``.

        For the dual-softmax head: the (B, head_size, N) ReLU features the head reads.
        """
        if self.dual_softmax is not None:
            return torch.relu(raw)
        k = self.mixture_components
        return torch.cat([raw[:, : 2 * k], raw[:, 2 * k :].clamp(min=self.log_scale_min)], dim=1)

    def forward(self, x_prev: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """Teacher-forced mixture parameters.

        Args:
            x_prev: (B, 1, N) or (B, N) input waveform already delayed by one sample
                (``x_prev[t] = x[t - 1]``, e.g. :func:`~vocoder.layers.shift_right`).
            mel: (B, n_mels, F) log-mel conditioning with ``N = F · hop_length``.

        Returns:
            (B, 3K, N) parameters of ``p(x_t | x_<t)``: K logits, K means, K log-scales (floored);
            for the dual-softmax head the (B, head_size, N) features of :meth:`log_prob`.
        """
        if x_prev.dim() == 2:
            x_prev = x_prev.unsqueeze(1)
        self._check_lengths(x_prev.shape[2], mel)
        cond, repeat = self.upsampler.forward_factored(mel)
        return self._finalize(self.net(x_prev, cond, repeat))

    def mixture_params(self, x: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """Parameters of ``p(x_t | x_<t)`` for every ``t`` of a given waveform, in one parallel pass.

        This is how a student's sample is scored in distillation: gradients flow through ``x``.

        Args:
            x: (B, N) or (B, 1, N) waveform (need not lie on the level grid).
            mel: (B, n_mels, F) conditioning.

        Returns:
            (B, 3K, N) mixture parameters (column ``t`` depends on ``x[..., :t]`` only).
        """
        if self.dual_softmax is not None:
            raise ValueError("mixture_params needs output_head=logistic (this teacher has a dual softmax)")
        if x.dim() == 2:
            x = x.unsqueeze(1)
        return self.forward(shift_right(x), mel)

    def log_prob(self, outputs: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``log p(x_t | x_<t)`` of a waveform on the level grid, from :meth:`forward`'s outputs.

        Args:
            outputs: (B, C, N) output of :meth:`forward` (teacher forced on ``x`` delayed by one).
            x: (B, N) waveform on the ``2**bits`` level grid (:func:`vocoder.losses.quantize_to_levels`).

        Returns:
            (B, N) log-probabilities (float32).
        """
        if self.dual_softmax is None:
            return discretized_mix_logistic_log_prob(outputs.float(), x, self.bits)
        return self.dual_softmax.log_prob(outputs.transpose(1, 2), waveform_to_levels(x, self.bits))

    @torch.no_grad()
    def generate(
        self,
        mel: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        return_params: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Sample a waveform autoregressively, one sample at a time with cached layer queues.

        Args:
            mel: (B, n_mels, F) conditioning.
            generator: random generator for the samples (default: torch's global one).
            return_params: also return the mixture parameters used at every step.

        Returns:
            (B, F·hop) waveform on the level grid; with ``return_params`` also the (B, 3K, F·hop)
            parameters, equal to ``self.mixture_params(waveform, mel)`` up to rounding.
        """
        self._check_lengths(mel.shape[2] * self.hop_length, mel)
        batch = mel.shape[0]
        total = mel.shape[2] * self.hop_length
        dtype, device = mel.dtype, mel.device
        weights = self.net.streaming_weights()
        queues = self.net.init_queues(batch, dtype, device)
        cond, repeat = self.upsampler.forward_factored(mel)
        frame_projection = self.net.project_conditioning(cond, weights) if repeat > 1 else None
        # Rows of per-sample projections for the current frame (sample-rate conditioning only).
        block_projection = cond.new_empty(0)
        x_prev = torch.zeros(batch, 1, dtype=dtype, device=device)
        samples = torch.empty(batch, total, dtype=dtype, device=device)
        params: torch.Tensor | None = None
        if return_params and self.dual_softmax is not None:
            raise ValueError("return_params needs output_head=logistic")
        if return_params:
            params = torch.empty(batch, 3 * self.mixture_components, total, dtype=dtype, device=device)
        for t in range(total):
            if frame_projection is not None:
                cond_t = frame_projection[t // repeat]
            else:
                # Sample-rate conditioning: project one frame's worth of samples at a time.
                offset = t % self.hop_length
                if offset == 0:
                    frame_samples = cond[:, :, t : t + self.hop_length]
                    block_projection = self.net.project_conditioning(frame_samples, weights)
                cond_t = block_projection[offset]
            raw = self.net.step(x_prev, cond_t, queues, t, weights)
            params_t = self._finalize(raw.unsqueeze(2))
            if self.dual_softmax is not None:
                levels = self.dual_softmax.sample(params_t[:, :, 0], generator)
                x_t = levels_to_waveform(levels, self.bits).to(dtype)[:, None]
            else:
                x_t = sample_discretized_mix_logistic(params_t, self.bits, generator)  # (B, 1)
            samples[:, t] = x_t[:, 0]
            if params is not None:
                params[:, :, t] = params_t[:, :, 0]
            x_prev = x_t
        if params is not None:
            return samples, params
        return samples
