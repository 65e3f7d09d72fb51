"""keep_freed_memory: glibc keeps a freed 8 MiB block in its heap instead of handing it back to the OS."""

import os
import platform
import subprocess
import sys

import pytest

from latentstudio.utils.memory import OPT_OUT, _user_chose, keep_freed_memory

# Allocates 8 MiB with malloc, frees it and prints the main heap's size (mallinfo2's arena): glibc's
# defaults mmap a block that size (its first one) and unmap it on free, the tuned settings take it from
# the heap and keep it there.
PROBE = """
import ctypes, sys
from latentstudio.utils.memory import keep_freed_memory
applied = keep_freed_memory()
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
libc.mallinfo2.restype = MallInfo2
before = libc.mallinfo2().arena
block = libc.malloc(8 << 20)
ctypes.memset(block, 1, 8 << 20)
libc.free(block)
print(applied, libc.mallinfo2().arena - before)
"""

glibc = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")


def _probe(env: dict) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                         env={k: v for k, v in env.items() if not k.startswith("MALLOC_")}).stdout.split()
    return out[0] == "True", int(out[1])


@glibc
def test_freed_blocks_stay_in_the_heap():
    env = dict(os.environ)
    env.pop(OPT_OUT, None)
    applied, kept = _probe(env)
    assert applied and kept >= 8 << 20
    applied, kept = _probe({**env, OPT_OUT: "default"})
    assert not applied and kept < 1 << 20


def test_the_users_own_settings_win():
    assert _user_chose({}) is None
    assert _user_chose({OPT_OUT: "default"}) == f"{OPT_OUT}=default"
    assert _user_chose({"MALLOC_TRIM_THRESHOLD_": "0"}) == "MALLOC_TRIM_THRESHOLD_"
    assert _user_chose({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"}) == "GLIBC_TUNABLES"
    assert _user_chose({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX"}) is None
    assert _user_chose({"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}) == "LD_PRELOAD"
    assert keep_freed_memory({OPT_OUT: "default"}) is False
