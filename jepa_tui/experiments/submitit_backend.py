"""The submitit backend: each run of a sweep is one job on SLURM (or on submitit's local executor), submitted by
submitit; no sbatch script of ours. Needs ``pip install 'jepa-tui[slurm]'``.

A job runs :func:`~jepa_tui.experiments.backends.run_task` on its node. Before a time limit or a preemption SLURM
signals the job (submitit asks for SIGUSR2); submitit then calls :meth:`TrainCall.checkpoint`, which stops the run
the way Ctrl-C does (it writes a checkpoint), and requeues the job, which resumes the run from that checkpoint.
A job killed outright (out of memory, a node lost) ends as failed; ``jepa-tui sweep --resume`` continues it from its
last checkpoint. submitit's own logs go to ``logs/submitit/<job id>_*``; the run's output to ``logs/<name>.log``.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import submitit

from jepa_tui.experiments.backends import RunTask, run_task
from jepa_tui.experiments.cluster import SlurmSettings
from jepa_tui.runs.files import writer_alive

STOP_WAIT_S = 300.0  # how long a preempted job waits for its run's checkpoint before it is requeued anyway
FINISHING_WAIT_S = 120.0  # how long the sweep waits for a run whose job ended to release its directory


@dataclass
class TrainCall:
    """The callable a job executes: the run, then its exit code. ``checkpoint`` is submitit's hook on preemption
    and time-outs."""

    task: RunTask
    _process: subprocess.Popen | None = field(default=None, repr=False)

    def __call__(self) -> int:
        return run_task(self.task, on_start=self._remember)

    def _remember(self, process: subprocess.Popen) -> None:
        self._process = process

    def checkpoint(self) -> submitit.helpers.DelayedSubmission:
        """Stop the run with a checkpoint (SIGTERM, as `jepa-tui train` handles it) and resubmit this call, which
        then resumes the run."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_WAIT_S)
        return submitit.helpers.DelayedSubmission(TrainCall(self.task))

    def __getstate__(self) -> dict:
        return {"task": self.task, "_process": None}  # a process handle does not travel


@dataclass
class SubmititJob:
    """One run's job; its exit code is the job's result."""

    job: submitit.Job
    task: RunTask
    error: str | None = None
    _ended_at: float | None = None

    @property
    def job_id(self) -> str:
        return str(self.job.job_id)

    def poll(self) -> int | None:
        if not self.job.done():
            return None
        # A cancelled job's run may still be writing its checkpoint: wait for it to let go of its directory.
        self._ended_at = self._ended_at or time.monotonic()
        if writer_alive(self.task.run_dir) and time.monotonic() - self._ended_at < FINISHING_WAIT_S:
            return None
        try:
            return int(self.job.result())
        except Exception as exc:  # submitit reports a lost, cancelled or crashed job by raising its error
            lines = [line for line in str(exc).splitlines() if line.strip()]
            self.error = f"submitit job {self.job_id} {self.job.state.lower()}: {lines[-1] if lines else exc}"[:300]
            return -1

    def send_signal(self, signum: int) -> None:
        """Cancel the job: SLURM sends SIGTERM to the run, which checkpoints and stops."""
        if not self.job.done():
            with contextlib.suppress(Exception):
                self.job.cancel(check=False)


class SubmititBackend:
    """Submits each run as a job with the resources of :class:`SlurmSettings`; ``slots`` = jobs queued at once."""

    name = "submitit"

    def __init__(self, settings: SlurmSettings, folder: Path, runs: int) -> None:
        cluster = None if settings.cluster == "auto" else settings.cluster
        self.executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
        parameters: dict = {"timeout_min": settings.time_min, "cpus_per_task": settings.cpus_per_run,
                            "gpus_per_node": settings.gpus_per_run, "tasks_per_node": 1, "nodes": 1,
                            "name": "jepa-tui", "stderr_to_stdout": True}
        if settings.mem_gb is not None:
            parameters["mem_gb"] = settings.mem_gb
        if settings.partition is not None:
            parameters["slurm_partition"] = settings.partition
        if settings.setup:
            parameters["slurm_setup"] = list(settings.setup)
        if settings.additional:
            parameters["slurm_additional_parameters"] = dict(settings.additional)
        self.executor.update_parameters(**parameters)
        self.slots = settings.array_parallelism or max(1, runs)
        self.jobs: dict[str, SubmititJob] = {}

    def start(self, task: RunTask) -> SubmititJob:
        job = SubmititJob(self.executor.submit(TrainCall(task)), task)
        self.jobs[task.name] = job
        return job

    def close(self) -> None:
        pass
