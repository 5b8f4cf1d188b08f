"""Writing a report to disk: ``report.md`` (the tables, then the figures' section), ``runs.csv``, ``evals.csv`` and
the figures, as ``jepa-tui report`` does."""

from __future__ import annotations

from pathlib import Path

from jepa_tui.reporting.collect import RunRecord, Skipped, read_run
from jepa_tui.reporting.export import write_csvs
from jepa_tui.reporting.figures import write_figures
from jepa_tui.reporting.report import Report, build_report
from jepa_tui.runs.files import atomic_write_text


def report_folder(paths: list[Path], out: Path | None) -> Path:
    """Where a report of ``paths`` goes: ``out``, else the first path, or its parent for a run directory."""
    return out or (paths[0].parent if (paths[0] / "config.toml").is_file() else paths[0])


def write_report(runs: list[RunRecord], skipped: list[Skipped], folder: Path) -> tuple[Report, list[Path]]:
    """Build the report of ``runs`` (read under one D_shift formula, :func:`~jepa_tui.reporting.collect.collect_runs`)
    and write it with its figures and CSVs into ``folder``.

    Returns:
        the report and the figures written (under ``folder/figures``).

    Raises:
        RunDirError: ``folder`` cannot be written.
    """
    built = build_report(runs, skipped)
    figures = write_figures(runs, folder / "figures")
    text = built.markdown() + "\n## Figures\n\n" + "\n".join(f"![{p.stem}](figures/{p.name})" for p in figures) + "\n"
    atomic_write_text(folder / "report.md", text)
    write_csvs(runs, folder)
    return built, figures


def run_figures(run_dir: Path, folder: Path) -> list[Path]:
    """The figures of ``jepa-tui report RUN_DIR`` for one run, as PNG files in ``folder``; returns their paths (a
    record logger's figures when the run ends, :data:`jepa_tui.training.loggers.FigureMaker`).

    Raises:
        RunDirError: the run's records cannot be read or ``folder`` cannot be written.
    """
    return write_figures([read_run(run_dir)], folder)
