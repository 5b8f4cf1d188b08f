"""How many CPU threads a training process uses, and how its OpenMP threads wait.

PyTorch's OpenMP threads spin at the end of every parallel region waiting for their siblings; with hundreds of small
ops per step, a sibling the scheduler has taken off its core (another training process, a shared cluster slot) costs
a time slice at every region. Two measures keep throughput graceful under contention:

- threads = the cores this process may actually use: its CPU affinity (``taskset``, cluster slots) and, on Linux,
  its cgroup's CPU quota (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), not the machine's core count;
- a short spin before a waiting OpenMP thread sleeps (``GOMP_SPINCOUNT``, :data:`SPIN_COUNT`), instead of
  libgomp's default of 300,000 spins.

Both are environment settings OpenMP reads once, when torch starts it: :func:`prepare_environment` must run before
``import torch`` (the CLI entry point does it); values the user exported are never overridden.
"""

from __future__ import annotations

import math
import os
from collections.abc import MutableMapping
from pathlib import Path

SPIN_COUNT = "10000"  # benchmarks/contention.py: fastest alone; two processes on two cores still get 0.25 each


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The CPU quota of this process's cgroup in cores (e.g. 1.5), or None when unlimited or unknown."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]  # cgroup v2: "max 100000" or "150000 100000"
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())  # cgroup v1
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def usable_cores(root: Path = Path("/sys/fs/cgroup")) -> int:
    """Cores this process may use: its affinity mask, capped by its cgroup quota (rounded down, at least 1)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        cores = min(cores, max(1, math.floor(limit)))
    return max(1, cores)


def prepare_environment(threads: int = 0, environ: MutableMapping[str, str] | None = None) -> int:
    """Set OpenMP's thread count and wait policy for this process before torch starts; returns the thread count.

    ``threads`` > 0 is used as given (``--threads``, ``train.threads``); 0 means OMP_NUM_THREADS when the user
    exported it, else :func:`usable_cores`. GOMP_SPINCOUNT is set to :data:`SPIN_COUNT` unless exported (or an
    OMP_WAIT_POLICY is).
    """
    env = os.environ if environ is None else environ
    if threads <= 0:
        try:
            threads = int(env["OMP_NUM_THREADS"])
        except (KeyError, ValueError):
            threads = usable_cores()
    env["OMP_NUM_THREADS"] = str(threads)
    if "GOMP_SPINCOUNT" not in env and "OMP_WAIT_POLICY" not in env:
        env["GOMP_SPINCOUNT"] = SPIN_COUNT
    return threads


def apply(threads: int = 0) -> int:
    """:func:`prepare_environment`, and the intra-op thread count of a torch already started; returns the count."""
    import torch

    count = prepare_environment(threads)
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count
