"""The library kernels a piece of CPU work ran: oneDNN primitives (convolutions, reorders, eltwise) and MKL's matrix
products, each with its own execution time, from the libraries' verbose modes.

oneDNN (``torch.backends.mkldnn.verbose``) and MKL (``torch.backends.mkl.verbose``) print one line per call on the
process's standard output, from C: :func:`trace` redirects file descriptor 1 while the work runs and parses what they
wrote. The times are the libraries' own (around each call, not the Python around it), so the sum says how much of a
step the kernels take and the rest is every other operator and Python. Convolutions and matrix products also get
their arithmetic rate (GFLOP/s), to be set against what the same library reaches on large problems.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

_CONV = re.compile(r"mb(\d+)_(?:g(\d+))?ic(\d+)oc(\d+)_ih\d+oh(\d+)kh(\d+)\D.*?_iw\d+ow(\d+)kw(\d+)\D")
_GEMM = re.compile(r"MKL_VERBOSE\s+(\w*GEMM)\(\w,\w,(\d+),(\d+),(\d+),.*?\)\s+([0-9.]+)(ns|us|ms|s)\b")
_UNIT = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass
class Kernel:
    """Calls of one kernel on one problem: ``library`` ("oneDNN" or "MKL"), ``kind`` (e.g. "convolution
    backward_data", "SGEMM"), ``problem`` (oneDNN's problem descriptor or "m×n×k"), how many calls, their total
    milliseconds, and their floating-point operations (0 where not counted)."""

    library: str
    kind: str
    problem: str
    calls: int = 0
    ms: float = 0.0
    flop: float = 0.0

    @property
    def gflops(self) -> float | None:
        """Arithmetic rate in GFLOP/s, or None for kernels whose operations are not counted."""
        return self.flop / (self.ms * 1e6) if self.flop and self.ms > 0 else None


def conv_flop(problem: str) -> float:
    """Multiply-adds × 2 of a oneDNN convolution problem, e.g. ``mb64_ic16oc32_ih32oh16kh4sh2dh0ph1_iw32ow16kw4sw2
    dw0pw1`` (any propagation kind: backward-data and backward-weights do as many as forward); 0 if unreadable."""
    found = _CONV.search(problem + "_")
    if not found:
        return 0.0
    mb, groups, ic, oc, oh, kh, ow, kw = found.groups()
    return 2.0 * int(mb) * int(ic) * int(oc) * int(oh) * int(ow) * int(kh) * int(kw) / int(groups or 1)


def parse(text: str) -> list[Kernel]:
    """The kernels of a verbose log, grouped by library, kind and problem, in order of first appearance."""
    kernels: dict[tuple[str, str, str], Kernel] = {}
    for line in text.splitlines():
        if line.startswith("onednn_verbose,") and ",primitive,exec," in line:
            fields = line.split(",")
            try:
                ms = float(fields[-1])
            except ValueError:
                continue
            kind = fields[5] if fields[5] != "convolution" else f"convolution {fields[7]}"
            key = ("oneDNN", kind, fields[-2])
            flop = conv_flop(fields[-2]) if fields[5] == "convolution" else 0.0
        elif (found := _GEMM.search(line)) is not None:
            name, m, n, k, value, unit = found.groups()
            ms = float(value) * _UNIT[unit]
            key = ("MKL", name, f"{m}×{n}×{k}")
            flop = 2.0 * int(m) * int(n) * int(k)
        else:
            continue
        entry = kernels.setdefault(key, Kernel(*key))
        entry.calls += 1
        entry.ms += ms
        entry.flop += flop
    return list(kernels.values())


def trace(work: Callable[[], None]) -> list[Kernel]:
    """Run ``work`` with oneDNN's and MKL's verbose modes on and return the kernels it called (CPU only).

    Standard output is redirected to a temporary file at the descriptor level while ``work`` runs (Python's own
    output from ``work`` lands there too and is dropped)."""
    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+") as log:
        os.dup2(log.fileno(), 1)
        try:
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON), \
                    torch.backends.mkl.verbose(torch.backends.mkl.VERBOSE_ON):
                work()
        finally:
            sys.stdout.flush()
            libc.fflush(None)  # C's buffered stdout, where the libraries print
            os.dup2(saved, 1)
            os.close(saved)
        log.seek(0)
        return parse(log.read())


def large_problem_rates(size: int = 2048, repeats: int = 5) -> dict[str, float]:
    """GFLOP/s each library reaches on a large fp32 problem on this machine, the yardstick for the rates of
    :func:`trace`: MKL on a ``size``³ matrix product (``torch.mm``), oneDNN on the same product as a 1×1
    convolution (``size`` channels in and out, ``size`` positions, channels-last). Best of ``repeats``."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    image = torch.randn(1, size, size // 64, 64).contiguous(memory_format=torch.channels_last)
    kernel = torch.randn(size, size, 1, 1).contiguous(memory_format=torch.channels_last)
    work = {"MKL matrix product": lambda: torch.mm(a, b),
            "oneDNN 1x1 convolution": lambda: torch.nn.functional.conv2d(image, kernel)}
    rates = {}
    with torch.no_grad():
        for name, run in work.items():
            run()  # once untimed: the library's first call sets itself up
            seconds = []
            for _ in range(repeats):
                started = time.perf_counter()
                run()
                seconds.append(time.perf_counter() - started)
            rates[name] = 2.0 * size ** 3 / min(seconds) / 1e9
    return rates
