"""What the dashboard shows about one run, rebuilt from its records (the dicts of ``metrics.jsonl`` and
``events.jsonl``), so a live run and a run directory being tailed are drawn the same way."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from jepa_tui.config import Config
from jepa_tui.config.tracks import MEMORY_TRACKS, MODULATION_STATS
from jepa_tui.runs.describe import describe_event
from jepa_tui.runs.directory import RunDirectory

EVENT_WINDOW_STEPS = 100
EVENT_LOG_LINES = 500  # the event log (v) keeps this many newest lines
RATE_WINDOW_S = 60.0  # seconds of training: the speed and ETA shown are averages over this trailing window


def trailing(history: deque, x: float, y: float, width: float) -> tuple[float, float]:
    """Add the point (x, y) to ``history``, a trailing window at least ``width`` wide in x (cleared when x goes back:
    a resumed run's records), and return (Δx, Δy) from the oldest point it keeps to this one."""
    if history and x < history[-1][0]:
        history.clear()
    history.append((x, y))
    while len(history) > 2 and history[1][0] <= x - width:
        history.popleft()
    return x - history[0][0], y - history[0][1]


@dataclass
class Series:
    """A growing (x, y) series; x in steps."""

    xs: list[float] = field(default_factory=list)
    ys: list[float] = field(default_factory=list)

    def add(self, x: float, y: float | None) -> None:
        if y is not None:
            self.xs.append(x)
            self.ys.append(y)

    def __len__(self) -> int:
        return len(self.xs)


@dataclass
class RunState:
    """A run as the panels see it. Feed records with :meth:`ingest`.

    Attributes:
        status: "starting", "training", "paused", "cooling", "done", "stopped", "interrupted", "suspended" or
            "failed".
        budget_steps / budget_seconds: the run's budget (one of them is None).
    """

    track: str
    run_id: str = ""
    capacity: int = 0
    kappa: float | None = None
    budget_steps: int | None = None
    budget_seconds: float | None = None
    status: str = "starting"
    step: int = 0
    elapsed: float = 0.0
    steps_per_s: float = 0.0
    lr: float = 0.0
    ema_tau: float = 0.0
    buffer_size: int = 0
    boundary_events: int = 0
    surprisal_mu: float | None = None
    surprisal_sigma: float | None = None
    buffer_frozen: bool = False
    ema_frozen: bool = False
    has_ema: bool = True  # False for model.target = "stopgrad": there is no EMA target to freeze
    shift: str = ""  # what the shift world changes, e.g. "gravity 0.5 px/frame² down"
    world: str = ""  # [data.stream]: the training world now, e.g. "world 3: gravity 0.71 px/frame² at 35°"
    cpu_threads: int | None = None  # the training thread's CPU threads (start/resume and threads events)
    follows_load: bool = False  # a thread governor sets them (train.threads = 0)
    others_cores: float | None = None  # cores other processes used when it last changed them
    peak_step: int | None = None
    peak_d_shift: float | None = None
    loss: Series = field(default_factory=Series)
    loss_pred: Series = field(default_factory=Series)
    loss_var: Series = field(default_factory=Series)
    d_shift: Series = field(default_factory=Series)
    d_base: Series = field(default_factory=Series)
    sigma_z: Series = field(default_factory=Series)
    buffer: Series = field(default_factory=Series)
    event_rate: Series = field(default_factory=Series)
    modulation_1: Series = field(default_factory=Series)
    modulation_2: Series = field(default_factory=Series)
    effective_rank: float | None = None
    events: list[dict] = field(default_factory=list)
    notices: list[tuple[str, str]] = field(default_factory=list)  # (severity, text) for toasts, taken by the app
    quiet: bool = False  # while history is read back: no toasts for what happened before
    version: int = 0  # bumped on every ingest; panels redraw when it changes
    skipped_records: int = 0  # records that could not be read (a damaged or planted line), skipped
    _event_history: deque = field(default_factory=deque, repr=False)
    _rate_history: deque = field(default_factory=deque, repr=False)  # (elapsed s, step)
    log: deque = field(default_factory=lambda: deque(maxlen=EVENT_LOG_LINES), repr=False)  # (step, sentence)

    @classmethod
    def from_config(cls, config: Config, run_id: str = "") -> RunState:
        """A state for a run with the resolved configuration ``config``."""
        train = config.train
        return cls(track=train.track, run_id=run_id, capacity=config.memory.capacity,
                   kappa=config.kappa if train.track in MEMORY_TRACKS else None,
                   budget_steps=train.steps, budget_seconds=train.seconds, has_ema=config.model.target == "ema",
                   shift=config.shift_description)

    @property
    def last_d_shift(self) -> float | None:
        return self.d_shift.ys[-1] if self.d_shift else None

    @property
    def fraction_done(self) -> float:
        if self.budget_steps:
            return min(1.0, self.step / self.budget_steps)
        if self.budget_seconds:
            return min(1.0, self.elapsed / self.budget_seconds)
        return 0.0

    @property
    def eta_seconds(self) -> float | None:
        if self.budget_steps:
            return (self.budget_steps - self.step) / self.steps_per_s if self.steps_per_s > 0 else None
        if self.budget_seconds:
            return max(0.0, self.budget_seconds - self.elapsed)
        return None

    def read_history(self, directory: RunDirectory) -> None:
        """Take in a run directory's records so far (``metrics.jsonl``, then ``events.jsonl``) as history: no toasts.

        Raises:
            RunDirError: when a record file cannot be read.
        """
        self.quiet = True
        try:
            for name in ("metrics", "events"):
                for record in directory.read_records(name):
                    self.ingest(record)
        finally:
            self.quiet = False

    def ingest(self, record: dict) -> None:
        """Update from one record of any kind."""
        kind = record.get("kind")
        handler = getattr(self, f"_ingest_{kind}", None)
        if handler is not None:
            try:
                handler(record)
            except (KeyError, TypeError, ValueError, AttributeError):  # a planted or damaged record: skipped
                self.skipped_records += 1
                return
            self.version += 1
        if kind != "train":
            line = describe_event(record)
            if line is not None:
                self.log.append((record.get("step"), line))

    def _ingest_train(self, r: dict) -> None:
        step = r["step"]
        # events per 100 steps over a trailing window of (at least) 100 steps
        steps, events = trailing(self._event_history, step, r["boundary_events"], EVENT_WINDOW_STEPS)
        if steps > 0:
            self.event_rate.add(step, 100.0 * events / steps)
        self.step, self.elapsed = step, r["elapsed"]
        # speed over the trailing RATE_WINDOW_S seconds of training (a 10-step record's own rate swings tenfold with
        # the machine's load); the record's own rate until 5 s of history exist
        seconds, done = trailing(self._rate_history, float(r["elapsed"]), step, RATE_WINDOW_S)
        self.steps_per_s = done / seconds if seconds >= 5.0 else float(r["steps_per_s"])
        self.lr, self.ema_tau = r["lr"], r["ema_tau"]
        self.buffer_size, self.boundary_events = r["buffer_size"], r["boundary_events"]
        self.surprisal_mu, self.surprisal_sigma = r.get("surprisal_mu"), r.get("surprisal_sigma")
        self.loss.add(step, r["loss"])
        self.loss_pred.add(step, r["loss_pred"])
        self.loss_var.add(step, r["loss_var"])
        self.buffer.add(step, r["buffer_size"])
        for names, series in zip(MODULATION_STATS, (self.modulation_1, self.modulation_2), strict=True):
            series.add(step, next((r[n] for n in names if r.get(n) is not None), None))
        if self.status == "starting":
            self.status = "training"

    def _note(self, notice: tuple[str, str]) -> None:
        if not self.quiet:
            self.notices.append(notice)

    def take_notices(self) -> list[tuple[str, str]]:
        """The (severity, text) notices since the last call: saves, requests applied, evaluations, thermal pauses."""
        notices, self.notices = self.notices, []
        return notices

    def _ingest_eval(self, r: dict) -> None:
        step = r["step"]
        self.d_shift.add(step, r["d_shift"])
        self.d_base.add(step, r["d_base"])
        self.sigma_z.add(step, r["sigma_z"])
        if isinstance(r.get("effective_rank"), int | float):
            self.effective_rank = r["effective_rank"]
        if self.peak_d_shift is None or r["d_shift"] < self.peak_d_shift:
            self.peak_step, self.peak_d_shift = step, r["d_shift"]
        self._note(("information", f"Track {self.track} evaluated at step {step}: D_shift {r['d_shift']:.4f}"
                                            f" (σ_z {r['sigma_z']:.3f})"))

    def _ingest_start(self, r: dict) -> None:
        self.status = "training"
        self._cpu_threads(r)

    def _ingest_resume(self, r: dict) -> None:
        self.status = "training"
        self.events.append(r)
        self._cpu_threads(r)

    def _cpu_threads(self, r: dict) -> None:
        if "cpu_threads" in r:
            self.cpu_threads, self.follows_load, self.others_cores = r["cpu_threads"], r["follows_load"], None

    def _ingest_threads(self, r: dict) -> None:
        self.cpu_threads, self.follows_load, self.others_cores = r["threads"], True, r["others_cores"]

    def _ingest_pause_request(self, r: dict) -> None:
        self.events.append(r)

    def _ingest_request_rejected(self, r: dict) -> None:
        self._note(("warning", f"request {r.get('name')} set aside at step {r.get('step')}: {r.get('reason')}"))

    def _ingest_thermal_pause(self, r: dict) -> None:
        self.status = "cooling"
        self.events.append(r)
        self._note(("warning", f"GPU at {r.get('temperature_c')} °C: training paused to cool at step {r.get('step')}"))

    def _ingest_thermal_resume(self, r: dict) -> None:
        self.status = "training"
        self.events.append(r)

    def _ingest_non_finite(self, r: dict) -> None:
        self.status = "failed"
        self.events.append(r)

    def _ingest_command(self, r: dict) -> None:
        self.events.append(r)
        if r.get("source") == "request":
            self._note(("information", f"{r['command']} applied at step {r['step']} (a request from watch)"))
        self.buffer_frozen, self.ema_frozen = r["buffer_frozen"], r["ema_frozen"]
        if r["paused"]:
            self.status = "paused"
        elif self.status == "paused":
            self.status = "training"

    def _ingest_world_switch(self, r: dict) -> None:
        self.events.append(r)
        self.world = f"world {r.get('world')}: {r.get('physics', '?')}"

    def _ingest_checkpoint(self, r: dict) -> None:
        self.events.append(r)
        if r.get("reason") == "request":
            self._note(("information", f"checkpoint saved at step {r['step']} and kept: {r.get('path')}"))

    def _ingest_end(self, r: dict) -> None:
        self.status = r["status"]

    def _ingest_summary(self, r: dict) -> None:
        self.status = r["status"]
        self.peak_step, self.peak_d_shift = r.get("peak_step"), r.get("peak_d_shift")

    def _ingest_failed(self, r: dict) -> None:
        self.status = "failed"
        self.events.append(r)
