"""Runs as pandas DataFrames, for a notebook: ``jepa_tui.open_run(path)`` and ``jepa_tui.open_runs(folder)``.

Every frame is read with the run directory's own bounded readers (a torn or malformed line is left out, as
``report`` leaves it out) and holds one row per record and one column per field; a nested field is flattened with
dots (``d_shift_per_horizon.1``, ``formulas.ratio_of_sums.d_shift``, ``n_curve.50.d_shift``). Reading changes no
byte of the run.

    import jepa_tui
    runs = [jepa_tui.open_run(f"runs/table1/{t}_s42") for t in "ABC"]
    for run in runs:
        evals = run.evals()
        plt.plot(evals["step"], evals["d_shift"], label=run.config.train.track)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from jepa_tui.config import Config, load_run_config
from jepa_tui.runs.catalog import list_runs
from jepa_tui.runs.directory import RunDirectory
from jepa_tui.runs.records import of_kind

if TYPE_CHECKING:
    import pandas as pd


def _frame(records: list[dict], keep_kind: bool = False) -> pd.DataFrame:
    """One row per record, nested fields flattened with dots; the ``kind`` column dropped unless ``keep_kind`` (a
    frame of one kind)."""
    import pandas as pd

    frame = pd.json_normalize(records, sep=".") if records else pd.DataFrame()
    return frame if keep_kind else frame.drop(columns=["kind"], errors="ignore")


@dataclass(frozen=True)
class Run:
    """One run directory, read on demand.

    Attributes:
        path: the run directory.
    """

    path: Path

    @cached_property
    def config(self) -> Config:
        """The run's resolved configuration (its ``config.toml``), typed as the trainer used it.

        Raises:
            ConfigError: when ``config.toml`` is missing or not a valid configuration.
        """
        return load_run_config(self.path)

    @property
    def summary(self) -> dict | None:
        """``summary.json``: status, steps, peak and final D_shift, σ_z, speed; None while the run has none."""
        return RunDirectory(self.path).read_summary()

    def _records(self, name: str, kind: str | None = None) -> list[dict]:
        records = RunDirectory(self.path).read_records(name)
        return records if kind is None else of_kind(records, kind)

    def evals(self) -> pd.DataFrame:
        """The evaluations, one row per evaluation step: ``step`` (training steps), ``d_shift`` and ``d_base``
        (under the run's ``eval.formula``; every formula under ``formulas.<name>.*``), ``sigma_z``, per-horizon
        ``d_shift_per_horizon.<k>``, the adaptation curve ``n_curve.<n>.*``, ``memory_gain``, ``content_effect``,
        ``pos_rmse_px`` (pixels), ``seconds`` (evaluation time, s) and the rest of the eval record."""
        return _frame(self._records("metrics", "eval"))

    def train(self) -> pd.DataFrame:
        """The training records, one row per ``train.log_every_steps`` steps: ``step``, ``elapsed`` (training s),
        ``loss``, ``loss_pred``, ``loss_var``, ``lr``, ``ema_tau``, ``buffer_size`` (entries), ``boundary_events``
        (cumulative), ``surprisal_mu``, ``surprisal_sigma``, the modulation norms and ``steps_per_s``."""
        return _frame(self._records("metrics", "train"))

    def events(self) -> pd.DataFrame:
        """``events.jsonl``, one row per event: ``kind`` kept (start, resume, command, checkpoint, world_switch,
        threads, thermal_pause, end, ...), ``step``, ``time`` (Unix s) and the fields of each kind."""
        return _frame(self._records("events"), keep_kind=True)

    def evaluations(self) -> dict[str, pd.DataFrame]:
        """The re-evaluations of ``jepa-tui evaluate`` (``evaluations/<tag>.jsonl``), a frame per tag, laid out
        as :meth:`evals` (with the ``config_diff`` and ``code_version`` each was made with)."""
        return {tag: _frame(records) for tag, records in RunDirectory(self.path).read_evaluations().items()}


def open_run(path: str | Path) -> Run:
    """The run directory at ``path`` for a notebook (see :class:`Run`).

    Raises:
        FileNotFoundError: when ``path`` has no ``config.toml``.
    """
    path = Path(path)
    if not (path / "config.toml").is_file():
        raise FileNotFoundError(f"'{path}' is not a run directory (no config.toml)")
    return Run(path)


def open_runs(folder: str | Path) -> pd.DataFrame:
    """Every run at or below ``folder``, one row each, the columns ``jepa-tui runs --json`` prints (``run_id``,
    ``path``, ``track``, ``seed``, ``status``, ``step``, ``budget_steps``, ``budget_seconds``, ``peak_d_shift``,
    ``peak_step``, ``sigma_z_at_peak``, ``last_activity`` (Unix s), ``interventions``, ``changed_by_hand``,
    ``reproducible``), most recently active first.

    Raises:
        FileNotFoundError: when ``folder`` does not exist.
    """
    import pandas as pd

    rows = [info.to_dict() for info in list_runs(Path(folder))]
    return pd.DataFrame(rows)
