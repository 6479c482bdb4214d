"""The error type of synthesis."""


class SynthesisError(RuntimeError):
    """A checkpoint or input that cannot be synthesized from; one line naming it."""
