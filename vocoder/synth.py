"""``python -m vocoder.synth`` — see :mod:`vocoder.cli.synth`."""

from vocoder.cli.synth import main

if __name__ == "__main__":
    main()
