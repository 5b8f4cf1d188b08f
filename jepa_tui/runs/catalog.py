"""The runs under a folder, one line each: what ``jepa-tui runs`` prints and the dashboard's run browser lists."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from jepa_tui.config import ConfigError, load_run_config
from jepa_tui.runs.directory import RunDirectory
from jepa_tui.runs.files import RunDirError, writer_alive
from jepa_tui.runs.interventions import interventions
from jepa_tui.runs.records import evals, is_number, last_status
from jepa_tui.runs.reproducibility import reproducibility

ACTIVITY_FILES = ("metrics.jsonl", "events.jsonl", "summary.json")


@dataclass
class RunInfo:
    """One run at a glance. Steps are training steps; ``last_activity`` is a Unix time (s)."""

    run_id: str
    path: str
    track: str
    seed: int | None
    status: str
    step: int
    budget_steps: int | None  # the budget in training steps, or None for a budget in seconds
    budget_seconds: float | None  # the budget in training seconds, or None for a budget in steps
    peak_d_shift: float | None
    peak_step: int | None
    sigma_z_at_peak: float | None
    last_activity: float
    interventions: int
    changed_by_hand: bool
    reproducible: str = "unknown"  # "bitwise", "to rounding" or "unknown" (jepa_tui.runs.reproducibility)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def budget(self) -> str:
        """The budget as text: "22000" (steps) or "3600 s"."""
        return f"{self.budget_steps}" if self.budget_steps is not None else f"{self.budget_seconds or 0:g} s"


RUN_COLUMNS = ("run", "track", "seed", "status", "step/budget", "peak D_shift @ step", "σ_z at peak", "last activity",
               "interventions")


def run_row(info: RunInfo) -> tuple[str, ...]:
    """One run's cells under :data:`RUN_COLUMNS`: what ``jepa-tui runs`` and the dashboard's run browser show."""
    peak = f"{info.peak_d_shift:.4f} @ {info.peak_step}" if info.peak_d_shift is not None else "-"
    sigma = f"{info.sigma_z_at_peak:.3f}" if info.sigma_z_at_peak is not None else "-"
    return (info.run_id, info.track, str(info.seed) if info.seed is not None else "-", info.status,
            f"{info.step}/{info.budget}", peak, sigma, ago(info.last_activity),
            f"{info.interventions}{' (by hand)' if info.changed_by_hand else ''}")


def runs_table(infos: list[RunInfo]) -> list[str]:
    """The runs as text lines: a header of :data:`RUN_COLUMNS`, then one aligned row per run."""
    rows = [RUN_COLUMNS, *(run_row(info) for info in infos)]
    widths = [max(len(row[c]) for row in rows) for c in range(len(RUN_COLUMNS))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]


def run_status(events: list[dict], folder: Path) -> str:
    """How the run last ended ("done", "stopped", ...), "running" while a writer holds it, "not running" when it
    started and never ended (killed), "running or killed" for runs written before run directories were locked."""
    status = last_status(events)
    if status is not None:
        return status
    if not events:
        return "new"
    alive = writer_alive(folder)
    if alive is None:  # no lock file: written before runs were locked, so it cannot be told
        return "running or killed"
    return "running" if alive else "not running"


def describe_run(folder: Path, root: Path | None = None) -> RunInfo:
    """One run directory as a :class:`RunInfo` (an unreadable configuration shows as status "unreadable")."""
    directory = RunDirectory(folder)
    name = str(folder.relative_to(root)) if root is not None and folder != root else folder.name
    try:
        config = load_run_config(folder)
        track, seed = config.train.track, config.train.seed
        budget = (config.train.steps, None if config.train.steps is not None else config.train.seconds)
    except ConfigError:
        return RunInfo(name, str(folder), "?", None, "unreadable", 0, None, None, None, None, None, 0.0, 0, False)
    try:
        metrics, events = directory.read_records("metrics"), directory.read_records("events")
    except RunDirError:
        metrics, events = [], []
    scored = [r for r in evals(metrics) if is_number(r.get("d_shift"))]
    peak = min(scored, key=lambda r: r["d_shift"]) if scored else None
    steps = [r["step"] for r in (*metrics, *events)]
    activity = max((p.stat().st_mtime for p in (folder / f for f in ACTIVITY_FILES) if p.is_file()), default=0.0)
    found = interventions(events)
    return RunInfo(name, str(folder), track, seed, run_status(events, folder), max(steps, default=0), *budget,
                   peak["d_shift"] if peak else None, peak["step"] if peak else None,
                   peak.get("sigma_z") if peak else None, activity, len(found),
                   any(i.changes_results for i in found), reproducibility(events)[0])


def list_runs(root: Path) -> list[RunInfo]:
    """Every run directory at or below ``root`` (a folder with a ``config.toml``), most recently active first.

    Raises:
        FileNotFoundError: when ``root`` does not exist.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"'{root}' is not a directory")
    folders = [root] if (root / "config.toml").is_file() else sorted(p.parent for p in root.rglob("config.toml"))
    infos = [describe_run(folder, root) for folder in folders]
    return sorted(infos, key=lambda r: r.last_activity, reverse=True)


def ago(timestamp: float, now: float | None = None) -> str:
    """'12s ago', '5m ago', '3h ago', '2d ago' (or '-' for no activity)."""
    if timestamp <= 0:
        return "-"
    seconds = max(0.0, (now or time.time()) - timestamp)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"
