"""Headless, SSH-friendly progress output: one plain line every few seconds, evaluations, a final summary."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from typing import TextIO

from jepa_tui.config import MEMORY_TRACKS, SIGMA_Z_COLLAPSE_LINE, Config
from jepa_tui.formatting import format_duration, format_value
from jepa_tui.runs.describe import describe_event

# Events the headless log prints as they happen (besides kept checkpoints and commands from requests, the profile
# or a replay); the dashboard's event log lists every one.
PRINTED_EVENTS = frozenset({"thermal_pause", "thermal_resume", "pause_request", "threads", "world_switch", "compiled",
                            "request_rejected", "non_finite"})


class PrefixedStream:
    """A text stream that writes each line to ``stream`` behind ``prefix`` (runs of a group share one terminal)."""

    def __init__(self, prefix: str, stream: TextIO | None = None) -> None:
        self.prefix = prefix
        self.stream = stream or sys.stdout
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        if lines:
            self.stream.write("".join(f"{self.prefix}{line}\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def _collapse_mark(sigma: float | None) -> str:
    """A warning after a σ_z value below the collapse line (spec §5.2), else nothing."""
    return f" (below {SIGMA_Z_COLLAPSE_LINE}: collapse?)" if sigma is not None and sigma < SIGMA_Z_COLLAPSE_LINE \
        else ""


def _instruments(record: dict) -> str:
    """The eval line's memory instruments: memory gain, content effect, pixel error (those recorded)."""
    parts = [f"{name} {record[key]:{fmt}}" for name, key, fmt in (
        ("memory gain", "memory_gain", "+.4f"), ("content effect", "content_effect", "+.4f"),
        ("pos RMSE", "pos_rmse_px", ".2f")) if isinstance(record.get(key), int | float)]
    return ("  " + "  ".join(parts) + (" px" if "pos_rmse_px" in record else "")) if parts else ""


class ConsolePrinter:
    """A :class:`~jepa_tui.training.loop.Sink` that prints plain lines (no colour, no cursor movement).

    Args:
        config: the run's configuration (budget, buffer capacity, print interval).
        stream: where lines go (stdout by default).
        clock: monotonic seconds, injectable for tests.
        last_eval: the last evaluation already in the run directory (a resumed run), shown until the next one.
    """

    def __init__(self, config: Config, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic, last_eval: dict | None = None) -> None:
        self.config = config
        self.stream = stream or sys.stdout
        self.clock = clock
        self._last_print = -float("inf")
        self._last_events = (0, 0)  # (step, cumulative boundary events) at the last printed line
        self._last_eval: dict | None = last_eval  # a resumed run's last evaluation before this session

    def _print(self, text: str) -> None:
        # After an SSH drop the terminal is gone; the run must still reach its checkpoint.
        with contextlib.suppress(OSError, ValueError):
            print(text, file=self.stream, flush=True)

    def _eta(self, record: dict) -> str:
        t = self.config.train
        if t.steps is not None:
            rate = record["steps_per_s"]
            return format_duration((t.steps - record["step"]) / rate) if rate > 0 else "-"
        return format_duration(float(t.seconds or 0) - record["elapsed"])

    def on_train(self, record: dict) -> None:
        now = self.clock()
        if now - self._last_print < self.config.train.print_every_seconds:
            return
        self._last_print = now
        t = self.config.train
        step = record["step"]
        budget = f"{step}/{t.steps}" if t.steps is not None else f"{step} ({record['elapsed']:.0f}/{t.seconds:.0f}s)"
        last_step, last_events = self._last_events
        span = step - last_step
        rate = 100.0 * (record["boundary_events"] - last_events) / span if span > 0 else 0.0
        self._last_events = (step, record["boundary_events"])
        d_shift = "-" if self._last_eval is None else f"{self._last_eval['d_shift']:.4f}@{self._last_eval['step']}"
        terms = [f"{name} {record[key]:.4f}" for name, key in (("pred", "loss_pred"), ("var", "loss_var"))
                 if isinstance(record.get(key), int | float)]
        loss = f"loss {record['loss']:.4f}" + (f" ({' '.join(terms)})" if terms else "")
        parts = [f"step {budget}", loss, f"D_shift {d_shift}"]
        if self.config.train.track in MEMORY_TRACKS:
            parts += [f"buffer {record['buffer_size']}/{self.config.memory.capacity}", f"events/100 {rate:.1f}"]
        parts += [f"{record['steps_per_s']:.1f} steps/s", f"ETA {self._eta(record)}"]
        self._print("  ".join(parts))

    def on_eval(self, record: dict) -> None:
        self._last_eval = record
        val = record.get("d_shift_val")
        self._print(f"eval  step {record['step']}  D_shift {record['d_shift']:.4f}  sigma_z {record['sigma_z']:.4f}"
                    f"{_collapse_mark(record['sigma_z'])}  d_base {record['d_base']:.4f}"
                    + (f"  D_shift(val) {val:.4f}" if val is not None else "") + _instruments(record)
                    + f"  ({record['seconds']:.1f} s)")

    def on_event(self, record: dict) -> None:
        kind = record["kind"]
        if kind in PRINTED_EVENTS or (kind == "checkpoint" and record.get("reason") not in ("eval", "end")) or \
                (kind == "command" and record.get("source") in ("request", "profile", "replay")):
            self._print(describe_event(record))

    def on_summary(self, summary: dict) -> None:
        self._print(
            f"{summary['status']}: track {summary['track']} seed {summary['seed']}, {summary['steps']} steps in "
            f"{format_duration(summary['train_seconds'])} ({summary['steps_per_s']:.1f} steps/s on "
            f"{summary['device']})\n"
            f"peak D_shift {format_value(summary['peak_d_shift'])} at step {summary['peak_step']}, sigma_z "
            f"{format_value(summary['sigma_z_at_peak'])}{_collapse_mark(summary['sigma_z_at_peak'])}; final "
            f"D_shift {format_value(summary['final_d_shift'])}, sigma_z {format_value(summary['final_sigma_z'])}"
            f"{_collapse_mark(summary['final_sigma_z'])}")
