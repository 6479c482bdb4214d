"""Parallel-WaveNet student: a stack of inverse autoregressive flows (IAF) driven by logistic noise.

Flow ``i`` reads the previous flow's output ``x⁽ⁱ⁻¹⁾`` (``x⁽⁰⁾ = z``, ``z_t ~ Logistic(0, 1)``) delayed by
one sample, together with the mel conditioning, and emits ``μ_t`` and ``log s_t`` (floored at
``log_scale_min``) that depend on ``x⁽ⁱ⁻¹⁾_<t`` only; then ``x⁽ⁱ⁾_t = x⁽ⁱ⁻¹⁾_t · s_t + μ_t``. The
Jacobian of every flow is lower-triangular with diagonal ``s_t``, so its log-determinant is
``Σ_t log s_t``. Composed over the flows, ``x_t = z_t · s_tot,t + μ_tot,t`` with
``μ_tot ← μ_tot · s + μ`` and ``s_tot ← s_tot · s`` after each flow, both functions of ``z_<t``:
given the noise history, the student's output sample is ``Logistic(μ_tot,t, s_tot,t)``, which is
what :func:`~vocoder.losses.distillation_kl` needs.

Defaults follow Parallel WaveNet's student layout (van den Oord et al., 2017) with four flows of
``[10, 10, 10, 10]`` layers (dilations ``1 … 512``, kernel 2, receptive field 1024 samples per flow),
64 residual channels, 128 gate channels (64 tanh + 64 sigmoid) and no skip connections (the head
reads the last residual output); one WaveNet per flow emits both μ and log s, and
``separate_networks=True`` gives each flow one WaveNet for μ and one for log s (eight WaveNets for
four flows). Each WaveNet's last 1×1 convolution starts at zero, so the untrained student is the
identity ``x = z`` scaled by ``exp(output_log_scale)`` (the last flow's log-s bias; 0 by default, the
training modules set it so that the first output is at the data's level, see
:meth:`IAFStudent.set_output_log_scale`). ``dilation_cycle`` may be one value or one per flow, so
each flow's receptive field is set separately (the paper's 10/10/10/30 layers with cycle 10: 1,024
samples per cycle).

:meth:`IAFStudent.forward` is the differentiable training path (channels-first convolutions).
:meth:`IAFStudent.synthesize` is the inference path: the whole utterance in one call, evaluated in
cache-sized blocks of time with per-layer input histories (:meth:`vocoder.layers.WaveNetStack.stream`),
with conditioning projected at the frame rate when the upsampler is repetition; it equals ``forward``
up to float rounding. The module compiles with ``torch.jit.script`` (``forward`` and ``synthesize``).

This module avoids ``from __future__ import annotations`` so that TorchScript can compile it.
"""

from concurrent.futures import ThreadPoolExecutor

import torch
from torch import nn

from vocoder.layers import StreamingWeights, WaveNetStack, build_upsampler, shift_right
from vocoder.losses import sample_logistic


class IAFFlow(nn.Module):
    """One inverse autoregressive flow ``x_t ↦ x_t · s_t + μ_t`` with WaveNet-computed μ and log s.

    Args:
        layers: residual layers of each WaveNet.
        dilation_cycle: dilations ``1 … 2**(cycle-1)`` repeat every ``dilation_cycle`` layers.
        kernel_size: taps of the dilated convolutions.
        residual_channels: residual stream channels.
        gate_channels: dilated-convolution channels (two gate halves).
        skip_channels: skip channels, or None for no skip connections.
        cond_channels: conditioning channels (mel bands).
        log_scale_min: floor of log s (a hard clamp, as in ClariNet).
        separate_networks: one WaveNet for μ and another for log s instead of one for both.
    """

    def __init__(
        self,
        *,
        layers: int,
        dilation_cycle: int,
        kernel_size: int,
        residual_channels: int,
        gate_channels: int,
        skip_channels: int | None,
        cond_channels: int,
        log_scale_min: float,
        separate_networks: bool,
    ) -> None:
        super().__init__()
        self.log_scale_min = log_scale_min
        self.separate_networks = separate_networks
        outputs = [1, 1] if separate_networks else [2]
        self.nets = nn.ModuleList(
            [
                WaveNetStack(
                    in_channels=1,
                    out_channels=out,
                    layers=layers,
                    dilation_cycle=dilation_cycle,
                    residual_channels=residual_channels,
                    gate_channels=gate_channels,
                    skip_channels=skip_channels,
                    cond_channels=cond_channels,
                    kernel_size=kernel_size,
                )
                for out in outputs
            ]
        )
        for net in self.nets:
            # Start as the identity flow (μ = 0, log s = 0): training begins from x = z.
            nn.init.zeros_(net.output.weight)
            nn.init.zeros_(net.output.bias)

    __jit_unused_properties__ = ["receptive_field"]

    @property
    def receptive_field(self) -> int:
        """Past samples of the flow input that μ_t and s_t depend on."""
        return max(net.receptive_field for net in self.nets)

    def _split(self, outputs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, floored log s), each (B, T), from the nets' (B, 2, T) or two (B, 1, T) outputs."""
        if len(outputs) == 1:
            mu, log_s = outputs[0].unbind(1)
        else:
            mu = outputs[0][:, 0]
            log_s = outputs[1][:, 0]
        return mu, log_s.clamp(min=self.log_scale_min)

    def forward(
        self, x: torch.Tensor, cond: torch.Tensor, cond_repeat: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Transform the previous flow's output.

        Args:
            x: (B, T) previous flow output (or the noise z for the first flow).
            cond: (B, C_cond, T / cond_repeat) conditioning features.
            cond_repeat: samples per conditioning column.

        Returns:
            ``(y, mu, log_s)``, each (B, T): ``y = x · exp(log_s) + mu``, where ``mu[:, t]`` and
            ``log_s[:, t]`` depend on ``x[:, :t]`` only.
        """
        inputs = shift_right(x).unsqueeze(1)
        outputs: list[torch.Tensor] = []
        for net in self.nets:
            outputs.append(net(inputs, cond, cond_repeat))
        mu, log_s = self._split(outputs)
        return x * torch.exp(log_s) + mu, mu, log_s


class IAFStudent(nn.Module):
    """Parallel-WaveNet IAF student: logistic noise and log-mel in, waveform out, in one pass.

    Args:
        n_mels: mel channels of the conditioning.
        hop_length: samples per mel frame.
        flow_layers: residual layers of each flow's WaveNet(s); the number of flows is its length.
        dilation_cycle: dilations ``1 … 2**(cycle-1)`` repeat every ``dilation_cycle`` layers.
        kernel_size: taps of the dilated convolutions.
        residual_channels: residual stream channels.
        gate_channels: dilated-convolution channels (two gate halves).
        skip_channels: skip channels, or None (default) for no skip connections.
        log_scale_min: floor of each flow's log s.
        separate_networks: two WaveNets per flow (μ and log s) instead of one.
        upsample: ``"repeat"``, ``"transposed"`` or ``"centred"`` (frame-centred, ``±upsample_context``
            frames of look-back and look-ahead; see :mod:`vocoder.layers._upsample`).
        upsample_overlap: cross-frame reach of the transposed-convolution upsampler.
        upsample_context: frames of look-back/look-ahead of the ``"centred"`` upsampler.
        output_log_scale: initial log-s bias of the last flow: the untrained student is
            ``x = z · exp(output_log_scale)``.
    """

    flow_layers: list[int]
    cond_lookahead_frames: int

    def __init__(
        self,
        *,
        n_mels: int = 80,
        hop_length: int = 160,
        flow_layers: tuple[int, ...] | list[int] = (10, 10, 10, 10),
        dilation_cycle: int | tuple[int, ...] | list[int] = 10,
        kernel_size: int = 2,
        residual_channels: int = 64,
        gate_channels: int = 128,
        skip_channels: int | None = None,
        log_scale_min: float = -7.0,
        separate_networks: bool = False,
        upsample: str = "repeat",
        upsample_overlap: int = 0,
        upsample_context: int = 2,
        output_log_scale: float = 0.0,
    ) -> None:
        super().__init__()
        if len(flow_layers) < 1:
            raise ValueError("flow_layers needs at least one flow")
        cycles = (
            [int(dilation_cycle)] * len(flow_layers)
            if isinstance(dilation_cycle, int)
            else list(dilation_cycle)
        )
        if len(cycles) != len(flow_layers):
            raise ValueError(f"dilation_cycle has {len(cycles)} values for {len(flow_layers)} flows")
        self.n_mels = n_mels
        self.hop_length = hop_length
        self.flow_layers = [int(n) for n in flow_layers]
        self.log_scale_min = log_scale_min
        self.upsampler = build_upsampler(
            upsample,
            channels=n_mels,
            hop_length=hop_length,
            overlap=upsample_overlap,
            context=upsample_context,
        )
        # frames after a sample's own frame that its conditioning reads (the training segments carry them)
        self.cond_lookahead_frames = upsample_context + 1 if upsample == "centred" else 0
        self.flows = nn.ModuleList(
            [
                IAFFlow(
                    layers=n,
                    dilation_cycle=cycle,
                    kernel_size=kernel_size,
                    residual_channels=residual_channels,
                    gate_channels=gate_channels,
                    skip_channels=skip_channels,
                    cond_channels=n_mels,
                    log_scale_min=log_scale_min,
                    separate_networks=separate_networks,
                )
                for n, cycle in zip(self.flow_layers, cycles, strict=True)
            ]
        )
        self.set_output_log_scale(output_log_scale)
        # μ_t, s_t of a flow read its input x[t - R_flow … t - 1] (one sample of delay plus the
        # stack), so the composed output at t reads z[t - Σ R_flow … t].
        fields = [flow.receptive_field for flow in self.flows]
        self._lead_in_frames = (sum(fields) + hop_length - 1) // hop_length
        # Flow f needs exact inputs only from Σ_{j ≥ f} R_j samples before a segment: its own lead-in,
        # in whole frames (the later flows start later, see _synthesize_range).
        self._flow_lead_frames = [
            (sum(fields[f:]) + hop_length - 1) // hop_length for f in range(len(fields))
        ]

    @torch.jit.unused
    def set_output_log_scale(self, log_scale: float) -> None:
        """Set the last flow's log-s bias so that an untrained student outputs ``z · exp(log_scale)``.

        The last flow's output layer starts at zero, so its log s is its bias alone and every earlier
        flow is the identity: ``x = z · exp(log_scale)``. Later training moves it freely.
        """
        net = self.flows[-1].nets[-1]
        channel = 0 if self.flows[-1].separate_networks else 1
        with torch.no_grad():
            net.output.bias[channel] = float(log_scale)

    __jit_unused_properties__ = ["receptive_field"]

    @property
    def receptive_field(self) -> int:
        """Noise samples (current one included) that an output sample depends on."""
        return 1 + sum(flow.receptive_field for flow in self.flows)

    def _check(self, num_samples: int, mel: torch.Tensor) -> None:
        if mel.dim() != 3 or mel.shape[1] != self.n_mels:
            raise ValueError(f"mel must be (B, {self.n_mels}, F), got {list(mel.shape)}")
        if num_samples != mel.shape[2] * self.hop_length:
            raise ValueError(
                f"noise of {num_samples} samples does not match {mel.shape[2]} frames × {self.hop_length}"
            )

    def forward(self, z: torch.Tensor, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Transform noise into a waveform and the per-sample logistic parameters (training path).

        Args:
            z: (B, N) or (B, 1, N) standard logistic noise.
            mel: (B, n_mels, F) log-mel conditioning with ``N = F · hop_length``.

        Returns:
            ``(x, mu_tot, log_s_tot)``, each (B, N): the waveform ``x = z · exp(log_s_tot) + mu_tot``
            and the composed logistic parameters of ``p(x_t | z_<t)``.
        """
        if z.dim() == 3:
            z = z[:, 0]
        self._check(z.shape[1], mel)
        cond, repeat = self.upsampler.forward_factored(mel)
        x = z
        mu_tot = torch.zeros_like(z)
        log_s_tot = torch.zeros_like(z)
        for flow in self.flows:
            x, mu, log_s = flow(x, cond, repeat)
            mu_tot = mu_tot * torch.exp(log_s) + mu
            log_s_tot = log_s_tot + log_s
        return x, mu_tot, log_s_tot

    @torch.jit.export
    def sample_noise(self, mel: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        """Standard logistic noise matching ``mel``.

        Args:
            mel: (B, n_mels, F) conditioning (sets batch, length, dtype and device).
            seed: seed of a private generator; None uses torch's global generator.

        Returns:
            (B, F · hop_length) noise.
        """
        shape = [mel.shape[0], mel.shape[2] * self.hop_length]
        if seed is None:
            return sample_logistic(shape, mel.dtype, mel.device, None)
        generator = torch.Generator(device=mel.device)
        generator.manual_seed(seed)
        return sample_logistic(shape, mel.dtype, mel.device, generator)

    @torch.jit.export
    def synthesize(
        self, mel: torch.Tensor, seed: int | None = None, chunk_frames: int = 8, segments: int = 1
    ) -> torch.Tensor:
        """Synthesize whole utterances from log-mel (inference path, no gradients).

        Args:
            mel: (B, n_mels, F) log-mel conditioning.
            seed: seed of the noise (see :meth:`sample_noise`).
            chunk_frames: frames per block of the blockwise evaluation (a cache-size trade-off; any
                value gives the same waveform).
            segments: split the time axis into this many segments evaluated concurrently, one CPU
                thread each (see :meth:`synthesize_from_noise`); 1 evaluates in the calling thread.

        Returns:
            (B, F · hop_length) waveform.
        """
        return self.synthesize_from_noise(self.sample_noise(mel, seed), mel, chunk_frames, segments)

    @torch.jit.export
    def synthesize_from_noise(
        self, z: torch.Tensor, mel: torch.Tensor, chunk_frames: int = 8, segments: int = 1
    ) -> torch.Tensor:
        """Transform given noise blockwise (inference path equal to ``forward(z, mel)[0]``).

        The student is not autoregressive at inference: output ``t`` depends on the noise
        ``z[t - R + 1 … t]`` only (``R`` = :attr:`receptive_field`). With ``segments > 1`` the time
        axis is cut into that many equal frame ranges; each is evaluated from ``R - 1`` samples
        (rounded up to whole frames) before its start, so its samples equal those of one pass, and
        the segments run concurrently (``torch.jit.fork``: threads of the inter-op pool when
        scripted; eager callers get threads from :func:`synthesize_segments`). The lead-in costs
        ``(segments - 1) · (R - 1)`` extra samples of work.

        Args:
            z: (B, N) standard logistic noise.
            mel: (B, n_mels, F) log-mel conditioning with ``N = F · hop_length``.
            chunk_frames: frames per block (≥ 1).
            segments: number of time segments (≥ 1).

        Returns:
            (B, N) waveform.
        """
        self._check(z.shape[1], mel)
        if chunk_frames < 1:
            raise ValueError("chunk_frames must be ≥ 1")
        if segments < 1:
            raise ValueError("segments must be ≥ 1")
        # No `with torch.no_grad()` around the fork/wait below: a scripted function may resume after
        # `wait` on another thread, which would then restore the grad mode there, not here. Each part
        # disables gradients itself.
        with torch.no_grad():
            cond, repeat = self.upsampler.forward_factored(mel)
        out = torch.empty_like(z)
        bounds = self.segment_bounds(mel.shape[2], segments)
        if len(bounds) == 1:
            self._synthesize_range(z, cond, repeat, 0, mel.shape[2], chunk_frames, out)
        elif torch.jit.is_scripting():
            futures = [
                torch.jit.fork(self._synthesize_range, z, cond, repeat, first, last, chunk_frames, out)
                for first, last in bounds
            ]
            for future in futures:
                torch.jit.wait(future)
        else:
            self._synthesize_threads(z, cond, repeat, bounds, chunk_frames, out)
        return out

    @torch.jit.unused
    def _synthesize_threads(
        self,
        z: torch.Tensor,
        cond: torch.Tensor,
        repeat: int,
        bounds: list[tuple[int, int]],
        chunk_frames: int,
        out: torch.Tensor,
    ) -> None:
        """Eager path of the segments: one Python thread each, one intra-op thread per segment.

        torch releases the GIL inside its operators, so the segments' products overlap; grad mode
        and inference mode are thread-local, so each worker takes the caller's. The caller's thread count is
        restored afterwards.
        """
        previous = torch.get_num_threads()
        inference = torch.is_inference_mode_enabled()

        def work(bound: tuple[int, int]) -> int:
            torch.set_num_threads(1)
            with torch.inference_mode(inference):
                return self._synthesize_range(z, cond, repeat, bound[0], bound[1], chunk_frames, out)

        try:
            with ThreadPoolExecutor(max_workers=len(bounds)) as pool:
                list(pool.map(work, bounds))
        finally:
            torch.set_num_threads(previous)

    @torch.jit.export
    def segment_bounds(self, frames: int, segments: int) -> list[tuple[int, int]]:
        """Frame ranges ``[(first, last), …]`` of :meth:`synthesize_from_noise`'s time segments.

        Segments shorter than their lead-in would mostly repeat work, so at most
        ``frames // lead_in_frames`` segments are used (at least one). The work is balanced: every
        segment but the first also evaluates its lead-in (on average over the flows ``c`` frames,
        see ``_synthesize_range``), so the first is longer by that (``W`` frames first, ``W - c`` for
        the others, ``W = (frames + (S - 1)·c) / S``).
        """
        lead = self.lead_in_frames()
        count = max(1, min(segments, frames // max(lead, 1)))
        if count == 1:
            return [(0, frames)]
        cost = (sum(self._flow_lead_frames) + len(self._flow_lead_frames) - 1) // len(self._flow_lead_frames)
        first = (frames + (count - 1) * cost) // count
        rest = frames - first
        edges = [0] + [first + (rest * i) // (count - 1) for i in range(count)]
        return [(edges[i], edges[i + 1]) for i in range(count)]

    @torch.jit.export
    def lead_in_frames(self) -> int:
        """Frames of noise before a segment that its first output sample depends on (⌈(R - 1)/hop⌉)."""
        return self._lead_in_frames

    @torch.jit.export
    def _synthesize_range(
        self,
        z: torch.Tensor,
        cond: torch.Tensor,
        repeat: int,
        first_frame: int,
        last_frame: int,
        chunk_frames: int,
        out: torch.Tensor,
    ) -> int:
        """Write ``out[:, first_frame·hop : last_frame·hop]``, evaluating from the lead-in onwards.

        Args:
            z: (B, N) noise of the whole utterance.
            cond: conditioning of the whole utterance from ``upsampler.forward_factored``.
            repeat: its repetition factor.
            first_frame, last_frame: the frame range to write.
            chunk_frames: frames per block.
            out: (B, N) output of the whole utterance (only the range is written).

        Returns:
            The number of flow-samples evaluated (Σ over flows of the samples each evaluated, lead-ins
            included).
        """
        with torch.no_grad():
            batch = z.shape[0]
            hop = self.hop_length
            begin = max(0, first_frame - self.lead_in_frames()) * hop
            emit = first_frame * hop
            total = last_frame * hop
            # flow f starts (from silence) where its input must be exact: Σ_{j ≥ f} R_j before `emit`
            flow_begin = [max(0, first_frame - lead) * hop for lead in self._flow_lead_frames]
            evaluated = 0
            # Per network: rearranged weights, input histories and (frame-rate) conditioning projections.
            weights: list[StreamingWeights] = []
            histories: list[list[torch.Tensor]] = []
            projections: list[torch.Tensor] = []
            for setup_flow in self.flows:
                for setup_net in setup_flow.nets:
                    w = setup_net.streaming_weights()
                    weights.append(w)
                    # Zero history = silence before `begin`; exact from `emit` on (see lead_in_frames).
                    histories.append(setup_net.init_history(batch, z.dtype, z.device))
                    if repeat > 1:
                        frames = cond[:, :, begin // repeat : total // repeat]
                        projections.append(setup_net.project_conditioning(frames, w))
            # carries[f]: the last sample of flow f's input (the previous flow's output) in the previous
            # block, i.e. the first sample of flow f's one-sample-delayed input in the current block.
            carries = [torch.zeros(batch, 1, dtype=z.dtype, device=z.device) for _ in self.flow_layers]
            block = chunk_frames * hop
            for start in range(begin, total, block):
                stop = min(start + block, total)
                x = z[:, start:stop]
                net_index = 0
                for f, flow in enumerate(self.flows):
                    # a flow starts where its input must be exact (every later flow starts later still)
                    if stop > flow_begin[f]:
                        # the part of the block this flow evaluates (frame-aligned)
                        skip = max(0, flow_begin[f] - start)
                        part = x[:, skip:]
                        inputs = torch.cat([carries[f], part[:, :-1]], dim=1).t().unsqueeze(2)  # (n, B, 1)
                        carries[f] = part[:, -1:]
                        outputs: list[torch.Tensor] = []
                        for net in flow.nets:
                            index = net_index
                            net_index += 1
                            if repeat > 1:
                                offset = begin // repeat
                                block_cond = projections[index][
                                    (start + skip) // repeat - offset : stop // repeat - offset
                                ]
                            else:
                                block_cond = net.project_conditioning(
                                    cond[:, :, start + skip : stop], weights[index]
                                )
                            streamed = net.stream(
                                inputs, block_cond, repeat, histories[index], weights[index]
                            )
                            outputs.append(streamed.permute(1, 2, 0))  # (B, C_out, n)
                        mu, log_s = flow._split(outputs)
                        evaluated += stop - start - skip
                        transformed = torch.addcmul(mu, part, torch.exp(log_s))
                        # samples before `skip` are not needed by any later flow (they start later still)
                        x = transformed if skip == 0 else torch.cat([x[:, :skip], transformed], dim=1)
                if stop > emit:
                    keep = max(start, emit)
                    out[:, keep:stop] = x[:, keep - start :]
            return evaluated
