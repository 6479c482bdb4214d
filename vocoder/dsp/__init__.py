"""Pure signal processing: μ-law, emphasis, STFT/mel, Bark cepstrum, pitch, LPC.

No ``torch.nn`` state lives here; functions take arrays/tensors and return arrays/tensors.
"""

from vocoder.dsp._emphasis import DEFAULT_ALPHA, deemphasis, preemphasis
from vocoder.dsp._mulaw import mulaw_compress, mulaw_decode, mulaw_encode, mulaw_expand
from vocoder.dsp._spectral import log_mel_spectrogram, mel_filterbank, mel_spectrogram, stft

__all__ = [
    "DEFAULT_ALPHA",
    "deemphasis",
    "log_mel_spectrogram",
    "mel_filterbank",
    "mel_spectrogram",
    "mulaw_compress",
    "mulaw_decode",
    "mulaw_encode",
    "mulaw_expand",
    "preemphasis",
    "stft",
]
