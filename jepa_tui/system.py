"""CPU and memory readings (psutil) for the dashboard on a machine without an NVIDIA GPU: what limits training there
is the CPU the training process gets (its own use, the machine's, the share the hypervisor steals) and memory."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass
class SystemSample:
    """One reading. CPU in % (process: of one core; machine and steal: of all cores), memory in MiB."""

    process_cpu_pct: float | None = None
    machine_cpu_pct: float | None = None
    steal_pct: float | None = None
    rss_mib: float | None = None
    ram_used_mib: float | None = None
    ram_total_mib: float | None = None
    threads: int | None = None
    torch_threads: int | None = None
    cores: int | None = None


class PsutilSensor:
    """Samples this process and the machine; ``unavailable`` says why when psutil cannot be used."""

    def __init__(self) -> None:
        self.unavailable: str | None = None
        try:
            import psutil

            self._psutil = psutil
            self._process = psutil.Process(os.getpid())
            self._process.cpu_percent(None)  # the first call only sets the baseline
            psutil.cpu_times_percent(None)
        except Exception as exc:  # ImportError, AccessDenied, ...
            self.unavailable = f"no CPU readings ({type(exc).__name__})"

    def sample(self) -> SystemSample | None:
        if self.unavailable:
            return None
        psutil = self._psutil
        try:
            import torch

            torch_threads = torch.get_num_threads()
        except ImportError:
            torch_threads = None
        times = psutil.cpu_times_percent(None)
        memory = psutil.virtual_memory()
        with self._process.oneshot():
            return SystemSample(
                process_cpu_pct=self._process.cpu_percent(None),
                machine_cpu_pct=100.0 - times.idle - getattr(times, "iowait", 0.0),
                steal_pct=getattr(times, "steal", None),
                rss_mib=self._process.memory_info().rss / 2**20,
                ram_used_mib=(memory.total - memory.available) / 2**20,
                ram_total_mib=memory.total / 2**20,
                threads=self._process.num_threads(),
                torch_threads=torch_threads,
                cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            )
