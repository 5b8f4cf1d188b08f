"""The run loop: budget, evaluation schedule, checkpoints, records and the summary (spec §5.3, §8, §11).

It drives a :class:`~jepa_tui.training.trainer.Trainer` and reports through :class:`Sink` objects (the headless
console printer, the dashboard's record buffer), writing everything to the
:class:`~jepa_tui.runs.RunDirectory`. A run ends with a status:

- ``done``: the budget is used up (a final evaluation and checkpoint);
- ``stopped``: a ``stop`` command (the dashboard quitting); ``interrupted``: a signal (SIGINT, SIGTERM, SIGHUP);
- ``suspended``: a ``pause_request.flag`` file appeared in the run directory (paper App. D), to be resumed;
- ``failed``: the loss or the parameters stopped being finite (the last good checkpoint is kept).

Every status but ``failed`` saves a checkpoint first, at a step boundary, so ``--resume`` continues exactly.
"""

from __future__ import annotations

import contextlib
import math
import queue
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Protocol

import torch

from jepa_tui.config import SIGMA_Z_COLLAPSE_LINE
from jepa_tui.provenance import code_version
from jepa_tui.runs import RunDirectory, RunDirError
from jepa_tui.runs.files import sha256_file
from jepa_tui.runs.records import EVAL_NUMBERS, eval_record, evals, event_record, of_kind, train_record
from jepa_tui.runs.reproducibility import reproducibility
from jepa_tui.threads import ThreadGovernor
from jepa_tui.training.control import PAUSE_REQUEST_FLAG, POLL_EVERY_STEPS, Command, take_pause_flag, take_requests
from jepa_tui.training.thermal import ThermalGuard
from jepa_tui.training.trainer import Trainer

PAUSED_POLL_SECONDS = 0.25
SUSPEND = "pause_request"


class Sink(Protocol):
    """Receives what the run loop reports. Records are the dicts written to ``metrics.jsonl``."""

    def on_train(self, record: dict) -> None: ...

    def on_eval(self, record: dict) -> None: ...

    def on_event(self, record: dict) -> None: ...

    def on_summary(self, summary: dict) -> None: ...


class NonFiniteLossError(RuntimeError):
    """The training loss, an evaluation or the parameters became NaN or infinite.

    Attributes:
        step: the step at which it was detected (losses are checked every ``train.log_every_steps`` steps).
        terms: the offending values by name.
    """

    def __init__(self, step: int, terms: dict[str, float]) -> None:
        listed = ", ".join(f"{k} {v}" for k, v in terms.items())
        super().__init__(f"non-finite values at step {step}: {listed}")
        self.step = step
        self.terms = terms


def _with_source(item: Command | tuple[Command, str]) -> tuple[Command, str]:
    return item if isinstance(item, tuple) else (item, "ui")


def summary_flags(sigma_z_at_peak: float | None, peak_d_shift: float | None) -> list[str]:
    """Warnings for ``summary.json``: σ_z below the collapse line at the peak; D_shift never below persistence."""
    flags = []
    if sigma_z_at_peak is not None and sigma_z_at_peak < SIGMA_Z_COLLAPSE_LINE:
        flags.append(f"sigma_z at the peak below {SIGMA_Z_COLLAPSE_LINE} (collapse line)")
    if peak_d_shift is not None and peak_d_shift >= 1.0:
        flags.append("D_shift never below 1.0 (no better than persistence)")
    return flags


CRASHED = "crashed"  # a stop reason "crashed: <error>": the program driving the run (the dashboard) died


def status_for(reason: str | None) -> str:
    """The run status for a stop reason: None (budget used up), "stop", "pause_request", a signal name, or
    "crashed: <error>" (the dashboard died; the run was checkpointed and stopped)."""
    if reason is None:
        return "done"
    if reason.startswith(CRASHED):
        return CRASHED
    if reason == SUSPEND:
        return "suspended"
    return "interrupted" if reason.startswith("SIG") else "stopped"


class RunLoop:
    """Runs a trainer to the end of its budget.

    Commands arrive through ``commands`` (from a UI, applied between steps), through request files in the run
    directory (polled every 50 steps, or 4 times a second while paused) and from the profile's scheduled freezes
    (``train.freeze_buffer_at`` / ``freeze_ema_at``). Each applied command is written to ``events.jsonl``.

    Args:
        trainer: the trainer to drive.
        run_dir: where records, checkpoints and the summary go.
        sinks: observers of train/eval records, events and the summary.
        should_stop: polled after every step (and while paused or cooling); a reason ("SIGINT", "stop", ...)
            ends the run early with a checkpoint, None goes on.
        commands: a queue of :class:`~jepa_tui.training.control.Command`, or (command, source) pairs, from a UI
            (thread-safe; source "ui" when not given, "switch" when the dashboard changes track).
        thermal: the thermal guard, when training on a GPU that NVML can read.
        notices: what preparing the run (a resume) had to say; written with the start event.
        replay: (step, command) pairs to apply again at their steps: the freezes a killed run had applied after
            the checkpoint it resumes from, so an interactive ablation survives the kill.
        threads: the process's :class:`~jepa_tui.threads.ThreadGovernor` when the CPU thread count follows the
            load (``train.threads = 0``); polled between steps, each change written as a ``threads`` event.

    A trainer restored from a checkpoint of ``run_dir`` continues that run: the checkpoints already there count
    towards the last two kept, and the last evaluation is read back from ``metrics.jsonl``.
    """

    def __init__(self, trainer: Trainer, run_dir: RunDirectory, sinks: Sequence[Sink] = (),
                 should_stop: Callable[[], str | None] | None = None,
                 commands: queue.Queue[Command | tuple[Command, str]] | None = None,
                 thermal: ThermalGuard | None = None, notices: Sequence[str] = (),
                 replay: Sequence[tuple[int, Command]] = (), threads: ThreadGovernor | None = None) -> None:
        self.trainer = trainer
        self.threads = threads
        self.run_dir = run_dir.lock()  # the one writer of this directory (DirectoryBusy when another holds it)
        self.sinks = list(sinks)
        self.should_stop = should_stop or (lambda: None)
        self.commands: queue.Queue[Command | tuple[Command, str]] = commands if commands is not None else queue.Queue()
        self.thermal = thermal
        self.notices = list(notices)
        self.replay = sorted(replay, key=lambda item: item[0])
        self.paused = False
        self._compile_reported = False
        self.stop_reason: str | None = None  # from a command or the pause_request flag
        self.saved_steps: list[int] = list(run_dir.checkpoint_paths())
        # Checkpoints a person asked for (s, a save request) are kept for good, across resumes too.
        self.requested_steps: set[int] = {e["step"] for e in of_kind(run_dir.read_records("events"), "checkpoint")
                                          if e.get("reason") == "request"}
        complete = evals(run_dir.read_records("metrics"), complete=True)  # a planted or damaged record is not one
        self.last_eval: dict | None = complete[-1] if complete else None
        self._last_log = (trainer.progress.step, trainer.progress.seconds)
        self.started_at = time.time()  # requests written before it were sent to a run that was not running
        stream = trainer.worlds.stream  # [data.stream]: the world of the last step taken, to mark each switch
        self._world = stream.world_at(trainer.progress.step - 1) if stream and trainer.progress.step > 0 else None

    # -- reporting -------------------------------------------------------------------------------------------
    def _event(self, kind: str, **fields: object) -> None:
        record = event_record(kind, self.trainer.progress.step, **fields)
        self.run_dir.append_event(record)
        for sink in self.sinks:
            sink.on_event(record)

    def _log_train(self) -> None:
        t = self.trainer
        step, seconds = t.progress.step, t.progress.seconds
        last_step, last_seconds = self._last_log
        rate = (step - last_step) / (seconds - last_seconds) if seconds > last_seconds else 0.0
        self._last_log = (step, seconds)
        stats = t.drain_stats()
        if not math.isfinite(stats["loss"]):
            raise NonFiniteLossError(step, {k: stats[k] for k in ("loss", "loss_pred", "loss_var")})
        record = train_record(step, seconds, stats, t.current_lr(), t.current_tau(), rate, self._world)
        self.run_dir.append_metric(record)
        for sink in self.sinks:
            sink.on_train(record)

    def _evaluate(self) -> None:
        result = self.trainer.evaluate()
        record = eval_record(asdict(result))
        values = {k: record[k] for k in EVAL_NUMBERS}
        if not all(math.isfinite(v) for v in values.values()):
            raise NonFiniteLossError(result.step, values)
        self.last_eval = record
        self.run_dir.append_metric(record)
        if self.trainer.config.eval.keep_weights:
            self.run_dir.save_weights(self.weights_state(), result.step)
        for sink in self.sinks:
            sink.on_eval(record)

    def weights_state(self) -> dict:
        """The model as it is (weights, buffer, detector; no optimiser), for ``weights/``: what ``jepa-tui
        evaluate`` loads to re-evaluate this step."""
        t = self.trainer
        return {"version": code_version(), "config": t.config.to_dict(), "step": t.progress.step,
                "model": {k: v.detach().cpu() for k, v in t.model.state_dict().items()}}

    def checkpoint(self, reason: str) -> None:
        """Save a checkpoint now, keeping the last two, the one at the best D_shift and every one a person asked
        for (``reason`` "request": the dashboard's s, a save request from watch).

        Raises:
            NonFiniteLossError: when a parameter is not finite (nothing is written: the last good one stays).
            RunDirError: when it cannot be written.
        """
        step = self.trainer.progress.step
        bad = self.trainer.non_finite_parameters()
        if bad:
            raise NonFiniteLossError(step, {f"parameter {name}": math.nan for name in bad[:3]})
        state = {"version": code_version(), "config": self.trainer.config.to_dict(),
                 "device": self.trainer.device.type, "trainer": self.trainer.state_dict()}
        if reason == "request":
            self.requested_steps.add(step)
        keep = set(self.saved_steps[-1:]) | self.requested_steps
        if self.trainer.progress.peak_step is not None:
            keep.add(self.trainer.progress.peak_step)
        path = self.run_dir.save_checkpoint(state, step, keep)
        self.saved_steps = [s for s in self.saved_steps if s in keep and s != step] + [step]
        self._event("checkpoint", reason=reason, path=path.relative_to(self.run_dir.path).as_posix(),
                    sha256=sha256_file(path), **({"kept": True} if reason == "request" else {}))

    # -- commands --------------------------------------------------------------------------------------------
    def apply(self, command: Command, source: str) -> None:
        """Apply one command now and record it in ``events.jsonl`` with the resulting state."""
        t = self.trainer
        if command in (Command.PAUSE, Command.RESUME):
            self.paused = command is Command.PAUSE
        elif command in (Command.FREEZE_BUFFER, Command.UNFREEZE_BUFFER):
            t.buffer_frozen = command is Command.FREEZE_BUFFER
        elif command in (Command.FREEZE_EMA, Command.UNFREEZE_EMA):
            t.ema_frozen = command is Command.FREEZE_EMA
        elif command is Command.STOP:
            self.stop_reason = "stop"
        self._event("command", command=command.value, source=source, paused=self.paused,
                    buffer_frozen=t.buffer_frozen, ema_frozen=t.ema_frozen)
        if command is Command.SAVE:
            self.checkpoint("request")

    def _take_commands(self, poll_files: bool) -> None:
        while True:
            try:
                item = self.commands.get_nowait()
            except queue.Empty:
                break
            self.apply(*_with_source(item))
        if poll_files:
            commands, rejected = take_requests(self.run_dir.path, since=self.started_at)
            for command in commands:
                self.apply(command, "request")
            suspend, bad_flag = take_pause_flag(self.run_dir.path)
            for item in [*rejected, *([bad_flag] if bad_flag else [])]:
                self._event("request_rejected", name=item.name, reason=item.reason, moved_to=item.moved_to)
            if suspend:
                self.stop_reason = SUSPEND
                self._event("pause_request", flag=PAUSE_REQUEST_FLAG)

    def _reason_to_stop(self) -> str | None:
        return self.stop_reason or self.should_stop()

    def _scheduled_freezes(self) -> None:
        t = self.trainer
        while self.replay and self.replay[0][0] <= t.progress.step:
            _, command = self.replay.pop(0)
            self.apply(command, "replay")
        cfg = t.config.train
        if cfg.freeze_buffer_at == t.progress.step and not t.buffer_frozen:
            self.apply(Command.FREEZE_BUFFER, "profile")
        if cfg.freeze_ema_at == t.progress.step and not t.ema_frozen:
            self.apply(Command.FREEZE_EMA, "profile")

    def _follow_load(self) -> None:
        if self.threads is not None and (change := self.threads.poll()) is not None:
            self._event("threads", previous=change[0], threads=change[1], others_cores=round(self.threads.others, 2),
                        cores=self.threads.cores)

    def _wait_while_paused(self) -> None:
        """Block between steps while paused; neither schedules nor the budget advance."""
        while self.paused and not self._reason_to_stop():
            try:
                item = self.commands.get(timeout=PAUSED_POLL_SECONDS)
            except queue.Empty:
                self._take_commands(poll_files=True)
                continue
            self.apply(*_with_source(item))

    def _cool_down(self, temperature: float) -> None:
        """Too hot: checkpoint, then wait (taking commands) until the GPU is below ``thermal.resume_at_c``."""
        assert self.thermal is not None
        self._event("thermal_pause", temperature_c=temperature, pause_at_c=self.thermal.pause_at_c,
                    resume_at_c=self.thermal.resume_at_c)
        self.checkpoint("thermal")

        def keep_waiting() -> bool:
            self._take_commands(poll_files=True)
            return self._reason_to_stop() is None

        cool = self.thermal.wait_until_cool(keep_waiting)
        if cool is not None:
            self._event("thermal_resume", temperature_c=cool)

    # -- the loop --------------------------------------------------------------------------------------------
    def _train(self) -> str | None:
        """Step until the budget is used up or a reason to stop appears; returns that reason (None: budget)."""
        t = self.trainer
        cfg = t.config
        while not t.budget_done():
            self._scheduled_freezes()
            self._take_commands(poll_files=t.progress.step % POLL_EVERY_STEPS == 0)
            self._wait_while_paused()
            if self.thermal is not None and (hot := self.thermal.too_hot()) is not None:
                self._cool_down(hot)
            reason = self._reason_to_stop()
            if reason is not None:
                return reason
            self._follow_load()
            world = t.stream_world()
            t.train_step()
            # a switch is an event when worlds last segments; a new world every batch (segment_steps = 0) is not
            # news, and the train records carry the world anyway
            if world is not None and world != self._world and (self._world is None or
                                                                 t.worlds.stream.segment_steps > 0):
                self._event("world_switch", world=world, previous=self._world,
                            physics=t.worlds.stream.describe(world), first_step=t.progress.step - 1)
                self._world = world
            if t.compile_seconds is not None and not self._compile_reported:
                self._compile_reported = True
                self._event("compiled", seconds=round(t.compile_seconds, 2), mode=cfg.train.compile)
            step = t.progress.step
            if step % cfg.train.log_every_steps == 0:
                self._log_train()
            if step % cfg.eval.every_steps == 0:
                self._evaluate()
                self.checkpoint("eval")
        return None

    def run(self) -> dict:
        """Train to the end of the budget (or until stopped), evaluating and checkpointing on schedule.

        Returns:
            the summary written to ``summary.json`` (``status`` and ``stop_reason`` say how the run ended).

        Raises:
            RunDirError: when the run directory cannot be written (disk full, permissions); a summary and an end
                event are still attempted, so readers do not wait for a run that has stopped.
            Exception: an unexpected error; a checkpoint ("crash", when the parameters are finite), the summary
                (status "failed") and an end event are written first, then it propagates.
        """
        t = self.trainer
        wall_start = time.time()
        first = t.progress.step == 0 and not self.run_dir.read_records("events")
        cpu = {"cpu_threads": torch.get_num_threads(), "follows_load": self.threads is not None} \
            if t.device.type == "cpu" else {}
        self._event("start" if first else "resume", device=str(t.device), version=code_version(), **cpu,
                    deterministic=t.config.train.deterministic, **({"notices": self.notices} if self.notices else {}))
        threads_at_start = self.threads.current() if self.threads is not None else None
        try:
            return self._run(wall_start)
        except RunDirError as exc:
            self._finish_after_failure(wall_start, "io_error", str(exc), checkpoint=False)
            raise
        except Exception as exc:
            self._finish_after_failure(wall_start, "crash", f"{type(exc).__name__}: {exc}", checkpoint=True)
            raise
        finally:
            self.run_dir.close()
            if self.threads is not None and threads_at_start is not None:
                self.threads.restore(threads_at_start)  # the thread may train again (the dashboard's next run)

    def _finish_after_failure(self, wall_start: float, reason: str, error: str, checkpoint: bool) -> None:
        """Best effort after an error: a checkpoint, the summary and the end event, each skipped if it fails."""
        if checkpoint:
            with contextlib.suppress(Exception):
                self.checkpoint(reason)
        summary = {**self.summary("failed", time.time() - wall_start), "stop_reason": reason, "error": error}
        with contextlib.suppress(Exception):
            self.run_dir.write_summary(summary)
        with contextlib.suppress(Exception):
            self._event("end", status="failed", reason=reason, error=error[:500])
        for sink in self.sinks:
            with contextlib.suppress(Exception):
                sink.on_summary(summary)

    def _run(self, wall_start: float) -> dict:
        t = self.trainer
        error = None
        try:
            reason = self._train()
            if reason is not None and reason.startswith(CRASHED):
                reason, error = CRASHED, reason.partition(": ")[2] or "unknown error"
            if reason is None:
                if self.last_eval is None or self.last_eval["step"] != t.progress.step:
                    self._evaluate()
                if not self.saved_steps or self.saved_steps[-1] != t.progress.step:
                    self.checkpoint("end")
            else:
                self.checkpoint(reason)
            status = status_for(reason)
        except NonFiniteLossError as exc:
            status, reason, error = "failed", "non_finite", str(exc)
            self._event("non_finite", detected_at_step=exc.step, terms={k: str(v) for k, v in exc.terms.items()},
                        last_checkpoint_step=self.saved_steps[-1] if self.saved_steps else None)
        summary = self.summary(status, time.time() - wall_start)
        summary["stop_reason"] = reason
        summary["reproducible"], why = reproducibility(self.run_dir.read_records("events"))
        if why:
            summary["reproducible_why"] = why
        if error is not None:
            summary["error"] = error
        self.run_dir.write_summary(summary)
        self._event("end", status=status, reason=reason, **({"error": error[:500]} if error is not None else {}))
        for sink in self.sinks:
            sink.on_summary(summary)
        return summary

    def summary(self, status: str, wall_seconds: float) -> dict:
        """The run's summary (``summary.json``)."""
        t = self.trainer
        p = t.progress
        last = self.last_eval or {}
        return {
            "run_id": self.run_dir.run_id,
            "status": status,
            "track": t.config.train.track,
            "seed": t.config.train.seed,
            "steps": p.step,
            "train_seconds": round(p.seconds, 3),
            "wall_seconds": round(wall_seconds, 3),
            "steps_per_s": round(p.step / p.seconds, 3) if p.seconds > 0 else 0.0,
            "peak_step": p.peak_step,
            "peak_d_shift": p.peak_d_shift,
            "sigma_z_at_peak": p.sigma_z_at_peak,
            "final_step": last.get("step"),
            "final_d_shift": last.get("d_shift"),
            "final_sigma_z": last.get("sigma_z"),
            "final_d_base": last.get("d_base"),
            "boundary_events": int(t.boundary_events),
            "flags": summary_flags(p.sigma_z_at_peak, p.peak_d_shift),
            "device": str(t.device),
            "version": code_version(),
        }
