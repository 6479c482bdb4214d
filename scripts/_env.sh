# Sourced by scripts/demo.sh and scripts/test.sh: create ./.venv and install what is missing.
# Idempotent: a stamp of pyproject.toml + this file skips the install when nothing changed.
# VOCODER_TORCH (default "torch==2.13.0") names the torch requirement to install first.
# VOCODER_NO_SETUP=1 skips all of it and uses the python/commands already on PATH (the tests run the
# recipe scripts this way, inside the environment that runs them).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -n "${VOCODER_NO_SETUP:-}" ]; then
  return 0 2>/dev/null || exit 0
fi
venv="${VOCODER_VENV:-$repo/.venv}"
python_bin="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating virtual environment $venv"
  "$python_bin" -m venv "$venv"
fi
# shellcheck disable=SC1091
source "$venv/bin/activate"
stamp="$venv/.vocoder-setup-stamp"
want="$(cat "$repo/pyproject.toml" "$repo/scripts/_env.sh" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing dependencies into $venv (first run only; a few minutes)"
  pip install -q --disable-pip-version-check "${VOCODER_TORCH:-torch==2.13.0}"
  pip install -q --disable-pip-version-check -e "$repo[dev,eval,export]"
  # nnmnkwii is only a test reference for MLPG/ModSpec; its tests skip when it cannot be built
  if ! python -c "import nnmnkwii" 2>/dev/null; then
    pip install -q --disable-pip-version-check cython \
      && pip install -q --disable-pip-version-check --no-build-isolation nnmnkwii \
      || echo "[setup] nnmnkwii could not be installed: the comparisons against it will be skipped"
  fi
  echo "$want" > "$stamp"
fi
