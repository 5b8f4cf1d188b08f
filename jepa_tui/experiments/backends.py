"""Where the runs of a sweep execute. A backend starts one ``jepa-tui train`` command line per run and reports
when it has exited; the sweep logic (:mod:`jepa_tui.experiments.sweep`) is written once above every backend.

:class:`LocalBackend` runs each as a subprocess of this machine. A cluster engine plugs in beside it by
implementing :class:`Backend` (start a command with its log file, poll it, wait for it).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol


class Job(Protocol):
    """One started run: ``poll()`` answers its exit code once it has exited (None before); ``wait()`` blocks;
    ``send_signal()`` passes a signal on (SIGINT, SIGTERM: the run checkpoints and stops)."""

    job_id: str

    def poll(self) -> int | None: ...

    def wait(self) -> int: ...

    def send_signal(self, signum: int) -> None: ...


class Backend(Protocol):
    """Starts runs. ``slots`` is how many runs the sweep keeps going at once."""

    name: str
    slots: int

    def start(self, command: list[str], log: Path) -> Job: ...


@dataclass
class LocalJob:
    """A run in a subprocess of this machine, its output appended to its log file."""

    process: subprocess.Popen
    log: IO[bytes]

    @property
    def job_id(self) -> str:
        return str(self.process.pid)

    def poll(self) -> int | None:
        code = self.process.poll()
        if code is not None:
            self.log.close()
        return code

    def wait(self) -> int:
        code = self.process.wait()
        self.log.close()
        return code

    def send_signal(self, signum: int) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)


class LocalBackend:
    """Runs ``jobs`` runs at once as subprocesses of this machine.

    With ``jobs`` > 1 each process gets ``cores // jobs`` threads (``OMP_NUM_THREADS``, unless the environment sets
    it already); results then match a ``jobs = 1`` sweep only up to floating-point summation order.
    """

    name = "local"

    def __init__(self, jobs: int = 1) -> None:
        self.slots = jobs
        self.env = dict(os.environ)
        if jobs > 1 and "OMP_NUM_THREADS" not in self.env:
            self.env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))

    def start(self, command: list[str], log: Path) -> LocalJob:
        """Start ``command`` with its output appended to ``log``, in a session of its own: a Ctrl-C at the
        terminal reaches only the sweep, which passes it on once (a second SIGINT would stop a run at once)."""
        fh = log.open("ab")
        return LocalJob(subprocess.Popen(command, stdout=fh, stderr=subprocess.STDOUT, env=self.env,
                                         start_new_session=True), fh)
