"""LPCNet (Valin & Skoglund, "LPCNet: Improving Neural Speech Synthesis Through Linear Prediction",
ICASSP 2019): a WaveRNN-style sample-rate network that predicts the μ-law excitation of an LPC
synthesis filter, conditioned by a frame-rate network on 20 acoustic features per 10 ms frame.

Features per frame: ``[c_0 … c_17, f_T, f_g]`` — 18 Bark-frequency cepstral coefficients and the
pitch as xiph stores it: ``f_T = (T − 100)/50`` for the period ``T`` in samples (32–256) and
``f_g = g − 0.5`` for the pitch correlation ``g`` (see :mod:`vocoder.dsp._lpcnet_features`). The
period embedding's row is xiph's ``int(.1 + 50·f_T + 100)``.

Frame-rate network (once per frame): cepstra and correlation normalized with the stored statistics,
concatenated with a 64-d embedding of the rounded period; two kernel-3 convolutions with ``tanh``
and *valid* padding (so ``F + 4`` input frames give ``F`` output frames: two frames of context on
each side, i.e. two frames of lookahead), then two fully-connected ``tanh`` layers → ``f`` (128).

Sample-rate network (per sample ``t``): the μ-law codes of ``s_{t−1}`` (previous signal), ``p_t``
(LPC prediction) and ``e_{t−1}`` (previous excitation) share one 256 × 128 embedding; with ``f``
(repeated over the frame's 160 samples) they feed GRU_A (384) → GRU_B (16, input ``[GRU_A, f]``) →
:class:`~vocoder.layers.DualFC` → logits over the 256 μ-law levels of ``e_t``. Signals live in the
pre-emphasized domain (α = 0.85).

Training speed: ``nn.GRU`` on the CPU runs every time step as a dozen small autograd ops and
multiplies all 512 GRU_A inputs by the input weights. On the CPU this module therefore computes the
same function differently: GRU_A's input projection is three rows of per-code tables (embedding ×
input-weight products, 256 × 3·units per input slot) plus the frame term projected once per frame,
and both GRUs run through :func:`gru_sequence` (torch products + fused numba step kernels; a GRU of at
most ``SMALL_GRU_MAX_HIDDEN`` units, GRU_B, runs its whole recurrence in one compiled loop; the
batch split over threads that never synchronize inside the time loop). Tests check it against
the ``nn.GRU`` formulation to float64 rounding, values and gradients. On other devices (CUDA) the
fused ``nn.GRU`` modules run the textbook formulation; they hold the parameters in either case.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vocoder.dsp import MULAW_QUANTIZERS
from vocoder.layers import (
    DualFC,
    DualSoftmax,
    gru_sequence,
    input_gates_from_tables,
    sparse_gru_sequence,
)

GRUState = tuple[torch.Tensor, torch.Tensor]


#: Initialization schemes of :class:`LPCNet`.
INIT_SCHEMES = ("xiph", "per_gate")
#: Output heads of :class:`LPCNet`: xiph's DualFC over the 8-bit μ-law excitation (softmax), the same
#: DualFC read as xiph's binary tree of bit decisions (``tree``, :func:`vocoder.layers.tree_log_likelihood`),
#: or a conditional dual softmax over the 16-bit linear excitation (:class:`vocoder.layers.DualSoftmax`).
OUTPUT_HEADS = ("dualfc", "tree", "dual_softmax")
class LPCNet(nn.Module):
    """LPCNet: frame-rate conditioning network + sample-rate excitation network.

    Args:
        n_features: features per frame; the layout is ``n_features − 2`` cepstral coefficients, then
            xiph's stored pitch period ``(T − 100)/50`` and pitch correlation ``g − 0.5``.
        hop_length: samples per frame (160 at 16 kHz).
        frame_channels: width of the frame-rate convolutions and dense layers (128).
        conv_kernel_size: kernel of the two frame-rate convolutions (3; must be odd).
        pitch_embedding_size: size of the pitch-period embedding (64).
        n_pitch_periods: rows of the period embedding; periods ``int(.1 + 50·f_T + 100)`` are clamped
            to ``[0, n_pitch_periods − 1]`` (256).
        sample_embedding_size: size of the shared μ-law embedding of s, p and e (128).
        gru_a_size: units of GRU_A (384).
        gru_b_size: units of GRU_B (16).
        mulaw_bits: μ-law depth (8 → 256 levels).
        mulaw_quantizer: code convention of the μ-law inputs and excitation: ``mid_tread`` (xiph's
            ``lin2ulaw``: code 128 is exactly 0) or ``mid_rise`` (this project's earlier one;
            checkpoints written before the setting existed are read as ``mid_rise``).
        lpc_order: order of the LPC predictor that produces ``p_t`` (16; used by synthesis).
        output_head: ``dualfc`` (xiph's original: DualFC → softmax logits over the 8-bit μ-law
            excitation), ``tree`` (xiph's current: the same DualFC's outputs are the logits of a binary
            tree over the code's 8 bits, MSB first, node ``(1 << level) | prefix``; sampling computes only
            the 8 visited nodes) or ``dual_softmax`` (p(coarse) · p(fine | coarse) over the 16-bit
            linear excitation; the network's inputs stay 8-bit μ-law codes, sampling tempers the coarse
            distribution and runs on the torch backend).
        init: ``xiph`` (Keras defaults of xiph's reference: Glorot-uniform over each GRU's whole input
            kernel, orthogonal whole recurrent kernel, period embedding uniform ±0.05) or
            ``per_gate`` (the earlier scheme: Glorot/orthogonal per gate, period embedding N(0, 1)).

    Shapes (``F`` output frames, ``N = F · hop_length`` samples):
        features ``(B, F + 2·context, n_features)`` with ``context = frame_context`` (2);
        signal_in / prediction / excitation_in: ``(B, N)`` int64 μ-law codes of
        ``s_{t−1}, p_t, e_{t−1}``; logits ``(B, N, 2**mulaw_bits)`` for ``e_t``.
    """

    def __init__(
        self,
        n_features: int = 20,
        hop_length: int = 160,
        frame_channels: int = 128,
        conv_kernel_size: int = 3,
        pitch_embedding_size: int = 64,
        n_pitch_periods: int = 256,
        sample_embedding_size: int = 128,
        gru_a_size: int = 384,
        gru_b_size: int = 16,
        mulaw_bits: int = 8,
        lpc_order: int = 16,
        init: str = "xiph",
        mulaw_quantizer: str = "mid_tread",
        output_head: str = "dualfc",
    ) -> None:
        super().__init__()
        if output_head not in OUTPUT_HEADS:
            raise ValueError(f"output_head must be one of {OUTPUT_HEADS}, got {output_head!r}")
        if init not in INIT_SCHEMES:
            raise ValueError(f"init must be one of {INIT_SCHEMES}, got {init!r}")
        if mulaw_quantizer not in MULAW_QUANTIZERS:
            raise ValueError(f"mulaw_quantizer must be one of {MULAW_QUANTIZERS}, got {mulaw_quantizer!r}")
        if n_features < 3:
            raise ValueError(f"n_features must be >= 3 (cepstra, period, correlation), got {n_features}")
        if conv_kernel_size < 1 or conv_kernel_size % 2 == 0:
            raise ValueError(f"conv_kernel_size must be odd, got {conv_kernel_size}")
        self._config = {
            "n_features": n_features, "hop_length": hop_length, "frame_channels": frame_channels,
            "conv_kernel_size": conv_kernel_size, "pitch_embedding_size": pitch_embedding_size,
            "n_pitch_periods": n_pitch_periods, "sample_embedding_size": sample_embedding_size,
            "gru_a_size": gru_a_size, "gru_b_size": gru_b_size, "mulaw_bits": mulaw_bits,
            "lpc_order": lpc_order, "init": init, "output_head": output_head, "mulaw_quantizer": mulaw_quantizer,
        }
        self.mulaw_quantizer = mulaw_quantizer
        self.output_head = output_head
        self.init = init
        self.n_features = n_features
        self.hop_length = hop_length
        self.n_levels = 2**mulaw_bits
        self.mulaw_bits = mulaw_bits
        self.lpc_order = lpc_order
        self.n_pitch_periods = n_pitch_periods
        self.sample_embedding_size = sample_embedding_size
        self.period_index = n_features - 2
        self.correlation_index = n_features - 1

        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))
        self.pitch_embedding = nn.Embedding(n_pitch_periods, pitch_embedding_size)
        conv_in = n_features - 1 + pitch_embedding_size  # cepstra + correlation + period embedding
        self.conv1 = nn.Conv1d(conv_in, frame_channels, conv_kernel_size)
        self.conv2 = nn.Conv1d(frame_channels, frame_channels, conv_kernel_size)
        self.dense1 = nn.Linear(frame_channels, frame_channels)
        self.dense2 = nn.Linear(frame_channels, frame_channels)

        self.sample_embedding = nn.Embedding(self.n_levels, sample_embedding_size)
        self.gru_a = nn.GRU(3 * sample_embedding_size + frame_channels, gru_a_size, batch_first=True)
        self.gru_b = nn.GRU(gru_a_size + frame_channels, gru_b_size, batch_first=True)
        if output_head in ("dualfc", "tree"):
            self.dual_fc = DualFC(gru_b_size, self.n_levels)
        else:
            self.dual_softmax = DualSoftmax(gru_b_size, coarse_bits=8, fine_bits=8)
        self.reset_parameters()

    # ----------------------------------------------------------------------------------- setup
    @property
    def config(self) -> dict[str, Any]:
        """Constructor keyword arguments (plain types): ``LPCNet(**model.config)`` rebuilds it."""
        return dict(self._config)

    @property
    def frame_context(self) -> int:
        """Feature frames consumed on each side by the valid convolutions (2)."""
        return self.conv1.kernel_size[0] // 2 + self.conv2.kernel_size[0] // 2

    def reset_parameters(self) -> None:
        """Initialize as xiph's Keras reference does (``init="xiph"``) or per gate (``per_gate``).

        Glorot-uniform dense/convolution kernels with zero biases; ``xiph``: each GRU's whole input
        kernel ``(3H, in)`` Glorot-uniform and whole recurrent kernel ``(3H, H)`` orthogonal (Keras
        ``glorot_uniform`` / ``orthogonal`` on the concatenated gates), period embedding uniform
        ±0.05 (Keras ``Embedding``); ``per_gate``: the same per gate, period embedding N(0, 1); zero
        biases; the μ-law embedding is uniform noise on top of a ramp over the levels (neighbouring
        codes start with similar vectors, xiph's ``PCMInit``).
        """
        for layer in (self.conv1, self.conv2, self.dense1, self.dense2):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        for gru in (self.gru_a, self.gru_b):
            hidden = gru.hidden_size
            if self.init == "xiph":
                nn.init.xavier_uniform_(gru.weight_ih_l0)
                nn.init.orthogonal_(gru.weight_hh_l0)
            else:
                for gate in range(3):
                    rows = slice(gate * hidden, (gate + 1) * hidden)
                    nn.init.xavier_uniform_(gru.weight_ih_l0[rows])
                    nn.init.orthogonal_(gru.weight_hh_l0[rows])
            nn.init.zeros_(gru.bias_ih_l0)
            nn.init.zeros_(gru.bias_hh_l0)
        levels = self.n_levels
        with torch.no_grad():
            ramp = math.sqrt(12.0) * (torch.arange(levels, dtype=torch.float64) - (levels - 1) / 2) / levels
            noise = torch.empty(levels, self.sample_embedding_size, dtype=torch.float64)
            noise.uniform_(-math.sqrt(3), math.sqrt(3))
            self.sample_embedding.weight.copy_(0.1 * (noise + ramp[:, None]))
        if self.init == "xiph":
            nn.init.uniform_(self.pitch_embedding.weight, -0.05, 0.05)
        else:
            nn.init.normal_(self.pitch_embedding.weight)

    def set_normalization(self, mean: torch.Tensor | np.ndarray, std: torch.Tensor | np.ndarray) -> None:
        """Store feature statistics; cepstra and correlation are normalized as ``(x − mean) / std``.

        The period's entries are stored but unused (the period goes through the embedding).

        Args:
            mean: ``(n_features,)``.
            std: ``(n_features,)``, positive on every entry but the period's.
        """
        mean = torch.as_tensor(np.asarray(mean), dtype=self.feature_mean.dtype)
        std = torch.as_tensor(np.asarray(std), dtype=self.feature_std.dtype)
        if mean.shape != (self.n_features,) or std.shape != (self.n_features,):
            raise ValueError(f"statistics must have shape ({self.n_features},), got {tuple(mean.shape)} "
                             f"and {tuple(std.shape)}")
        used = torch.ones(self.n_features, dtype=torch.bool)
        used[self.period_index] = False
        if not bool(torch.all(std[used] > 0)) or not bool(torch.all(torch.isfinite(mean[used]))):
            raise ValueError("feature std must be positive and mean finite (except for the period)")
        with torch.no_grad():
            self.feature_mean.copy_(mean)
            self.feature_std.copy_(std)

    # ------------------------------------------------------------------------- frame-rate part
    def period_codes(self, features: torch.Tensor) -> torch.Tensor:
        """Pitch periods ``(B, T)`` int64 (rows of the period embedding): xiph's ``int(.1 + 50·f + 100)``."""
        period = features[..., self.period_index].double() * 50.0 + 100.1
        return torch.floor(period).clamp(0, self.n_pitch_periods - 1).long()

    def frame_rate_network(self, features: torch.Tensor) -> torch.Tensor:
        """Conditioning vectors from raw (unnormalized) features.

        Args:
            features: ``(B, F + 2·frame_context, n_features)``.

        Returns:
            ``(B, F, frame_channels)``.
        """
        if features.dim() != 3 or features.shape[-1] != self.n_features:
            raise ValueError(f"features must be (B, T, {self.n_features}), got {tuple(features.shape)}")
        if features.shape[1] <= 2 * self.frame_context:
            raise ValueError(f"need more than {2 * self.frame_context} frames, got {features.shape[1]}")
        normalized = (features - self.feature_mean) / self.feature_std
        cepstra = normalized[..., : self.period_index]
        values = torch.cat([cepstra, normalized[..., self.correlation_index :]], -1)
        x = torch.cat([values, self.pitch_embedding(self.period_codes(features))], -1).transpose(1, 2)
        x = torch.tanh(self.conv2(torch.tanh(self.conv1(x)))).transpose(1, 2)
        return torch.tanh(self.dense2(torch.tanh(self.dense1(x))))

    # ------------------------------------------------------------------------ sample-rate part
    def initial_state(self, batch: int, device: torch.device | None = None,
                      dtype: torch.dtype | None = None) -> GRUState:
        """Zero GRU states ``((B, gru_a_size), (B, gru_b_size))``."""
        weight = self.gru_a.weight_hh_l0
        device = device or weight.device
        dtype = dtype or weight.dtype
        return (torch.zeros(batch, self.gru_a.hidden_size, device=device, dtype=dtype),
                torch.zeros(batch, self.gru_b.hidden_size, device=device, dtype=dtype))

    def set_gru_a_mask(self, mask: torch.Tensor | None, dense_weight_grad: bool = False) -> None:
        """Train with GRU_A's recurrent matrix taken as ``weight_hh ⊙ mask`` (block-sparse products).

        Used in training mode with gradients enabled, on the CPU table path; the weight gradient is
        masked too unless ``dense_weight_grad`` (see :func:`vocoder.layers.sparse_gru_sequence`).
        Evaluation and synthesis always use the dense weights. ``None`` returns to dense training.

        Args:
            mask: ``(3·gru_a_size, gru_a_size)`` bool keep-mask of 16×1 blocks (e.g. the
                sparsifier's), or None.
            dense_weight_grad: give pruned weights their gradient as well (regrowing schedules).
        """
        self._gru_a_sparse = None if mask is None else (mask.detach().clone(), bool(dense_weight_grad))

    def input_tables(self) -> torch.Tensor:
        """GRU_A input projections of every μ-law code per input slot (differentiable).

        Returns:
            ``(3, levels, 3·gru_a_size)``: slot 0 = ``s_{t−1}``, 1 = ``p_t``, 2 = ``e_{t−1}``;
            ``tables[k, q] = W_ih[:, k-th embedding block] · E[q]``.
        """
        size = self.sample_embedding_size
        weight = self.gru_a.weight_ih_l0
        embedding = self.sample_embedding.weight
        return torch.stack([embedding @ weight[:, k * size : (k + 1) * size].t() for k in range(3)])

    def frame_projections(self, conditioning: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-frame parts of the GRU_A and GRU_B input projections, biases ``b_ih`` included.

        Args:
            conditioning: ``(B, F, frame_channels)``.

        Returns:
            ``(B, F, 3·gru_a_size)`` and ``(B, F, 3·gru_b_size)``.
        """
        a_weight = self.gru_a.weight_ih_l0[:, 3 * self.sample_embedding_size :]
        b_weight = self.gru_b.weight_ih_l0[:, self.gru_a.hidden_size :]
        return (F.linear(conditioning, a_weight, self.gru_a.bias_ih_l0),
                F.linear(conditioning, b_weight, self.gru_b.bias_ih_l0))

    def sample_rate_network(
        self,
        conditioning: torch.Tensor,
        signal_in: torch.Tensor,
        prediction: torch.Tensor,
        excitation_in: torch.Tensor,
        initial_state: GRUState | None = None,
    ) -> tuple[torch.Tensor, GRUState]:
        """Excitation logits of every sample, teacher-forced.

        Args:
            conditioning: ``(B, F, frame_channels)`` from :meth:`frame_rate_network`.
            signal_in, prediction, excitation_in: ``(B, N)`` int64 codes, ``N = F · hop_length``.
            initial_state: GRU states ``((B, gru_a_size), (B, gru_b_size))``; zeros if omitted.

        Returns:
            logits ``(B, N, levels)`` (``dual_softmax`` head: GRU_B states ``(B, N, gru_b_size)``, see
            :meth:`output_layer`) and the final GRU states.
        """
        batch, frames, _ = conditioning.shape
        n_samples = frames * self.hop_length
        inputs = {"signal_in": signal_in, "prediction": prediction, "excitation_in": excitation_in}
        for name, codes in inputs.items():
            if codes.shape != (batch, n_samples):
                raise ValueError(f"{name} must be ({batch}, {n_samples}) for {frames} frames, "
                                 f"got {tuple(codes.shape)}")
        state = initial_state if initial_state is not None else self.initial_state(batch, conditioning.device,
                                                                                 conditioning.dtype)
        # The 2,400-step recurrences run in float32 even under bf16/fp16 autocast, as xiph trains them:
        # low-precision GRU states drift over long sequences.
        if conditioning.dtype in (torch.bfloat16, torch.float16):
            conditioning = conditioning.float()
        state = (state[0].to(conditioning.dtype), state[1].to(conditioning.dtype))
        with torch.autocast(conditioning.device.type, enabled=False):
            if conditioning.device.type == "cpu" and conditioning.dtype in (torch.float32, torch.float64):
                return self._sample_rate_tables(conditioning, signal_in, prediction, excitation_in, state)
            return self._sample_rate_fused(conditioning, signal_in, prediction, excitation_in, state)

    def _sample_rate_fused(self, conditioning: torch.Tensor, signal_in: torch.Tensor,
                           prediction: torch.Tensor, excitation_in: torch.Tensor,
                           state: GRUState) -> tuple[torch.Tensor, GRUState]:
        """The textbook formulation with the fused ``nn.GRU`` modules (any device)."""
        batch = signal_in.shape[0]
        embedded = self.sample_embedding(torch.stack([signal_in, prediction, excitation_in], -1)).flatten(2)
        repeated = conditioning.repeat_interleave(self.hop_length, dim=1)
        a, h_a = self.gru_a(torch.cat([embedded, repeated], -1), state[0].unsqueeze(0).contiguous())
        b, h_b = self.gru_b(torch.cat([a, repeated], -1), state[1].unsqueeze(0).contiguous())
        return self.output_layer(b), (h_a.reshape(batch, -1), h_b.reshape(batch, -1))

    def _sample_rate_tables(self, conditioning: torch.Tensor, signal_in: torch.Tensor,
                            prediction: torch.Tensor, excitation_in: torch.Tensor,
                            state: GRUState) -> tuple[torch.Tensor, GRUState]:
        """Same function as :meth:`_sample_rate_fused`: table lookups + :func:`gru_sequence` (CPU)."""
        batch, frames, _ = conditioning.shape
        hop, levels = self.hop_length, self.n_levels
        n_samples = frames * hop
        b_gates = 3 * self.gru_b.hidden_size
        for codes in (signal_in, prediction, excitation_in):  # the table lookups do not check bounds
            if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= levels):
                raise ValueError(f"μ-law codes must be in [0, {levels - 1}]")
        codes = torch.stack([signal_in, prediction, excitation_in], -1).transpose(0, 1).contiguous()
        a_frame, b_frame = self.frame_projections(conditioning)
        # (N, B, 3·H_a) time-major: three table rows + the frame term per sample
        a_input = input_gates_from_tables(self.input_tables(), codes.long(), a_frame.transpose(0, 1), hop)
        sparse = getattr(self, "_gru_a_sparse", None) if self.training and torch.is_grad_enabled() else None
        if sparse is None:
            a = gru_sequence(a_input, state[0], self.gru_a.weight_hh_l0, self.gru_a.bias_hh_l0)
        else:  # training on a block-sparse GRU_A: only the kept blocks are multiplied
            a = sparse_gru_sequence(a_input, state[0], self.gru_a.weight_hh_l0, self.gru_a.bias_hh_l0,
                                    *sparse)

        b_weight = self.gru_b.weight_ih_l0[:, : self.gru_a.hidden_size]
        b_input = F.linear(a, b_weight).view(frames, hop, batch, b_gates)
        b_input = (b_input + b_frame.transpose(0, 1).unsqueeze(1)).view(n_samples, batch, b_gates)
        b = gru_sequence(b_input, state[1], self.gru_b.weight_hh_l0, self.gru_b.bias_hh_l0)
        return self.output_layer(b.transpose(0, 1)), (a[-1], b[-1])

    def output_layer(self, h_b: torch.Tensor) -> torch.Tensor:
        """``dualfc``: softmax logits ``(..., levels)`` of GRU_B's states; ``tree``: the tree logits
        ``(..., levels)`` (:func:`vocoder.layers.tree_log_likelihood`); ``dual_softmax``: the states
        themselves (the head's :meth:`~vocoder.layers.DualSoftmax.log_prob` / ``sample`` take them)."""
        return h_b if self.output_head == "dual_softmax" else self.dual_fc(h_b)

    def forward(
        self,
        features: torch.Tensor,
        signal_in: torch.Tensor,
        prediction: torch.Tensor,
        excitation_in: torch.Tensor,
        initial_state: GRUState | None = None,
    ) -> torch.Tensor:
        """Teacher-forced excitation logits.

        Args:
            features: ``(B, F + 4, n_features)`` raw features (two context frames on each side).
            signal_in: ``(B, N)`` int64 μ-law codes of the previous pre-emphasized sample ``s_{t−1}``.
            prediction: ``(B, N)`` int64 μ-law codes of the LPC prediction ``p_t``.
            excitation_in: ``(B, N)`` int64 μ-law codes of the previous excitation ``e_{t−1}``.
            initial_state: GRU states ``((B, gru_a_size), (B, gru_b_size))``; zeros if omitted.

        Returns:
            ``(B, N, levels)`` logits of ``e_t``, ``N = F · hop_length`` (``dual_softmax`` head: GRU_B
            states ``(B, N, gru_b_size)`` for ``model.dual_softmax.log_prob``).
        """
        conditioning = self.frame_rate_network(features)
        logits, _ = self.sample_rate_network(conditioning, signal_in, prediction, excitation_in,
                                             initial_state)
        return logits
