"""``python -m vocoder.bench``: the ``vocoder-bench`` command (:mod:`vocoder.cli.bench`)."""

import sys

from vocoder.cli.bench import main

if __name__ == "__main__":
    sys.exit(main())
