#!/usr/bin/env bash
# Run the test suite (creates/updates ./.venv first). Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/_env.sh"
cd "$repo"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
python -m pytest -q -p no:cacheprovider "$@"
