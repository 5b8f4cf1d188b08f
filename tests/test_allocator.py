"""keep_freed_memory: large tensors come from the reusable heap instead of a fresh mapping each time."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

PROBE = """
import sys, torch
from jepa_tui.training.allocator import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else None
tensor = torch.empty(4 << 20)  # 16 MiB: above glibc's default mmap threshold (128 KiB), below ours (32 MiB)
address = tensor.data_ptr()
with open("/proc/self/maps") as fh:
    heap = [line.split()[0].split("-") for line in fh if line.rstrip().endswith("[heap]")]
print(applied, any(int(lo, 16) <= address < int(hi, 16) for lo, hi in heap))
"""


def _probe(mode: str) -> list[str]:
    return subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True,
                          check=True).stdout.split()


@pytest.mark.skipif(sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
def test_large_tensors_come_from_the_heap_once_applied() -> None:
    # A fresh process maps a 16 MiB tensor on its own (and unmaps it when freed, to be faulted in again next time);
    # once applied it lies in the heap, where freed blocks are reused.
    assert _probe("default") == ["None", "False"]
    assert _probe("keep") == ["True", "True"]


def test_returns_false_where_not_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    from jepa_tui.training import allocator

    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    assert allocator.keep_freed_memory() is False
