"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from jepa_tui.training.trainer import Trainer


def steps_per_s_line(output: str) -> float | None:
    """The last ``steps_per_s <value>`` a benchmark script printed (``throughput.py``, the reference loop)."""
    found = re.findall(r"steps_per_s\s+([0-9.]+)", output)
    return float(found[-1]) if found else None


def cpu_model() -> str:
    """The CPU's model name with its family and model numbers (Linux ``/proc/cpuinfo``), else what :mod:`platform`
    says. A virtual machine may name only the vendor ("AMD EPYC"): the family tells the generation (AMD 25: Zen 3
    and 4, 26: Zen 5)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if not key.strip():
                    break  # the first processor's block ends
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    if "model name" in fields:
        return f"{fields['model name']} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')})"
    import platform

    return platform.processor() or platform.machine()


SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")  # what the CPU kernels can use


def machine() -> str:
    """One line naming the machine a figure was measured on: CPU model, the instruction-set flags that matter for
    PyTorch's CPU kernels, usable cores, the thread count PyTorch would use (OMP_NUM_THREADS when set), how its
    OpenMP threads wait (``GOMP_SPINCOUNT``, ``OMP_WAIT_POLICY``; see ``openmp.py``) and the PyTorch version."""
    import os

    import torch

    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line.split(":", 1)[1].split() for line in fh if line.startswith("flags")), [])
    except OSError:
        flags = []
    have = [f for f in SPEED_FLAGS if f in flags] or ["flags n/a"]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = os.environ.get("OMP_NUM_THREADS") or str(torch.get_num_threads())
    return (f"machine: {cpu_model()} ({' '.join(have)}), {cores} usable cores, {threads} threads, "
            f"{openmp_settings()}, PyTorch {torch.__version__}")


def openmp_settings(env: Mapping[str, str] | None = None) -> str:
    """How OpenMP threads wait under ``env`` (this process's environment, as set before torch started:
    ``openmp.py``): e.g. ``GOMP_SPINCOUNT=10000``, or ``libgomp's default waiting``."""
    import os

    env = os.environ if env is None else env
    return " ".join(f"{name}={env[name]}" for name in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")
                    if name in env) or "libgomp's default waiting"


def fill_buffer(trainer: Trainer) -> None:
    """Fill the experience buffer to capacity, the steady state of a run after about 4,000 steps.

    The entries are standard-normal latents: the cost of encoding and attending to them does not depend on their
    values, and a fresh trainer would otherwise be timed with an empty buffer, which is not what a run spends its
    time with.
    """
    memory = trainer.model.memory
    if memory is None:
        return
    generator = torch.Generator(device=trainer.device).manual_seed(0)
    latent_dim = memory.buffer.entries.shape[-1]
    for _ in range(memory.buffer.capacity):
        memory.buffer.push(torch.randn(2, latent_dim, device=trainer.device, generator=generator))


class StealMeter:
    """Share of the machine's CPU time stolen by the hypervisor since construction (Linux ``/proc/stat``).

    On a shared virtual machine other guests can take most of the CPU for minutes; timings taken then are not
    comparable with timings taken when they do not, so benchmarks print this beside their figures.
    """

    def __init__(self) -> None:
        self._start = self._read()

    @staticmethod
    def _read() -> list[int] | None:
        try:
            with open("/proc/stat") as fh:
                fields = fh.readline().split()
        except OSError:
            return None
        return [int(v) for v in fields[1:9]] if fields and fields[0] == "cpu" and len(fields) > 8 else None

    def share(self) -> float | None:
        """Stolen fraction of all CPU time (0 to 1) since construction; None off Linux."""
        end = self._read()
        if self._start is None or end is None:
            return None
        deltas = [b - a for a, b in zip(self._start, end, strict=True)]
        total = sum(deltas)
        return deltas[7] / total if total > 0 else 0.0
