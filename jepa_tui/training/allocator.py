"""Keep freed tensor memory in the process heap during CPU training (glibc's malloc settings).

PyTorch's CPU allocator hands every freed tensor back to ``malloc``. glibc serves blocks above its mmap threshold
(128 KiB at first, then moved by the sizes freed) with fresh ``mmap`` calls and gives heap tops above its trim
threshold back to the system, so whether a step re-maps its activations depends on the order of earlier frees:
runs of the paper-sized model on 2 CPU cores took from under 1 to about 800 page faults per step (each one
zero-filling a page; about 20 ms of system time per step at the high end), so the same run was fast or slow by
chance. With a fixed 32 MiB mmap threshold and a 1 GiB trim threshold the heap keeps those blocks and reuses them
(under 15 faults per step in every run measured); the price is that the process keeps its peak heap until it exits.
Numerics do not change. ``benchmarks/throughput.py`` shows the effect.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 << 20
TRIM_THRESHOLD_BYTES = 1 << 30


def keep_freed_memory() -> bool:
    """Set glibc's mmap threshold to 32 MiB and its trim threshold to 1 GiB for this process.

    Call once at the start of a training process (``jepa-tui train``/``run`` and the benchmarks do); it affects
    the whole process, so library code never calls it.

    Returns:
        True when both settings were applied; False where the C library is not glibc (macOS, musl, Windows), which
        changes nothing but speed.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # The mmap threshold first: setting it (or the trim threshold) turns off glibc's dynamic adjustment.
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
