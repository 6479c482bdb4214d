"""Every command is a console script and also ``python -m vocoder.<name>``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

COMMANDS = {
    "prepare": "vocoder-prepare",
    "train": "vocoder-train",
    "synth": "vocoder-synth",
    "eval": "vocoder-eval",
    "evaluate": "vocoder-eval",
    "bench": "vocoder-bench",
}


@pytest.mark.parametrize("module", sorted(COMMANDS))
def test_module_and_console_script_print_help(module, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", f"vocoder.{module}", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()  # some usage text
    script = COMMANDS[module]
    assert shutil.which(script, path=str(Path(sys.executable).parent)), script
