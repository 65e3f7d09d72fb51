"""glibc's malloc, tuned for a process that frees and reallocates the same large buffers all the time.

PyTorch on the CPU and numpy take every tensor and temporary array from malloc. With glibc's defaults, a
buffer of 128 KiB or more is mapped fresh from the kernel (until the dynamic threshold has risen, and never
above 32 MiB), and freed memory at the top of the heap is handed back as soon as more than twice that is
free: the next batch then page-faults its way through the same memory again, zeroed by the kernel page by
page. Measured on the 2-core development machine: the spacewalk's OpenSimplex noise for 8 frames x 256
dimensions (131 KiB arrays) 1.6-1.8 ms -> 0.9 ms a call; the paper256 generator at 256 px, batch 1 (17 MiB
activations), 64-76 % -> 80-89 % of the convolution ceiling (docs/performance.md). PyTorch's own CPU tuning
guide suggests another allocator (jemalloc, tcmalloc) for the same reason; these three settings get most of
it without one.

The cost is memory the process keeps instead of returning it: at most TRIM_THRESHOLD + TOP_PAD of free heap,
and buffers up to MMAP_THRESHOLD come from the heap. `latentstudio`'s command line calls `tune()` once at
start; the library itself never changes process-wide settings. Set LATENTSTUDIO_MALLOC=default, or any of
glibc's own MALLOC_*_ variables, to keep glibc's behaviour (or yours).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

# mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
TRIM_THRESHOLD = 256 << 20  # free heap kept before giving memory back
TOP_PAD = 64 << 20  # extra heap asked for (and kept) each time it grows
MMAP_THRESHOLD = 64 << 20  # buffers below this come from the heap, not a fresh mapping
GLIBC_VARIABLES = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_ARENA_MAX",
                   "GLIBC_TUNABLES")


def tune(environ=None) -> bool:
    """Apply the settings above to this process's glibc malloc; True when they were applied. Does nothing on
    other C libraries and platforms, when LATENTSTUDIO_MALLOC=default, or when the user set glibc's own
    variables."""
    environ = os.environ if environ is None else environ
    if environ.get("LATENTSTUDIO_MALLOC", "").lower() == "default" or any(v in environ for v in GLIBC_VARIABLES):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    settings = ((M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD), (M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    return all(mallopt(param, value) == 1 for param, value in settings)
