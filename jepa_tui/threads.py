"""How many CPU threads a training process uses, and how its OpenMP threads wait.

PyTorch's OpenMP threads spin at the end of every parallel region waiting for their siblings; with hundreds of small
ops per step, a sibling the scheduler has taken off its core (another training process, a shared cluster slot) costs
a time slice at every region. Three measures keep throughput graceful under contention:

- threads = the cores this process may actually use: its CPU affinity (``taskset``, cluster slots) and, on Linux,
  its cgroup's CPU quota (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), not the machine's core count;
- a short spin before a waiting OpenMP thread sleeps (``GOMP_SPINCOUNT``, :data:`SPIN_COUNT`), instead of
  libgomp's default of 300,000 spins;
- while training, a :class:`ThreadGovernor` gives up a thread for each core other processes keep busy and takes it
  back when they stop (``train.threads = 0``, the default; a fixed ``train.threads`` / ``--threads`` or an exported
  ``OMP_NUM_THREADS`` turns it off).

The first two are environment settings OpenMP reads once, when torch starts it: :func:`prepare_environment` must run
before ``import torch`` (the CLI entry point does it); values the user exported are never overridden.

Determinism: the thread count changes the order of floating-point sums in some kernels, so a CPU run is bitwise
reproducible (and resumes bitwise) at a fixed thread count. An adaptive run records every change as a ``threads``
event in ``events.jsonl``; pin ``train.threads`` for bitwise reruns.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path

_CHOSEN = "JEPA_TUI_OMP_THREADS"  # the OMP_NUM_THREADS prepare_environment chose itself (not the user's)
SPIN_COUNT = "10000"  # benchmarks/contention.py: the fastest waiting alone (contention is the governor's job)


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


def affinity_cores() -> set[int]:
    """The cores this process may run on (its affinity mask; every core where the platform has none)."""
    if hasattr(os, "sched_getaffinity"):
        return os.sched_getaffinity(0)
    return set(range(os.cpu_count() or 1))


def usable_cores(root: Path = Path("/sys/fs/cgroup")) -> int:
    """Cores this process may use: its affinity mask, capped by its cgroup quota (rounded down, at least 1)."""
    cores = len(affinity_cores())
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
            env[_CHOSEN] = str(threads)
    env["OMP_NUM_THREADS"] = str(threads)
    if "GOMP_SPINCOUNT" not in env and "OMP_WAIT_POLICY" not in env:
        env["GOMP_SPINCOUNT"] = SPIN_COUNT
    return threads


def adaptive(threads: int = 0, environ: MutableMapping[str, str] | None = None) -> bool:
    """Whether the thread count may follow the load: ``threads`` (``train.threads``, ``--threads``) is 0 and the
    user exported no OMP_NUM_THREADS (:func:`prepare_environment` records its own choice in JEPA_TUI_OMP_THREADS)."""
    env = os.environ if environ is None else environ
    return threads <= 0 and env.get("OMP_NUM_THREADS") in (None, env.get(_CHOSEN))


def apply(threads: int = 0) -> int:
    """:func:`prepare_environment`, and the intra-op thread count of a torch already started; returns the count."""
    import torch

    count = prepare_environment(threads)
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count


def governor_for(threads: int, device_type: str) -> ThreadGovernor | None:
    """The :class:`ThreadGovernor` of a run training on the CPU with an :func:`adaptive` count of two or more
    threads (call after :func:`apply`); None otherwise (a fixed count, one thread, a GPU)."""
    import torch

    if device_type != "cpu" or not adaptive(threads) or torch.get_num_threads() < 2:
        return None
    return ThreadGovernor(torch.get_num_threads())


@dataclass(frozen=True)
class CpuSample:
    """Cumulative CPU seconds at one moment: busy time of the cores this process may run on (all processes), this
    process's own CPU time (all its threads), and the wall clock."""

    busy: float
    own: float
    wall: float


def sample_cpu() -> CpuSample | None:
    """Busy seconds of this process's affinity cores (user + nice + system + irq + softirq; steal and idle excluded)
    and its own user + system seconds, via psutil; None where psutil cannot read them."""
    try:
        import psutil

        per_cpu = psutil.cpu_times(percpu=True)
        cores = affinity_cores()
        busy = sum(t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
                   for i, t in enumerate(per_cpu) if i in cores)
        own = psutil.Process().cpu_times()
        return CpuSample(busy, own.user + own.system, time.monotonic())
    except Exception:  # noqa: BLE001 - no psutil, no /proc, a sandbox: the governor then keeps the count
        return None


class ThreadGovernor:
    """Follows the load: one intra-op thread fewer for each core other processes keep busy, back when they stop.

    Every ``interval_s`` seconds of wall time it measures the cores the other processes used, ``others`` = (busy
    seconds of this process's affinity cores − its own CPU seconds) / wall seconds, and what is left for it, ``free``
    = min(``max_threads``, cores − others). It drops to ⌊free + 0.5⌋ threads (at least 1) and climbs to ⌊free + 0.25⌋
    (at most ``max_threads``): others must use about half a core to cost a thread and leave three quarters of one to
    give it back, so short bursts do not flip it. Measured on 2 cores (README, "Benchmarks"): two adaptive trainers
    settle at one thread each and each keeps 0.72 of the solo speed, where two fixed 2-thread trainers keep 0.29.
    Cores outside a cgroup quota's share (``cores`` > ``max_threads``) absorb other processes first.

    Thread-safe: the training loops of a run group share one governor; OpenMP's thread count belongs to each OS
    thread, so every training thread calls :meth:`poll` and applies the current count to itself.

    Args:
        max_threads: the count to start at and never exceed (:func:`usable_cores`).
        cores: the cores the load is measured over (the affinity mask; default its size).
        interval_s: seconds between measurements.
        sampler, set_threads, get_threads: injectable for tests (default :func:`sample_cpu` and torch's).
    """

    def __init__(self, max_threads: int, cores: int | None = None, interval_s: float = 2.0,
                 sampler: Callable[[], CpuSample | None] = sample_cpu,
                 set_threads: Callable[[int], None] | None = None,
                 get_threads: Callable[[], int] | None = None) -> None:
        import torch

        self.max_threads = max(1, max_threads)
        self.cores = cores if cores is not None else len(affinity_cores())
        self.interval_s = interval_s
        self.threads = self.max_threads
        self.others = 0.0  # cores other processes used in the last interval
        self._sampler = sampler
        self._set = set_threads or torch.set_num_threads
        self._get = get_threads or torch.get_num_threads
        self._lock = threading.Lock()
        self._last = sampler()  # None: the load cannot be read here, and the count stays at max_threads

    def _measure(self) -> None:
        last, now = self._last, self._sampler()
        if last is None or now is None:  # the load can no longer be read: keep the count from here on
            self._last = None
            return
        wall = now.wall - last.wall
        if wall < self.interval_s:
            return
        self.others = max(0.0, (now.busy - last.busy - (now.own - last.own)) / wall)
        self._last = now
        free = min(float(self.max_threads), self.cores - self.others)
        if math.floor(free + 0.5) < self.threads:
            self.threads = max(1, math.floor(free + 0.5))
        elif math.floor(free + 0.25) > self.threads:
            self.threads = min(self.max_threads, math.floor(free + 0.25))

    def due(self) -> bool:
        """Whether a measurement is due (cheap: one clock read)."""
        return self._last is not None and time.monotonic() - self._last.wall >= self.interval_s

    def current(self) -> int:
        """The calling thread's intra-op thread count."""
        return self._get()

    def restore(self, count: int) -> None:
        """Set the calling thread's count back to ``count`` (a run loop does, when it ends)."""
        if self._get() != count:
            self._set(count)

    def poll(self) -> tuple[int, int] | None:
        """Measure when due and apply the count to the calling thread; (old, new) when its count changed, else None.
        Call between training steps, from the thread that runs them."""
        with self._lock:
            if self.due():
                self._measure()
            target = self.threads
        current = self._get()
        if current == target:
            return None
        self._set(target)
        return current, target
