"""Shared test fixtures. Keep CPU runs deterministic and small."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
SAMPLE_ROOT = REPO_ROOT / "vocoder" / "data" / "sample"

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _seed_everything():
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _private_cache_home(tmp_path, monkeypatch):
    """vocoder-eval's reference cache (and any other XDG cache) goes to a folder of this test, never
    the user's nor another test's: a test computes what it checks."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    yield


@pytest.fixture
def sample_root() -> Path:
    """The embedded kathleen sample corpus (ARCTIC layout, 40 utterances)."""
    return SAMPLE_ROOT / "kathleen"


@pytest.fixture
def slt_root() -> Path:
    """The embedded real slt utterance (ARCTIC layout, 1 utterance)."""
    return SAMPLE_ROOT / "slt"


@pytest.fixture(scope="module")
def one_torch_thread():
    """A shared 2-core machine: a module that uses this (``pytestmark``) runs single-threaded."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
