"""Where the runs of a sweep execute. A backend starts one :class:`RunTask` (a ``jepa-tui train`` command line) per
run and reports when it has ended; the sweep logic (:mod:`jepa_tui.experiments.sweep`) is written once above every
backend.

- :class:`LocalBackend`: subprocesses of this machine (the default; nothing extra to install).
- ``submitit`` (:mod:`jepa_tui.experiments.submitit_backend`, ``pip install 'jepa-tui[slurm]'``): one SLURM job per
  run, or jobs of submitit's local executor.
- ``ray`` (:mod:`jepa_tui.experiments.ray_backend`, ``pip install 'jepa-tui[ray]'``): one Ray task per run.

:func:`jepa_tui.experiments.engines.make_backend` picks one by name. Cluster backends call :func:`run_task` on the
machine that runs the job; every backend writes the same run
directories and ``logs/<name>.log`` files, on a filesystem the sweep and every worker see.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from jepa_tui.threads import adaptive, usable_cores

POLL_S = 0.2  # how often a job checks whether its run has ended


@dataclass(frozen=True)
class RunTask:
    """One run of a sweep as a backend executes it. The arguments of ``jepa-tui train`` for a new run and for a
    resume; :meth:`command` picks one where and when the run starts (a requeued job resumes), with that machine's
    Python interpreter."""

    name: str
    run_dir: Path
    log: Path
    new_args: tuple[str, ...]
    resume_args: tuple[str, ...]

    @property
    def resuming(self) -> bool:
        return (self.run_dir / "config.toml").is_file()

    def command(self, python: str | None = None) -> list[str]:
        args = self.resume_args if self.resuming else self.new_args
        return [python or sys.executable, "-m", "jepa_tui.cli.main", "train", *args]


class Job(Protocol):
    """One started run. ``poll()`` answers the run's exit code once it has ended (None before); ``error`` says why
    when the engine, not the run, failed (the job was lost, cancelled or could not start); ``send_signal()``
    passes SIGINT / SIGTERM on (the run checkpoints and stops)."""

    job_id: str
    error: str | None

    def poll(self) -> int | None: ...

    def send_signal(self, signum: int) -> None: ...


class Backend(Protocol):
    """Starts runs. ``slots`` is how many runs the sweep keeps going at once; ``close()`` releases the engine."""

    name: str
    slots: int

    def start(self, task: RunTask) -> Job: ...

    def close(self) -> None: ...


@contextlib.contextmanager
def _children_ignore(signum: int) -> Iterator[None]:
    """Processes started inside ignore ``signum`` (an ignored signal stays ignored across exec). Main thread
    only; elsewhere it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signum, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signum, previous)


def run_task(task: RunTask, on_start: Callable[[subprocess.Popen], None] | None = None,
             env: dict[str, str] | None = None) -> int:
    """Run ``task`` here and wait for it, its output appended to ``task.log``: what a cluster job or a Ray task
    executes. SIGUSR2 (SLURM's warning before a time limit or preemption, which submitit turns into a checkpoint
    and a requeue) is kept from the run, so only the job's own handler acts on it. An interrupt (Ray's cancel,
    Ctrl-C) is passed on as SIGINT and waited for: the run checkpoints first.

    Returns:
        the ``jepa-tui train`` exit code; negative when a signal killed it.
    """
    with task.log.open("ab") as log, _children_ignore(signal.SIGUSR2):
        process = subprocess.Popen(task.command(), stdout=log, stderr=subprocess.STDOUT, env=env)
    if on_start is not None:
        on_start(process)
    try:
        # poll, not wait(): a signal handler of the job (submitit's checkpoint hook) must be able to wait for the
        # run itself, and Popen.wait() holds a lock that a handler running inside it could never take
        while process.poll() is None:
            time.sleep(POLL_S)
        return process.returncode
    except KeyboardInterrupt:
        process.send_signal(signal.SIGINT)
        return process.wait()


@dataclass
class LocalJob:
    """A run in a subprocess of this machine, its output appended to its log file."""

    process: subprocess.Popen
    log: IO[bytes]
    error: str | None = None

    @property
    def job_id(self) -> str:
        return str(self.process.pid)

    def poll(self) -> int | None:
        code = self.process.poll()
        if code is not None:
            self.log.close()
        return code

    def send_signal(self, signum: int) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)


class LocalBackend:
    """Runs ``jobs`` runs at once as subprocesses of this machine.

    With ``jobs`` > 1 each process gets a fixed ``cores // jobs`` threads (``OMP_NUM_THREADS``; cores as
    :func:`~jepa_tui.threads.usable_cores` counts them), unless the user exported a count; results then match a
    ``jobs = 1`` sweep only up to floating-point summation order. With ``jobs = 1`` the run's threads follow the load.
    """

    name = "local"

    def __init__(self, jobs: int = 1, environ: dict[str, str] | None = None) -> None:
        self.slots = jobs
        self.env = dict(os.environ if environ is None else environ)
        if jobs > 1 and adaptive(0, self.env):  # not a count the user exported
            self.env["OMP_NUM_THREADS"] = str(max(1, usable_cores() // jobs))

    def start(self, task: RunTask) -> LocalJob:
        """Start ``task`` with its output appended to its log, in a session of its own: a Ctrl-C at the terminal
        reaches only the sweep, which passes it on once (a second SIGINT would stop a run at once)."""
        fh = task.log.open("ab")
        return LocalJob(subprocess.Popen(task.command(), stdout=fh, stderr=subprocess.STDOUT, env=self.env,
                                         start_new_session=True), fh)

    def close(self) -> None:
        pass
