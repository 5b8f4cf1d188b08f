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
    cores: int | None = None
    whose: str = "training process"  # the process the process figures are of


class PsutilSensor:
    """Samples the training process and the machine; ``unavailable`` says why when psutil cannot be used.

    ``pid`` is the training process (`watch`: the run's writer on this host); None samples this process, which is
    the training process under `run` and only the dashboard's own under `watch` (``whose`` says which).
    """

    def __init__(self, pid: int | None = None, whose: str = "training process") -> None:
        self.unavailable: str | None = None
        self.whose = whose
        try:
            import psutil

            self._psutil = psutil
            self._process = psutil.Process(os.getpid() if pid is None else pid)
            self._process.cpu_percent(None)  # the first call only sets the baseline
            psutil.cpu_times_percent(None)
        except Exception as exc:  # ImportError, AccessDenied, ...
            self.unavailable = f"no CPU readings ({type(exc).__name__})"

    def sample(self) -> SystemSample | None:
        if self.unavailable:
            return None
        psutil = self._psutil
        times = psutil.cpu_times_percent(None)
        memory = psutil.virtual_memory()
        if not self._process.is_running():  # the watched run ended: go on with this process's figures
            self._process, self.whose = psutil.Process(os.getpid()), "dashboard process"
            self._process.cpu_percent(None)
        with self._process.oneshot():
            return SystemSample(
                whose=self.whose,
                process_cpu_pct=self._process.cpu_percent(None),
                machine_cpu_pct=100.0 - times.idle - getattr(times, "iowait", 0.0),
                steal_pct=getattr(times, "steal", None),
                rss_mib=self._process.memory_info().rss / 2**20,
                ram_used_mib=(memory.total - memory.available) / 2**20,
                ram_total_mib=memory.total / 2**20,
                threads=self._process.num_threads(),
                cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            )
