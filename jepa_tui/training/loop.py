"""The run loop: budget, evaluation schedule, checkpoints, records and the summary (spec §5.3, §8, §11).

It drives a :class:`~jepa_tui.training.trainer.Trainer` and reports through :class:`Sink` objects (the headless
console printer now; a UI later), writing everything to the :class:`~jepa_tui.training.run_dir.RunDirectory`.
"""

from __future__ import annotations

import math
import queue
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Protocol

from jepa_tui import __version__
from jepa_tui.training.control import POLL_EVERY_STEPS, Command, take_requests
from jepa_tui.training.run_dir import RunDirectory
from jepa_tui.training.trainer import Trainer

PAUSED_POLL_SECONDS = 0.25


class Sink(Protocol):
    """Receives what the run loop reports. Records are the dicts written to ``metrics.jsonl``."""

    def on_train(self, record: dict) -> None: ...

    def on_eval(self, record: dict) -> None: ...

    def on_event(self, record: dict) -> None: ...

    def on_summary(self, summary: dict) -> None: ...


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class RunLoop:
    """Runs a trainer to the end of its budget.

    Commands arrive through ``commands`` (from a UI, applied between steps), through request files in the run
    directory (polled every 50 steps, or 4 times a second while paused) and from the profile's scheduled freezes
    (``train.freeze_buffer_at`` / ``freeze_ema_at``). Each applied command is written to ``events.jsonl``.

    Args:
        trainer: the trainer to drive.
        run_dir: where records, checkpoints and the summary go.
        sinks: observers of train/eval records, events and the summary.
        should_stop: polled after every step; True ends the run early with a checkpoint.
        commands: a queue of :class:`~jepa_tui.training.control.Command` (thread-safe; may be shared with a UI).
    """

    def __init__(self, trainer: Trainer, run_dir: RunDirectory, sinks: Sequence[Sink] = (),
                 should_stop: Callable[[], bool] | None = None,
                 commands: queue.Queue[Command] | None = None) -> None:
        self.trainer = trainer
        self.run_dir = run_dir
        self.sinks = list(sinks)
        self.should_stop = should_stop or (lambda: False)
        self.commands: queue.Queue[Command] = commands if commands is not None else queue.Queue()
        self.paused = False
        self.stop_requested = False
        self.saved_steps: list[int] = []
        self.last_eval: dict | None = None
        self._last_log = (trainer.progress.step, trainer.progress.seconds)

    # -- reporting -------------------------------------------------------------------------------------------
    def _event(self, kind: str, **fields: object) -> None:
        record = {"kind": kind, "step": self.trainer.progress.step, "time": time.time(), **fields}
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
            raise NonFiniteLossError(f"non-finite loss at step {step}: loss_pred {stats['loss_pred']}, "
                                     f"loss_var {stats['loss_var']}")
        record = {"kind": "train", "step": step, "elapsed": round(seconds, 3), **stats,
                  "lr": t.current_lr(), "ema_tau": t.current_tau(), "steps_per_s": round(rate, 3)}
        self.run_dir.append_metric(record)
        for sink in self.sinks:
            sink.on_train(record)

    def _evaluate(self) -> None:
        result = self.trainer.evaluate()
        record = {"kind": "eval", **asdict(result)}
        self.last_eval = record
        self.run_dir.append_metric(record)
        for sink in self.sinks:
            sink.on_eval(record)

    def checkpoint(self, reason: str) -> None:
        """Save a checkpoint now, keeping the last two and the one at the best D_shift."""
        step = self.trainer.progress.step
        state = {"version": __version__, "config": self.trainer.config.to_dict(),
                 "trainer": self.trainer.state_dict()}
        keep = set(self.saved_steps[-1:])
        if self.trainer.progress.peak_step is not None:
            keep.add(self.trainer.progress.peak_step)
        path = self.run_dir.save_checkpoint(state, step, keep)
        self.saved_steps = [s for s in self.saved_steps if s in keep] + [step]
        self._event("checkpoint", reason=reason, path=str(path.relative_to(self.run_dir.path)))

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
            self.stop_requested = True
        self._event("command", command=command.value, source=source, paused=self.paused,
                    buffer_frozen=t.buffer_frozen, ema_frozen=t.ema_frozen)
        if command is Command.SAVE:
            self.checkpoint("request")

    def _take_commands(self, poll_files: bool) -> None:
        while True:
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                break
            self.apply(command, "ui")
        if poll_files:
            for command in take_requests(self.run_dir.path):
                self.apply(command, "request")

    def _scheduled_freezes(self) -> None:
        t = self.trainer
        cfg = t.config.train
        if cfg.freeze_buffer_at == t.progress.step and not t.buffer_frozen:
            self.apply(Command.FREEZE_BUFFER, "profile")
        if cfg.freeze_ema_at == t.progress.step and not t.ema_frozen:
            self.apply(Command.FREEZE_EMA, "profile")

    def _wait_while_paused(self) -> None:
        """Block between steps while paused; neither schedules nor the budget advance."""
        while self.paused and not self.stop_requested and not self.should_stop():
            try:
                command = self.commands.get(timeout=PAUSED_POLL_SECONDS)
            except queue.Empty:
                self._take_commands(poll_files=True)
                continue
            self.apply(command, "ui")

    # -- the loop --------------------------------------------------------------------------------------------
    def run(self) -> dict:
        """Train to the end of the budget (or until stopped), evaluating and checkpointing on schedule.

        Returns:
            the summary written to ``summary.json``; its ``status`` is "done", "stopped" or "interrupted".

        Raises:
            NonFiniteLossError: when the loss stops being finite (the last good checkpoint is kept).
        """
        t = self.trainer
        cfg = t.config
        wall_start = time.time()
        self._event("start", device=str(t.device), version=__version__)
        status = "done"
        try:
            while not t.budget_done():
                self._scheduled_freezes()
                self._take_commands(poll_files=t.progress.step % POLL_EVERY_STEPS == 0)
                self._wait_while_paused()
                if self.stop_requested or self.should_stop():
                    status = "stopped"
                    break
                t.train_step()
                step = t.progress.step
                if step % cfg.train.log_every_steps == 0:
                    self._log_train()
                if step % cfg.eval.every_steps == 0:
                    self._evaluate()
                    self.checkpoint("eval")
            if status == "done" and (self.last_eval is None or self.last_eval["step"] != t.progress.step):
                self._evaluate()
                self.checkpoint("end")
            elif status == "stopped":
                self.checkpoint("stop")
        except KeyboardInterrupt:
            status = "interrupted"
            self.checkpoint("interrupt")
        summary = self.summary(status, time.time() - wall_start)
        self.run_dir.write_summary(summary)
        self._event("end", status=status)
        for sink in self.sinks:
            sink.on_summary(summary)
        self.run_dir.close()
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
            "device": str(t.device),
            "version": __version__,
        }
