"""Streaming synthesis: frames in as a front end emits them, audio out with a fixed delay.

``vocoder.inference.load(checkpoint).stream(seed=…)`` returns a :class:`SynthesisStream`:
``push(frames)`` takes the next ``(T, C)`` conditioning frames (any ``T ≥ 0``) and returns the audio
that they complete, ``flush()`` ends the utterance and returns the rest. A stream holds everything
that offline synthesis carries from one sample to the next — recurrent states, convolution histories,
the random stream — so its output is the offline synthesis of the same frames, not an approximation:

* **LPCNet** (:class:`LPCNetStream`) runs the frame-rate network on the frames whose look-ahead has
  arrived (``frame_context`` = 2 frames: its two valid kernel-3 convolutions) and then the sample
  loop of the chosen backend (``fast``, ``int8``, ``int8_xiph`` or ``torch``) on those frames from the
  carried :class:`~vocoder.inference._lpcnet_sampling.SamplerState`. Every per-frame quantity is
  computed row by row in an order that does not depend on how many frames a call holds (the
  frame-rate kernel of :mod:`vocoder.inference._lpcnet_frames`, the LPC of
  :func:`vocoder.dsp.lpc_from_cepstrum`), the uniforms come from the utterance's generator
  ``default_rng([seed, 0])`` in order, and de-emphasis carries its last output: the samples equal
  those of ``vocoder.synthesize([frames], seed=seed)`` exactly, for any split of the frames.
* **IAF student** (:class:`IAFStream`) upsamples the frames whose conditioning look-ahead has arrived
  (the upsampler's: ``upsample_context + 1`` frames for the frame-centred one, none for repetition),
  draws the logistic noise from the seeded generator in order and advances every flow's WaveNets
  through :meth:`vocoder.layers.WaveNetStack.stream` with carried histories — the blockwise
  evaluation of :meth:`vocoder.models.IAFStudent.synthesize` with other block boundaries, equal to it
  up to float rounding (products over other row counts).

The delay (:attr:`SynthesisStream.delay_frames`, :attr:`SynthesisStream.delay_ms`) is the number of
frames a pushed frame waits for before its samples come out: after ``n`` frames have been pushed,
``n − delay_frames`` frames of audio have been returned.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator

import numpy as np
import torch

from vocoder.dsp import deemphasis, lpc_from_cepstrum
from vocoder.inference._errors import SynthesisError
from vocoder.inference._lpcnet_frames import frame_network_terms, pack_frame_network
from vocoder.inference._lpcnet_sampling import (
    PDF_FLOOR,
    SamplerState,
    frame_inputs,
    sample_reference,
    sampling_exponent,
)
from vocoder.layers import CentredUpsampler, RepeatUpsampler, TransposedConvUpsampler
from vocoder.losses import sample_logistic
from vocoder.models import IAFStudent, LPCNet


class SynthesisStream(abc.ABC):
    """One utterance synthesized as its frames arrive.

    Args:
        channels: conditioning values per frame.
        hop_length: samples per frame.
        sample_rate: output rate in Hz.
        delay_frames: frames of look-ahead a frame's samples wait for.
    """

    def __init__(self, channels: int, hop_length: int, sample_rate: int, delay_frames: int) -> None:
        self.channels = channels
        self.hop_length = hop_length
        self.sample_rate = sample_rate
        self._delay_frames = delay_frames
        self.frames_pushed = 0
        self.samples_returned = 0
        self.closed = False

    @property
    def delay_frames(self) -> int:
        """Frames after a frame that must arrive before its samples are returned."""
        return self._delay_frames

    @property
    def delay_ms(self) -> float:
        """:attr:`delay_frames` in milliseconds of audio."""
        return 1000.0 * self._delay_frames * self.hop_length / self.sample_rate

    def push(self, frames: np.ndarray) -> np.ndarray:
        """Take the next frames; return the audio they complete.

        Args:
            frames: ``(T, C)`` conditioning (``T ≥ 0``; ``(C,)`` is one frame), in the units of the
                offline :meth:`~vocoder.inference.Vocoder.synthesize`.

        Returns:
            ``(n · hop,)`` float32 audio in [-1, 1], ``n`` the frames completed by this call (0 while
            the first :attr:`delay_frames` frames arrive).

        Raises:
            SynthesisError: one line, for frames of the wrong shape, non-finite values, or a push
                after :meth:`flush`; the stream is unchanged then.
        """
        if self.closed:
            raise SynthesisError("push() after flush(): a stream synthesizes one utterance; start another")
        frames = np.asarray(frames)
        if frames.ndim == 1:
            frames = frames[None]
        if frames.ndim != 2 or frames.shape[1] != self.channels:
            raise SynthesisError(f"frames must be (T, {self.channels}), got {frames.shape}")
        frames = frames.astype(np.float32)
        if not np.all(np.isfinite(frames)):
            raise SynthesisError(f"frames {self.frames_pushed}…{self.frames_pushed + len(frames) - 1}: "
                                 "non-finite values")
        if not len(frames):
            return np.zeros(0, np.float32)
        audio = self._push(frames)
        self.frames_pushed += len(frames)
        self.samples_returned += len(audio)
        return audio

    def flush(self) -> np.ndarray:
        """End the utterance: return the audio of the frames still waiting for their look-ahead.

        The utterance's end stands in for the look-ahead (as offline synthesis pads it); the stream
        is closed afterwards.

        Returns:
            ``(n · hop,)`` float32 audio (empty if no frame was pushed).
        """
        if self.closed:
            return np.zeros(0, np.float32)
        self.closed = True
        audio = self._flush() if self.frames_pushed else np.zeros(0, np.float32)
        self.samples_returned += len(audio)
        return audio

    @abc.abstractmethod
    def _push(self, frames: np.ndarray) -> np.ndarray:
        """Audio of the frames completed by ``frames`` (``(T ≥ 1, C)`` float32, validated)."""

    @abc.abstractmethod
    def _flush(self) -> np.ndarray:
        """Audio of the remaining frames (at least one frame was pushed)."""


class LPCNetStream(SynthesisStream):
    """LPCNet frame by frame: the frame-rate network's look-ahead (``frame_context`` frames) is the delay.

    Args:
        model: the network (eval mode).
        sample_rate: output rate in Hz.
        backend: ``fast``, ``int8``, ``int8_xiph`` or ``torch`` (see
            :func:`vocoder.inference.lpcnet_synthesize`).
        tempering: see :func:`~vocoder.inference.sampling_exponent`.
        seed: the synthesis seed; the stream is utterance 0 of the RNG contract
            (:mod:`vocoder.inference._lpcnet_sampling`).
        pdf_floor: see :func:`~vocoder.inference.tempered_distribution`.
    """

    def __init__(self, model: LPCNet, sample_rate: int, backend: str = "fast", tempering: str = "xiph",
                 seed: int = 0, pdf_floor: float = PDF_FLOOR) -> None:
        super().__init__(model.n_features, model.hop_length, sample_rate, model.frame_context)
        from vocoder.inference._lpcnet_fast import pack_lpcnet, sample_fast
        from vocoder.inference._lpcnet_int8 import pack_lpcnet_int8, sample_int8

        if seed < 0:
            raise SynthesisError(f"seed must be >= 0, got {seed}")
        sampling_exponent(np.zeros(1), tempering)  # validates the name before any work
        self.model = model
        self.tempering = tempering
        network_dtype = np.float64 if model.gru_a.weight_hh_l0.dtype == torch.float64 else np.float32
        if backend != "torch" and getattr(model, "output_head", "dualfc") == "dual_softmax":
            raise SynthesisError(f"backend={backend!r} synthesizes LPCNet's DualFC μ-law heads only; this "
                                 f"model has output_head={model.output_head!r}: use backend='torch'")
        if backend == "fast":
            packed = pack_lpcnet(model, network_dtype)
            dtype = network_dtype

            def sample(inputs, state):
                return sample_fast(model, packed, inputs, state, 1, pdf_floor)
        elif backend in ("int8", "int8_xiph"):
            # the offline 8-bit path computes in float32 around its products whatever the model's dtype
            packed_int8 = pack_lpcnet_int8(model, np.float32)
            dtype = np.float32
            dual_fc = "int8" if backend == "int8" else "float"

            def sample(inputs, state):
                return sample_int8(model, packed_int8, inputs, state, 1, pdf_floor, dual_fc)
        elif backend == "torch":
            dtype = network_dtype

            def sample(inputs, state):
                return sample_reference(model, inputs, state, pdf_floor)
        else:
            raise SynthesisError(f"backend={backend!r}: must be fast, int8, int8_xiph or torch")
        self.backend = backend
        self._sample = sample
        with torch.no_grad():
            self._tables = model.input_tables()
        self._frame_network = pack_frame_network(model)
        self._state = SamplerState.initial(model, 1, dtype)
        self._rng = np.random.default_rng([seed, 0])
        # padded frames from the first one whose samples are still to come (its look-back included)
        self._window = np.zeros((0, self.channels))
        self._last_output = 0.0  # de-emphasis state: the previous output sample

    def _push(self, frames: np.ndarray) -> np.ndarray:
        context = self.model.frame_context
        frames = frames.astype(np.float64)
        if not self.frames_pushed:  # the utterance's first frame stands in for the look-back
            frames = np.concatenate([np.repeat(frames[:1], context, axis=0), frames])
        self._window = np.concatenate([self._window, frames])
        return self._synthesize_ready()

    def _flush(self) -> np.ndarray:
        context = self.model.frame_context
        self._window = np.concatenate([self._window, np.repeat(self._window[-1:], context, axis=0)])
        return self._synthesize_ready()

    def _synthesize_ready(self) -> np.ndarray:
        """Synthesize every frame whose window is complete; keep the rest of the window."""
        model, context = self.model, self.model.frame_context
        ready = len(self._window) - 2 * context
        if ready <= 0:
            return np.zeros(0, np.float32)
        window = self._window[: ready + 2 * context]
        a_frame, b_frame = frame_network_terms(self._frame_network, window[None])
        raw = window[None, context : context + ready]
        inputs = frame_inputs(model, self._tables, a_frame, b_frame,
                              lpc_from_cepstrum(raw[..., : model.period_index], order=model.lpc_order),
                              sampling_exponent(raw[..., model.correlation_index], self.tempering),
                              self._rng.random(ready * self.hop_length)[None])
        signal, _, _ = self._sample(inputs, self._state)
        self._window = self._window[ready:]
        output = deemphasis(signal[0], initial=self._last_output)
        self._last_output = float(output[-1])
        return np.clip(output, -1.0, 1.0).astype(np.float32)


def upsampler_reach(upsampler: torch.nn.Module, hop_length: int) -> tuple[int, int]:
    """Frames before and after a frame that its upsampled conditioning reads.

    Args:
        upsampler: a :class:`~vocoder.layers.RepeatUpsampler`,
            :class:`~vocoder.layers.TransposedConvUpsampler` or :class:`~vocoder.layers.CentredUpsampler`.
        hop_length: samples per frame.

    Returns:
        ``(look_back, look_ahead)`` in frames.
    """
    if isinstance(upsampler, RepeatUpsampler):
        return 0, 0
    if isinstance(upsampler, TransposedConvUpsampler):
        reach = -(-upsampler.overlap // hop_length)
        return reach, reach
    if isinstance(upsampler, CentredUpsampler):
        # the frame mixer reads ±context frames; a frame's second half interpolates towards the next frame
        return upsampler.context, upsampler.context + 1
    raise SynthesisError(f"no streaming rule for the upsampler {type(upsampler).__name__}")


class IAFStream(SynthesisStream):
    """The IAF student frame by frame: its upsampler's look-ahead is the delay.

    Args:
        model: the student (eval mode).
        mel_mean, mel_std: ``(n_mels,)`` normalization of its input (the training statistics).
        sample_rate: output rate in Hz.
        seed: seed of the logistic noise (as :meth:`vocoder.models.IAFStudent.sample_noise`).
        threads: torch intra-op threads while a call computes (restored afterwards).
        chunk_frames: frames per block of the flows' evaluation (the offline default, 8).
    """

    def __init__(self, model: IAFStudent, mel_mean: torch.Tensor, mel_std: torch.Tensor, sample_rate: int,
                 seed: int = 0, threads: int = 1, chunk_frames: int = 8) -> None:
        look_back, look_ahead = upsampler_reach(model.upsampler, model.hop_length)
        super().__init__(model.n_mels, model.hop_length, sample_rate, look_ahead)
        self.model = model
        self._look_back = look_back
        self._threads = threads
        self._chunk_frames = chunk_frames
        reference = next(model.parameters())
        self._dtype, self._device = reference.dtype, reference.device
        self._mean = torch.as_tensor(mel_mean, dtype=torch.float32)
        self._std = torch.as_tensor(mel_std, dtype=torch.float32)
        self._generator = torch.Generator(device=self._device)
        self._generator.manual_seed(seed)
        with torch.no_grad():
            self._nets = [net for flow in model.flows for net in flow.nets]
            self._weights = [net.streaming_weights() for net in self._nets]
            self._histories = [net.init_history(1, self._dtype, self._device) for net in self._nets]
        self._carries = [torch.zeros(1, 1, dtype=self._dtype, device=self._device) for _ in model.flows]
        self._frames = torch.zeros(model.n_mels, 0)  # normalized frames from `_first` on
        self._first = 0  # utterance index of self._frames[:, 0]
        self._done = 0  # frames synthesized

    @contextlib.contextmanager
    def _torch_threads(self) -> Iterator[None]:
        previous = torch.get_num_threads()
        torch.set_num_threads(self._threads)
        try:
            yield
        finally:
            torch.set_num_threads(previous)

    def _push(self, frames: np.ndarray) -> np.ndarray:
        normalized = (torch.from_numpy(frames) - self._mean) / self._std
        self._frames = torch.cat([self._frames, normalized.t()], dim=1)
        return self._synthesize(self._first + self._frames.shape[1] - self.delay_frames, final=False)

    def _flush(self) -> np.ndarray:
        return self._synthesize(self._first + self._frames.shape[1], final=True)

    @torch.no_grad()
    def _synthesize(self, end: int, final: bool) -> np.ndarray:
        """Synthesize frames ``[done, end)`` (``final``: the received frames end the utterance)."""
        pieces = []
        with self._torch_threads():
            for start in range(self._done, end, self._chunk_frames):
                pieces.append(self._block(start, min(start + self._chunk_frames, end), final))
        self._done = max(self._done, end)
        # keep the look-back of the next frame to synthesize
        keep = max(0, self._done - self._look_back) - self._first
        if keep > 0:
            self._frames = self._frames[:, keep:]
            self._first += keep
        if not pieces:
            return np.zeros(0, np.float32)
        return torch.cat(pieces).float().cpu().numpy()

    def _block(self, start: int, stop: int, final: bool) -> torch.Tensor:
        """Waveform ``(n,)`` of frames ``[start, stop)`` from the carried state."""
        model, hop = self.model, self.hop_length
        received = self._first + self._frames.shape[1]
        # a window with the look-back and look-ahead; where it stops at the utterance's edge, the
        # upsampler's own edge handling is what offline synthesis does there too
        low = max(0, start - self._look_back)
        high = received if final else min(received, stop + self.delay_frames)
        window = self._frames[:, low - self._first : high - self._first]
        cond, repeat = model.upsampler.forward_factored(window[None].to(self._device, self._dtype))
        per_frame = hop // repeat
        cond = cond[:, :, (start - low) * per_frame : (stop - low) * per_frame]
        x = sample_logistic([1, (stop - start) * hop], self._dtype, self._device, self._generator)
        index = 0
        for f, flow in enumerate(model.flows):
            inputs = torch.cat([self._carries[f], x[:, :-1]], dim=1).t().unsqueeze(2)  # (n, 1, 1)
            self._carries[f] = x[:, -1:]
            outputs = []
            for net in flow.nets:
                projected = net.project_conditioning(cond, self._weights[index])
                streamed = net.stream(inputs, projected, repeat, self._histories[index], self._weights[index])
                outputs.append(streamed.permute(1, 2, 0))
                index += 1
            # μ and log s: one network's two channels, or one network each (IAFFlow's layout)
            mu, log_s = outputs[0].unbind(1) if len(outputs) == 1 else (outputs[0][:, 0], outputs[1][:, 0])
            x = torch.addcmul(mu, x, torch.exp(log_s.clamp(min=flow.log_scale_min)))
        return x[0]
