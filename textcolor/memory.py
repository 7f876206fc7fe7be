"""Process-wide allocator setting for CPU work on large tensors.

glibc serves every allocation above its mmap threshold (at most 32 MB) with a fresh mmap and
returns it to the kernel on free. A 256×256×64 activation at batch 4 is 67 MB, a 1024×1024×32 one
134 MB, so each op's output used to arrive as new pages, each page faulted in and zeroed by the
kernel. `python -m textcolor.bench` on the 2-core CPU, opted out vs in: base-config training step
8.55 -> 8.00 s, the 1024 px inference call 2676 -> 1784 ms (README, Benchmark). Keeping freed memory in the process lets the next op reuse it (PyTorch's CPU tuning
guides get the same effect by preloading jemalloc or tcmalloc).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

_M_TRIM_THRESHOLD = -1   # glibc mallopt parameters (malloc.h)
_M_MMAP_MAX = -4
_INT_MAX = 2 ** 31 - 1


def keep_freed_memory() -> bool:
    """Serve large blocks from the heap and never trim it, so freed activations are reused without
    page faults. Only glibc (Linux); elsewhere, or with TEXTCOLOR_KEEP_FREED_MEMORY=0, a no-op.
    Returns whether the setting took effect. The cost: the process keeps its peak heap until exit,
    which the CLIs that call this (train, infer, evaluate, bench) reach anyway."""
    if os.environ.get("TEXTCOLOR_KEEP_FREED_MEMORY", "1") == "0" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    # mallopt returns 1 on success; large allocations above the heap's reach still fall back to mmap
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX))
