"""Finished (or stopped) runs read back from their run directories for the report: configuration, evaluation
and train records, status and sweep variant."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jepa_tui.config import Config, load_run_config
from jepa_tui.runs import RunDirectory
from jepa_tui.runs.manifest import sweep_variant


@dataclass
class RunRecord:
    """One run as the report sees it. ``variant`` is its sweep variant ("" outside sweeps or for none)."""

    path: Path
    config: Config
    variant: str
    evals: list[dict]
    trains: list[dict]
    status: str

    @property
    def track(self) -> str:
        return self.config.train.track

    @property
    def seed(self) -> int:
        return self.config.train.seed

    @property
    def label(self) -> str:
        return f"{self.variant + ' ' if self.variant else ''}{self.track} s{self.seed}"

    @property
    def peak(self) -> dict:
        """The evaluation with the lowest D_shift (the paper reports its metric at the peak)."""
        return min(self.evals, key=lambda r: r["d_shift"])

    @property
    def final(self) -> dict:
        return self.evals[-1]


def collect_runs(paths: list[Path]) -> list[RunRecord]:
    """Every run directory at or below ``paths`` with at least one evaluation, sorted by variant, track, seed.

    Raises:
        FileNotFoundError: when a path does not exist or holds no evaluated run.
    """
    found: dict[Path, RunRecord] = {}
    for root in map(Path, paths):
        if not root.exists():
            raise FileNotFoundError(f"'{root}' does not exist")
        candidates = [root] if (root / "config.toml").is_file() else sorted(p.parent for p in root.rglob("config.toml"))
        for run_dir in candidates:
            directory = RunDirectory(run_dir)
            metrics = directory.read_records("metrics")
            evals = [r for r in metrics if r.get("kind") == "eval"]
            if not evals:
                continue
            summary = directory.read_summary() or {}
            found[run_dir.resolve()] = RunRecord(run_dir, load_run_config(run_dir),
                                                 sweep_variant(run_dir), evals,
                                                 [r for r in metrics if r.get("kind") == "train"],
                                                 summary.get("status", "running"))
    if not found:
        raise FileNotFoundError(f"no evaluated runs under {', '.join(map(str, paths))}")
    return sorted(found.values(), key=lambda r: (r.variant, r.track, r.seed))
