"""Freed CPU memory kept in the process for the next step, instead of fresh pages each time (glibc).

glibc's malloc gives every block above its mmap threshold a mapping of its own (the threshold
starts at 128 KiB and follows the largest such block freed, up to 32 MiB) and hands free memory
at the top of its heap back to the system once there is more than its trim threshold (twice the
mmap threshold). A training step on a CPU frees its activations and allocates them again in the
next step, so most of them land on pages the kernel must map and zero on first touch. At 192 px,
batch 8, the stem's activations are 19 MB each, and that first touch was most of the time of the
ops that wrote them (a 19 MB fill_: 20 ms, 5 ms once kept).

:func:`keep_freed_cpu_memory` sets the mmap threshold to glibc's ceiling and never trims, the
settings of ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` made from inside the process:
blocks up to 32 MiB come from the heap and freed ones are reused. The process keeps its peak
memory instead of returning it between steps. Elsewhere (macOS, Windows, musl) it does nothing.
"""
import ctypes
import ctypes.util
import platform
import sys
from typing import Optional

__all__ = ["keep_freed_cpu_memory", "M_TRIM_THRESHOLD", "M_MMAP_THRESHOLD", "MMAP_THRESHOLD_CEILING",
           "NEVER_TRIM"]

# mallopt's parameter numbers (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# the largest mmap threshold glibc accepts on 64-bit (HEAP_MAX_SIZE / 2)
MMAP_THRESHOLD_CEILING = 32 * 1024 * 1024
# mallopt takes an int: the largest trim threshold it can be given
NEVER_TRIM = 2 ** 31 - 1


def _glibc():
    """The C library when it is glibc with ``mallopt``, else None."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") else None


def keep_freed_cpu_memory(libc: Optional[object] = None) -> bool:
    """Blocks up to 32 MiB from the heap, and the heap never trimmed; whether both were set.

    ``libc`` (tests): an object with glibc's ``mallopt(int, int) -> int``; default the process's
    glibc, and False without one.
    """
    libc = _glibc() if libc is None else libc
    if libc is None:
        return False
    mmap_set = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_CEILING)
    trim_set = libc.mallopt(M_TRIM_THRESHOLD, NEVER_TRIM)
    return bool(mmap_set) and bool(trim_set)
