"""Keep the learner's freed tensor memory in the process instead of giving it back
to the kernel after every update (glibc only).

A learner update allocates and frees the same few hundred tensors of
0.5-4 MB every time (batch 1,024 x agents x hidden). glibc serves blocks above
its mmap threshold (128 KB to 32 MB, adapted at run time) with a fresh
``mmap`` and unmaps them on free, so every update touches those pages anew:
on Rover-Tower ~7,800 page faults (~30 MB) per MAAC update, ~8 % of its CPU
time, 131 with this setting (``benchmarks/learner_memory.py``; BENCHMARKS.md,
issue 15). Raising the mmap
threshold above the learner's tensors and the trim threshold above its peak
makes glibc reuse the freed blocks from its heap. Numerics are unchanged.

On a C library without ``mallopt`` (macOS, musl) nothing is changed.
"""

import ctypes
import ctypes.util

#: glibc's mallopt parameter numbers (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: Blocks up to this size come from the heap (glibc's upper limit on 64-bit
#: is 32 MB); the learner's largest per-update tensors are ~4-16 MB.
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
#: Free heap memory kept before glibc returns it to the kernel.
TRIM_THRESHOLD_BYTES = 1024 * 1024 * 1024


def retain_freed_memory() -> bool:
    """Sets glibc's mmap and trim thresholds for this process; True if it could."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
