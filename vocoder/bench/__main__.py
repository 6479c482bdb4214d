"""``python -m vocoder.bench``: the ``vocoder-bench`` command (:mod:`vocoder.bench._cli`)."""

import sys

from vocoder.bench._cli import main

if __name__ == "__main__":
    sys.exit(main())
