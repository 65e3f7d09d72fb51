"""glibc's malloc told to keep freed memory, so CPU inference stops faulting in fresh pages for every tensor.

PyTorch's CPU tensors come straight from malloc. With glibc's defaults, blocks of more than 128 KiB to 32 MiB
are mmap-ed until one is freed (the threshold then rises to that size), and free memory at the top of a heap
is handed back to the OS once it passes twice the threshold. A generator call allocates and frees tensors of
many sizes, and each time memory goes back to the OS the next tensor faults
its pages in again: measured on the 2-core development machine, the built-in model rendering with the
walk's two one-thread workers took 130-300 page faults and 0.43-0.77 ms of system time per frame, against 1-3
faults and 0.08-0.10 ms with the settings below, and ran at 363-390 frames/s against 412-444 (three runs
each, alternated; docs/performance.md). Under a hypervisor every fault costs more than on bare metal.

`keep_freed_memory()` fixes the mmap threshold at its maximum (32 MiB: above it, blocks are still mmap-ed and
returned) and keeps up to TRIM_THRESHOLD of free memory at the top of each heap. The memory a process holds
stays at about its peak (the peak itself does not grow). The command line calls it before every command;
library users may call it themselves. It does nothing off glibc, when the user already chose malloc settings
(MALLOC_*_ variables, GLIBC_TUNABLES, a preloaded allocator such as jemalloc or tcmalloc), or when
LATENTSTUDIO_MALLOC=default.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # mallopt's parameter numbers (malloc.h)
MIB = 1 << 20
MMAP_THRESHOLD = 32 * MIB  # glibc's upper limit for it on 64-bit systems (half its 64 MiB heap size)
TRIM_THRESHOLD = 256 * MIB
TOP_PAD = 16 * MIB  # grow a heap in steps of this much, not page by page
SETTINGS = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD))
OPT_OUT = "LATENTSTUDIO_MALLOC"  # "default": leave glibc's own settings
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_ARENA_MAX")


def _user_chose(environ) -> str | None:
    """Why the user's own malloc settings take precedence, or None."""
    if environ.get(OPT_OUT, "").strip().lower() == "default":
        return f"{OPT_OUT}=default"
    for name in USER_SETTINGS:
        if name in environ:
            return name
    if "glibc.malloc" in environ.get("GLIBC_TUNABLES", ""):
        return "GLIBC_TUNABLES"
    preload = environ.get("LD_PRELOAD", "")
    if any(name in preload for name in ("jemalloc", "tcmalloc", "mimalloc")):
        return "LD_PRELOAD"
    return None


def keep_freed_memory(environ=None) -> bool:
    """Apply SETTINGS through glibc's mallopt; True when they were applied (see the module's docstring)."""
    environ = os.environ if environ is None else environ
    if _user_chose(environ) is not None or platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in SETTINGS)
