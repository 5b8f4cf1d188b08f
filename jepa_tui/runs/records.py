"""The record schema of a run directory: what ``metrics.jsonl`` and ``events.jsonl`` hold, one JSON object a line.

Every record has a string ``kind`` and an integer ``step`` ≥ 0 (:func:`jepa_tui.runs.jsonl.is_record`). The
training loop writes them through :func:`train_record`, :func:`eval_record` and :func:`event_record`; every reader
(the console, the dashboard, interventions, the run catalogue, the report, the notebook API) selects them through
the readers below, so a field or kind is named in one place.

Compatibility: readers ignore fields and kinds they do not know, and treat a missing optional field as absent, so a
new field stays readable by old readers and old runs by new readers. A run's ``start`` and ``resume`` events carry
``records`` = :data:`RECORDS_VERSION`, the schema they wrote (absent: written before it was recorded, version 1);
a reader that needs a later field checks it there. The published runs in ``docs/reproduction`` are read by the
tests with these readers.
"""

from __future__ import annotations

import math
import time
from typing import Any, Literal, NotRequired, TypedDict

RECORDS_VERSION = 1

METRIC_KINDS = ("train", "eval")
# What events.jsonl holds, and what each says (README, "The run directory").
EVENT_KINDS = {
    "start": "a run began (device, code version, threads, records version)",
    "resume": "a run continued from a checkpoint (notices: what could not be restored exactly, forced differences)",
    "end": "a session ended (status: one of END_STATUSES; reason, error)",
    "checkpoint": "a checkpoint was written (reason: interval, eval, request, end, ...; path)",
    "command": "a command took effect (pause, resume, freezes, switches; source: key, request, profile, replay, ...)",
    "request_rejected": "a request file could not be used (name, reason, where it was moved)",
    "pause_request": "the pause-request flag suspended the run",
    "threads": "the CPU thread count changed (previous, threads, others' cores)",
    "thermal_pause": "the thermal guard paused training (temperature_c, pause_at_c)",
    "thermal_resume": "the thermal guard resumed training (temperature_c)",
    "world_switch": "the training stream moved to another world (world, previous)",
    "compiled": "torch.compile finished its first graph (seconds, mode)",
    "non_finite": "a loss or evaluation was not finite (detected_at_step, terms)",
}
SESSION_KINDS = ("start", "resume")
END_STATUSES = ("done", "stopped", "interrupted", "suspended", "failed", "crashed")  # training/loop.py
EVAL_NUMBERS = ("d_shift", "sigma_z", "d_base")  # the fields every evaluation has as finite numbers


class TrainRecord(TypedDict):
    """Loss terms averaged since the last train record, counters and rates, every ``train.log_every_steps``."""

    kind: Literal["train"]
    step: int
    elapsed: float  # training seconds so far
    loss: float
    loss_pred: float
    loss_var: float
    buffer_size: int
    boundary_events: int
    lr: float
    ema_tau: float
    steps_per_s: float
    world: NotRequired[int]  # [data.stream]: the world of the last step


class EvalRecord(TypedDict):
    """One evaluation (:class:`jepa_tui.evaluation.evaluate.EvalResult`'s fields; per-horizon fields flat)."""

    kind: Literal["eval"]
    step: int
    d_shift: float
    sigma_z: float
    d_base: float
    seconds: float


class Event(TypedDict):
    """One event; further fields depend on the kind (:data:`EVENT_KINDS`)."""

    kind: str
    step: int
    time: float  # Unix seconds


# -- writing ---------------------------------------------------------------------------------------------------
def train_record(step: int, elapsed: float, stats: dict[str, Any], lr: float, ema_tau: float, steps_per_s: float,
                 world: int | None = None) -> dict:
    """A train record: the trainer's drained statistics (loss terms, modulation norms, buffer and detector) between
    the counters and the rates, in the order the records have always had."""
    record = {"kind": "train", "step": step, "elapsed": round(elapsed, 3), **stats, "lr": lr, "ema_tau": ema_tau,
              "steps_per_s": round(steps_per_s, 3)}
    if world is not None:
        record["world"] = world
    return record


def eval_record(result: dict[str, Any]) -> dict:
    """An eval record from an evaluation's fields (``dataclasses.asdict`` of an ``EvalResult``)."""
    return {"kind": "eval", **result}


def event_record(kind: str, step: int, **fields: object) -> dict:
    """An event of ``kind`` at ``step``, stamped with the time; session events also carry the records version."""
    if kind in SESSION_KINDS:
        fields = {**fields, "records": RECORDS_VERSION}
    return {"kind": kind, "step": step, "time": time.time(), **fields}


# -- reading ---------------------------------------------------------------------------------------------------
def of_kind(records: list[dict], *kinds: str) -> list[dict]:
    """The records of these kinds, in order."""
    return [r for r in records if r.get("kind") in kinds]


def is_number(value: object) -> bool:
    """A finite int or float (not a bool): what a numeric field must be for a reader to use it."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def evals(metrics: list[dict], complete: bool = False) -> list[dict]:
    """The eval records; with ``complete``, only those whose :data:`EVAL_NUMBERS` are all finite numbers (a
    planted or damaged record is not one)."""
    found = of_kind(metrics, "eval")
    return [r for r in found if all(is_number(r.get(k)) for k in EVAL_NUMBERS)] if complete else found


def trains(metrics: list[dict]) -> list[dict]:
    """The train records."""
    return of_kind(metrics, "train")


def sessions(events: list[dict]) -> list[dict]:
    """The start and resume events: one per session of the run."""
    return of_kind(events, *SESSION_KINDS)


def last_status(events: list[dict]) -> str | None:
    """How the last session ended (its end event's status, "ended" without one); None when it has not (it runs, or
    was killed) or no session is recorded."""
    for event in reversed(events):
        if event.get("kind") == "end":
            return str(event.get("status", "ended"))
        if event.get("kind") in SESSION_KINDS:
            return None
    return None


def records_version(events: list[dict]) -> int:
    """The record schema of a run's newest session (1 for runs written before it was recorded)."""
    found = [e.get("records") for e in sessions(events)]
    return found[-1] if found and isinstance(found[-1], int) else 1
