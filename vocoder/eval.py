"""``python -m vocoder.eval`` (same as ``python -m vocoder.evaluate``) — see :mod:`vocoder.cli.evaluate`."""

from vocoder.cli.evaluate import main

if __name__ == "__main__":
    main()
