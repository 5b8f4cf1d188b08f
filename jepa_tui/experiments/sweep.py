"""Running a sweep: one run directory per (variant, track, seed) under ``runs/<sweep_id>/``, each run one
``jepa-tui train`` process started by a :class:`~jepa_tui.experiments.backends.Backend` (local processes, SLURM jobs
through submitit, or Ray tasks).

A run that already finished is skipped and one that stopped is resumed with ``--resume``, so running a sweep again
continues it, with any backend. A run whose directory another live process still writes (a job of an earlier
session still running on a cluster) is left to it. A failed run does not stop the others; :func:`run_sweep` reports
every outcome at the end. ``manifest.json`` lists the runs and which backend and job ran each; ``logs/<name>.log``
holds each run's output.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jepa_tui.exits import EXITS_WITH_SUMMARY, SignalHandling
from jepa_tui.experiments.backends import Backend, Job, LocalBackend, RunTask
from jepa_tui.experiments.spec import SweepRun, SweepSpec, record_job, save_spec
from jepa_tui.runs import RunDirectory, last_step
from jepa_tui.runs.files import WriterLock, describe_holder, writer_alive

# Exit codes of `jepa-tui train` after which summary.json is this session's (done, non-finite, suspended, signals);
# after any other (bad input, I/O error, a crash) it may be a stale one from an earlier session.




@dataclass
class SweepResult:
    """The outcome of every run that ended, in sweep order, and the signal that stopped the sweep (None: it ran
    to the end)."""

    outcomes: list[RunOutcome]
    stopped_by: str | None = None


class SignalForwarder(SignalHandling):
    """While a sweep runs: SIGINT, SIGTERM and SIGHUP go on to every running job (once each), and the sweep
    starts nothing more. Installed only in the main thread."""

    def __init__(self, running: dict[str, tuple[SweepRun, Job]]) -> None:
        self.running = running
        self.received: str | None = None

    def handle(self, signum: int, frame: object) -> None:
        if self.received is None:
            self.received = signal.Signals(signum).name
        for _, job in list(self.running.values()):
            job.send_signal(signum)


@dataclass
class RunOutcome:
    """How one run of a sweep ended: ``status`` from its summary, or "failed" with the exit code."""

    run: SweepRun
    status: str
    exit_code: int | None
    peak_d_shift: float | None = None


def train_task(spec: SweepSpec, run: SweepRun, sweep_dir: Path) -> RunTask:
    """The ``jepa-tui train`` arguments of ``run``, for a new run and for ``--resume`` once its directory exists
    (absolute paths: a cluster worker may start elsewhere)."""
    return group_task(spec, [run], sweep_dir)


def group_task(spec: SweepSpec, runs: list[SweepRun], sweep_dir: Path) -> RunTask:
    """The task of new runs that differ only in seed: one ``jepa-tui train --seeds`` (a run group) named
    ``<variant>_<track>`` after its members' directories ``<variant>_<track>_s<seed>``; for one run, its own
    ``train --seed`` (:func:`train_task`)."""
    sweep_dir = Path(sweep_dir).absolute()
    first = runs[0]
    name = group_prefix(first) if len(runs) > 1 else first.name
    seeds = [a for r in runs for a in ("--seeds", str(r.seed))] if len(runs) > 1 else ["--seed", str(first.seed)]
    sets = [a for item in first.overrides for a in ("--set", item)]
    new = ("--profile", spec.base, *seeds, "--set", f'train.track="{first.track}"', *sets, "--runs-dir",
           str(sweep_dir), "--run-id", name)
    return RunTask(name, sweep_dir / first.name, sweep_dir / "logs" / f"{name}.log", new,
                   ("--resume", str(sweep_dir / first.name)))


def group_prefix(run: SweepRun) -> str:
    """``<variant>_<track>`` of a run named ``<variant>_<track>_s<seed>``."""
    return run.name.removesuffix(f"_s{run.seed}")


def groups_of(runs: list[SweepRun], sweep_dir: Path, group: bool) -> list[list[SweepRun]]:
    """The units a sweep starts: with ``group``, the new runs of one variant and track together (two or more), every
    other run alone (a run with a directory resumes on its own)."""
    if not group:
        return [[run] for run in runs]
    units: dict[tuple[str, str], list[SweepRun]] = {}
    alone = []
    for run in runs:
        if (sweep_dir / run.name).exists():
            alone.append([run])
        else:
            units.setdefault((run.variant, run.track), []).append(run)
    grouped = [unit for unit in units.values() if len(unit) > 1]
    singles = [[run] for unit in units.values() if len(unit) == 1 for run in unit]
    return grouped + singles + alone


def train_command(spec: SweepSpec, run: SweepRun, sweep_dir: Path) -> list[str]:
    """The ``jepa-tui train`` command line of ``run`` now: a new run, or ``--resume`` once its directory exists."""
    return train_task(spec, run, sweep_dir).command(sys.executable)


def _summary(run_dir: Path) -> dict | None:
    return RunDirectory(run_dir).read_summary()


def run_sweep(spec: SweepSpec, sweep_dir: Path, jobs: int = 1, say: Callable[[str], None] = print,
              progress_every: float = 30.0, backend: Backend | None = None, group: bool = False) -> SweepResult:
    """Run every run of ``spec`` not yet done, ``backend.slots`` at a time; one outcome per run that ended.

    With ``group``, the new runs of each variant and track (the seeds) start as one run group, one process that
    trains them as one vectorised step (``jepa-tui train --seeds``) and takes one slot.

    ``backend`` defaults to :class:`~jepa_tui.experiments.backends.LocalBackend` with ``jobs`` runs at once. A
    SIGINT, SIGTERM or SIGHUP is passed on to the running runs, which checkpoint and stop; the sweep waits for
    them and returns with ``stopped_by`` set, so ``sweep --resume`` continues without a second writer.

    Raises:
        DirectoryBusy: another sweep is running in ``sweep_dir``.
    """
    backend = backend or LocalBackend(jobs)
    lock = WriterLock(sweep_dir)
    save_spec(sweep_dir, spec)
    lock.acquire("sweep directory")
    try:
        (sweep_dir / "logs").mkdir(exist_ok=True)
        return _run(spec, sweep_dir, backend, say, progress_every, group)
    finally:
        backend.close()
        lock.release()


def _run(spec: SweepSpec, sweep_dir: Path, backend: Backend, say: Callable[[str], None],
         progress_every: float, group: bool = False) -> SweepResult:
    runs = spec.runs()
    pending = []
    outcomes: dict[str, RunOutcome] = {}
    for run in runs:
        summary = _summary(sweep_dir / run.name)
        if summary is not None and summary.get("status") == "done":
            outcomes[run.name] = RunOutcome(run, "done", 0, summary.get("peak_d_shift"))
            say(f"{run.name}: done already (peak D_shift {summary.get('peak_d_shift')})")
        elif writer_alive(sweep_dir / run.name):
            holder = describe_holder(sweep_dir / run.name / "writer.lock")
            outcomes[run.name] = RunOutcome(run, "running elsewhere", None)
            say(f"{run.name}: still written by {holder} (a job of an earlier session?); not started again. "
                "Resume the sweep once it has ended.")
        else:
            pending.append(run)
    units = groups_of(pending, sweep_dir, group)
    running: dict[str, tuple[SweepRun, Job]] = {}
    last_progress = time.monotonic()
    with SignalForwarder(running) as signals:
        while running or (units and signals.received is None):
            while units and len({id(j) for _, j in running.values()}) < backend.slots and signals.received is None:
                unit = units.pop(0)
                task = group_task(spec, unit, sweep_dir)
                job = backend.start(task)
                names = ", ".join(run.name for run in unit)
                kind = f"run group of {len(unit)}, " if len(unit) > 1 else ""
                say(f"{names}: {'resuming' if task.resuming else 'starting'} "
                    f"({len(outcomes) + len(running) + 1}/{len(runs)}) as {kind}{backend.name} job {job.job_id}, "
                    f"log {sweep_dir.name}/logs/{task.log.name}")
                for run in unit:
                    record_job(sweep_dir, run.name, backend.name, job.job_id)
                    running[run.name] = (run, job)
            time.sleep(0.2)
            for name, (run, job) in list(running.items()):
                code = job.poll()
                if code is None:
                    continue
                del running[name]
                summary = _summary(sweep_dir / name) or {}
                status = summary.get("status", "failed") if code in EXITS_WITH_SUMMARY else "failed"
                detail = f" ({job.error})" if job.error else ("" if code == 0 else f" (exit {code})")
                outcomes[name] = RunOutcome(run, status + detail, code, summary.get("peak_d_shift"))
                say(f"{name}: {outcomes[name].status}, peak D_shift {summary.get('peak_d_shift')}")
            if running and time.monotonic() - last_progress >= progress_every:
                last_progress = time.monotonic()
                say("sweep: " + ", ".join(f"{n} at step {last_step(sweep_dir / n)}" for n in running)
                    + f"; {len(outcomes)}/{len(runs)} finished")
    return SweepResult([outcomes[r.name] for r in runs if r.name in outcomes], signals.received)
