"""``retain_freed_memory``: freed big buffers are reused without new page faults (glibc, own process)."""

import platform
import subprocess
import sys

import pytest

SCRIPT = r"""
import resource, sys
import torch
from vocoder.training import retain_freed_memory

if sys.argv[1] == "retain":
    assert retain_freed_memory() and retain_freed_memory()  # idempotent
faults = []
for _ in range(4):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    buffer = torch.ones(64 * 2**20 // 4)  # 64 MB, above glibc's largest mmap threshold, touched
    del buffer
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(min(faults[1:]))
"""


def _faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_retained_memory_is_reused_without_page_faults():
    pages = 64 * 2**20 // 4096
    # default glibc: every 64 MB buffer is a fresh mapping, faulted in again page by page (16,384 faults;
    # about 32 where the kernel backs it with 2 MB huge pages)
    assert _faults("default") > 24
    # retained: the second and later buffers reuse the heap the first one left
    assert _faults("retain") < 8
    assert pages > 24 * 512  # (the buffer spans more than 24 huge pages)


def test_trainer_settings_have_it_on_by_default():
    from vocoder.training import TrainerSettings

    assert TrainerSettings().retain_memory is True
    assert TrainerSettings(retain_memory=False).retain_memory is False


@pytest.mark.parametrize("retain", [True, False])
def test_trainer_applies_the_setting_on_cpu(tmp_path, monkeypatch, retain):
    import vocoder.training._trainer as trainer_module
    from tests.trainer_toy import make_trainer

    calls = []
    monkeypatch.setattr(trainer_module, "retain_freed_memory", lambda: calls.append(True) or True)
    make_trainer(tmp_path / "run", max_steps=1, retain_memory=retain, device="cpu").fit()
    assert calls == ([True] if retain else [])
