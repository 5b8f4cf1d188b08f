"""The Ray backend: each run of a sweep is one Ray task with ``num_cpus`` / ``num_gpus`` resources (fractions let
small runs share a GPU), on a running Ray cluster (``address``) or on a Ray instance started on this machine. Needs
``pip install 'jepa-tui[ray]'`` on the machine that runs the sweep and on every worker (the same environment).

A task runs :func:`~jepa_tui.experiments.backends.run_task` on its worker. A worker that dies ends the run's task
with Ray's error, reported per run; ``jepa-tui sweep --resume`` continues the run from its last checkpoint.
Cancelling a task (the sweep got Ctrl-C) interrupts it, and the run checkpoints and stops.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import ray

from jepa_tui.experiments.backends import RunTask, run_task
from jepa_tui.experiments.cluster import RaySettings
from jepa_tui.runs import RunDirectory

CANCELLED = 130  # the exit code of a run stopped by an interrupt
NICENESS = "RAY_worker_niceness"  # read by the raylet when it starts


def train_task(task: RunTask, threads: int) -> int:
    """The body of a run's Ray task: the run, then its exit code. ``threads`` OpenMP threads (the task's CPUs)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    return run_task(task, env=env)


@contextlib.contextmanager
def _worker_niceness(address: str | None) -> Iterator[None]:
    """While a Ray instance is started here (``address`` None): its workers at normal priority. Ray starts them at
    nice 15 by default, so that a training run would yield the CPU to anything else on the machine; a cluster
    someone else started keeps its own setting, as does an explicit ``RAY_worker_niceness``."""
    if address is not None or NICENESS in os.environ:
        yield
        return
    os.environ[NICENESS] = "0"
    try:
        yield
    finally:
        os.environ.pop(NICENESS, None)


@dataclass
class RayJob:
    """One run's task; its exit code is the task's return value."""

    ref: ray.ObjectRef
    task: RunTask
    error: str | None = None
    cancelled: bool = False

    @property
    def job_id(self) -> str:
        return self.ref.task_id().hex()

    def poll(self) -> int | None:
        ready, _ = ray.wait([self.ref], timeout=0)
        if not ready:
            return None
        try:
            return int(ray.get(self.ref))
        except ray.exceptions.TaskCancelledError:
            # the run received SIGINT and checkpointed; its summary says how it ended
            summary = RunDirectory(self.task.run_dir).read_summary() or {}
            if summary.get("status") in ("interrupted", "stopped"):
                return CANCELLED
            self.error = "Ray task cancelled"
            return -1
        except ray.exceptions.RayError as exc:
            lines = [line for line in str(exc).splitlines() if line.strip()]
            self.error = f"Ray task {self.job_id[:12]} failed: {lines[0] if lines else type(exc).__name__}"[:300]
            return -1

    def send_signal(self, signum: int) -> None:
        """Interrupt the task: the run gets SIGINT, checkpoints and stops."""
        if not self.cancelled:
            self.cancelled = True
            ray.cancel(self.ref)


class RayBackend:
    """Submits each run as a Ray task; ``slots`` = tasks in flight at once (Ray queues them by resources)."""

    name = "ray"

    def __init__(self, settings: RaySettings, runs: int) -> None:
        self.started_ray = not ray.is_initialized()
        if self.started_ray:
            with _worker_niceness(settings.address):
                ray.init(address=settings.address, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
        threads = max(1, math.floor(settings.num_cpus)) if settings.num_cpus >= 1 else 1
        self.remote = ray.remote(train_task).options(num_cpus=settings.num_cpus, num_gpus=settings.num_gpus,
                                                     max_retries=0)
        self.threads = threads
        self.slots = settings.max_concurrent or max(1, runs)

    def start(self, task: RunTask) -> RayJob:
        return RayJob(self.remote.remote(task, self.threads), task)

    def close(self) -> None:
        """Shut down the Ray instance this backend started (one it joined is left running)."""
        if self.started_ray and ray.is_initialized():
            ray.shutdown()
