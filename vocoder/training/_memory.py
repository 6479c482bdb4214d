"""Keep freed memory in the process instead of handing it back to the kernel after every step.

A CPU training step allocates and frees the same large buffers every time: the recurrences' saved
gates and states (for LPCNet's GRU_A at batch 32 × 2,400 samples, 350 MB each), the logits and their
gradients. glibc serves every allocation above ``M_MMAP_THRESHOLD`` (at most 32 MB) with a fresh
``mmap`` and ``munmap``s it on ``free``, so each step the kernel faults in and zeroes gigabytes of
pages again (the README's training section gives the measured cost).

:func:`retain_freed_memory` switches glibc to its heap for those allocations (``M_MMAP_MAX = 0``) and
stops it trimming the heap's top (``M_TRIM_THRESHOLD``): freed blocks are reused by the next step
without a kernel round trip. That holds for the main thread's heap, where the training step allocates;
other threads' arenas still map allocations above 64 MB (their heaps cannot hold them). The price is
a higher resident size (the heap keeps its high-water mark, plus fragmentation), and the setting is
for the rest of the process: there is no undoing it. ``trainer.retain_memory`` turns it on for
training runs; nothing happens on a C library other than glibc (with another allocator preloaded,
glibc's ``mallopt`` still answers but does not govern the allocations).
"""

from __future__ import annotations

import ctypes
import platform

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
# trim the heap's top only when this much memory is free at its end (mallopt takes an int: 2 GB)
_TRIM_THRESHOLD = 2**31 - 1

_applied = False


def retain_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse instead of returning it to the kernel (idempotent).

    Affects the allocations made after the call, for the rest of the process (see the module docstring).

    Returns:
        ``True`` when the settings are in effect (glibc on Linux), ``False`` where they do not apply.
    """
    global _applied
    if _applied:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process is linked with
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    _applied = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
    return _applied
