"""Runs read back from their run directories for the report: configuration, evaluation and train records, the
interventions in ``events.jsonl``, status and sweep variant. Any run directory is accepted: finished, stopped,
interrupted, failed, still running or never evaluated; what a run cannot contribute is said, not guessed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from jepa_tui.config import MEMORY_TRACKS, SIGMA_Z_COLLAPSE_LINE, Config, ConfigError, load_run_config
from jepa_tui.runs import RunDirectory, RunDirError
from jepa_tui.runs.interventions import Intervention, interventions
from jepa_tui.runs.manifest import sweep_variant
from jepa_tui.runs.records import evals, is_number, last_status, sessions, trains

COLLAPSE_LINE = SIGMA_Z_COLLAPSE_LINE
def eval_field(record: dict, key: str, formula: str | None, own_formula: str) -> object:
    """``key`` ("d_shift", "d_base_per_horizon", "d_shift_val", ...) of an eval record under ``formula``; None when
    the record does not carry it. ``own_formula`` is the run's ``eval.formula``, whose values are also the record's
    top-level ones (records written before every formula was recorded carry only those)."""
    if formula is not None and formula != own_formula:
        return record.get("formulas", {}).get(formula, {}).get(key)
    own = record.get("formulas", {}).get(own_formula, {})
    return record.get(key, own.get(key))


def finite_number(value: object) -> float | None:
    """``value`` as a float when it is a finite number (not a bool); None otherwise (a NaN or infinite D_shift is
    no measurement: :attr:`RunRecord.nonfinite_evals` names those evaluations)."""
    return float(value) if is_number(value) else None


COUNT_FIELDS = ("buffer_size", "boundary_events")  # train-record fields used as counts


def _counts_checked(record: dict) -> dict:
    """A train record without count fields that are not finite non-negative numbers (``Infinity`` in
    ``buffer_size`` would otherwise overflow where it is used as an int)."""
    for key in COUNT_FIELDS:
        value = finite_number(record.get(key))
        if key in record and (value is None or value < 0):
            del record[key]
    return record


@dataclass
class RunRecord:
    """One run as the report sees it. ``variant`` is its sweep variant ("" outside sweeps or for none).

    Attributes:
        status: how the run last ended ("done", "stopped", "interrupted", "suspended", "failed"), from its last
            ``end`` event, or "running or killed" when it started again (or first) and has not ended since.
        formula: the D_shift formula the report reads (None: each run's ``eval.formula``).
    """

    path: Path
    config: Config
    variant: str
    evals: list[dict]
    trains: list[dict]
    events: list[dict]
    status: str
    formula: str | None = None
    evaluations: dict[str, list[dict]] = field(default_factory=dict)  # tag -> records of `jepa-tui evaluate`
    _peak: dict | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        scored = [e for e in self.evals if self.d_shift(e) is not None]
        self._peak = min(scored, key=self.d_shift) if scored else None

    @property
    def track(self) -> str:
        return self.config.train.track

    @property
    def seed(self) -> int:
        return self.config.train.seed

    @property
    def label(self) -> str:
        return f"{self.variant + ' ' if self.variant else ''}{self.track} s{self.seed}"

    def value(self, record: dict, key: str) -> float | None:
        """A number of an eval record under the report's formula (None when not recorded)."""
        return finite_number(eval_field(record, key, self.formula, self.config.eval.formula))

    def per_horizon(self, record: dict, key: str) -> dict[str, float]:
        """A per-horizon table of an eval record ("d_shift_per_horizon", "d_base_per_horizon") under the report's
        formula; empty when not recorded."""
        table = eval_field(record, key, self.formula, self.config.eval.formula)
        return {k: v for k, v in table.items() if finite_number(v) is not None} if isinstance(table, dict) else {}

    @staticmethod
    def sigma_z(record: dict) -> float | None:
        """σ_z of an eval record (it does not depend on the formula); None when not a finite number."""
        return finite_number(record.get("sigma_z"))

    def d_shift(self, record: dict) -> float | None:
        return self.value(record, "d_shift")

    @property
    def scored_evals(self) -> list[dict]:
        """The evaluations that carry D_shift under the report's formula, in step order."""
        return [e for e in self.evals if self.d_shift(e) is not None]

    @property
    def peak(self) -> dict | None:
        """The evaluation with the lowest D_shift (the paper reports its metric at the peak); None without one."""
        return self._peak

    @property
    def final(self) -> dict | None:
        scored = self.scored_evals
        return scored[-1] if scored else None

    @property
    def val_pick(self) -> dict | None:
        """The evaluation with the lowest D_shift on the shift *validation* split (None when not recorded)."""
        picked = [e for e in self.evals if self.value(e, "d_shift_val") is not None and self.d_shift(e) is not None]
        return min(picked, key=lambda e: self.value(e, "d_shift_val")) if picked else None

    @property
    def budget_steps(self) -> int | None:
        return self.config.train.steps

    @property
    def last_step(self) -> int:
        """The last step the run recorded anything at (records, checkpoints, its end)."""
        steps = [r["step"] for r in (*self.trains, *self.evals)]
        steps += [e["step"] for e in self.events if isinstance(e.get("step"), int)]
        return max(steps, default=0)

    @property
    def nonfinite_evals(self) -> list[int]:
        """Steps of the evaluations whose D_shift is recorded as NaN or ±infinity (a diverged model)."""
        return [e["step"] for e in self.evals if eval_field(e, "d_shift", self.formula, self.config.eval.formula)
                is not None and self.d_shift(e) is None]

    @property
    def finished(self) -> bool:
        return self.status == "done"

    @property
    def buffer_entries(self) -> int:
        """The most entries its experience buffer held in any train record (0 for Track A or none)."""
        return max((int(r.get("buffer_size") or 0) for r in self.trains), default=0)

    @property
    def interventions(self) -> list[Intervention]:
        return interventions(self.events)

    @property
    def interactive(self) -> bool:
        """Changed by hand: a freeze from the dashboard or ``watch``, or a forced resume (pauses do not count)."""
        return any(i.changes_results for i in self.interventions)

    def flags(self) -> list[str]:
        """What a reader must know beside this run's numbers."""
        out = []
        peak = self.peak
        if peak is not None:
            sigma = self.sigma_z(peak)
            if sigma is not None and sigma < COLLAPSE_LINE:
                out.append(f"σ_z {sigma:.3f} < {COLLAPSE_LINE} at the peak (collapse line)")
            d = self.d_shift(peak)
            if d is not None and d >= 1.0:
                out.append(f"D_shift {d:.4g} ≥ 1 at best (no better than persistence)")
        if self.nonfinite_evals:
            out.append(f"D_shift not finite at step {', '.join(map(str, self.nonfinite_evals[:5]))} (diverged)")
        if not self.finished:
            budget = f" of {self.budget_steps}" if self.budget_steps else ""
            out.append(f"{self.status} at step {self.last_step}{budget}")
        if self.track in MEMORY_TRACKS and self.trains and self.buffer_entries == 0:
            out.append("its experience buffer never received an entry")
        if self.interactive:
            out.append("changed interactively")
        return out


@dataclass
class Skipped:
    """A directory that looked like a run but could not be read, or a run that has nothing to tabulate."""

    path: Path
    reason: str


def _status(events: list[dict], summary: dict | None) -> str:
    status = last_status(events)
    if status is not None:
        return status
    if sessions(events):
        return "running or killed"
    return str(summary.get("status")) if summary else "running or killed"


def read_run(run_dir: Path, formula: str | None = None) -> RunRecord:
    """One run directory as a :class:`RunRecord`.

    Raises:
        ConfigError: when its ``config.toml`` is missing or invalid.
    """
    directory = RunDirectory(run_dir)
    metrics = [r for r in directory.read_records("metrics") if isinstance(r, dict) and isinstance(r.get("step"), int)]
    events = [r for r in directory.read_records("events") if isinstance(r, dict)]
    return RunRecord(run_dir, load_run_config(run_dir), sweep_variant(run_dir),
                     evals(metrics), [_counts_checked(r) for r in trains(metrics)],
                     events, _status(events, directory.read_summary()), formula, directory.read_evaluations())


def collect_runs(paths: list[Path], formula: str | None = None) -> tuple[list[RunRecord], list[Skipped]]:
    """Every run directory at or below ``paths``, sorted by variant, track, seed, and the directories that could
    not be read (with the reason).

    Raises:
        FileNotFoundError: when a path does not exist or holds no run directory at all.
    """
    found: dict[Path, RunRecord] = {}
    skipped = []
    for root in map(Path, paths):
        if not root.exists():
            raise FileNotFoundError(f"'{root}' does not exist")
        candidates = [root] if (root / "config.toml").is_file() else sorted(p.parent for p in root.rglob("config.toml"))
        for run_dir in candidates:
            try:
                found[run_dir.resolve()] = read_run(run_dir, formula)
            except ConfigError as exc:
                skipped.append(Skipped(run_dir, f"unreadable configuration: {exc}"))
            except RunDirError as exc:  # metrics.jsonl a directory, a FIFO, a symlink loop, ...
                skipped.append(Skipped(run_dir, f"unreadable records: {exc}"))
    if not found:
        raise FileNotFoundError(f"no run directories under {', '.join(map(str, paths))}"
                                + (f" ({skipped[0].reason})" if skipped else ""))
    return sorted(found.values(), key=lambda r: (r.variant, r.track, r.seed, r.path.name)), skipped
