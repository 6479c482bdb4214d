"""``python -m vocoder.train`` (also under torchrun) — see :mod:`vocoder.cli.train`."""

from vocoder.cli.train import main

if __name__ == "__main__":
    main()
