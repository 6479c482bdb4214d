"""vocoder: neural vocoder training framework (LPCNet, WaveNet teacher, IAF student)."""

__version__ = "0.1.0"
