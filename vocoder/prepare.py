"""``python -m vocoder.prepare`` — see :mod:`vocoder.cli.prepare`."""

from vocoder.cli.prepare import main

if __name__ == "__main__":
    main()
