"""The command line's malloc settings: applied on glibc, skipped when the user asks or set glibc's own."""

import platform

import pytest

from latentstudio.utils import allocator

glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def test_opt_outs_leave_malloc_alone(monkeypatch):
    calls = []
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda name: calls.append(name))
    assert allocator.tune({"LATENTSTUDIO_MALLOC": "default"}) is False
    assert allocator.tune({"MALLOC_TOP_PAD_": "0"}) is False
    assert allocator.tune({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"}) is False
    assert calls == []  # libc was not even opened


def test_other_platforms_are_skipped(monkeypatch):
    monkeypatch.setattr(allocator.platform, "system", lambda: "Darwin")
    assert allocator.tune({}) is False


@pytest.mark.skipif(not glibc, reason="glibc's mallopt")
def test_settings_reach_glibc(monkeypatch):
    seen = []

    class FakeLibc:
        def mallopt(self, param, value):
            seen.append((param, value))
            return 1

    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda name: FakeLibc())
    assert allocator.tune({}) is True
    assert dict(seen) == {allocator.M_TRIM_THRESHOLD: 256 << 20, allocator.M_TOP_PAD: 64 << 20,
                          allocator.M_MMAP_THRESHOLD: 64 << 20}
    monkeypatch.undo()
    assert allocator.tune({}) is True and allocator.tune({}) is True  # the real glibc accepts them, twice
