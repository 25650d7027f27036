"""Allocator tuning for long training loops (glibc only; a no-op elsewhere).

A training step allocates and frees the same few large temporaries over and over. By
default glibc hands freed memory at the top of the heap back to the kernel as soon as it
exceeds a small threshold, and the next step faults the same pages in again. The `nnsim`
command raises the trim threshold so those pages are kept; library users may call
`tune_allocator()` themselves.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
KEEP_BYTES = 256 * 1024 * 1024

_tuned = False


def tune_allocator() -> bool:
    """Keep up to 256 MiB of freed heap and serve arrays under 32 MiB from the heap.
    Returns True where glibc took the settings."""
    global _tuned
    if _tuned:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(M_TRIM_THRESHOLD, KEEP_BYTES) == 1 and mallopt(M_MMAP_THRESHOLD,
                                                                32 * 1024 * 1024) == 1
    _tuned = ok
    return ok
