"""Record loggers: a run's records also sent, as they are written, where researchers already look
(``train.loggers``, ``--log-to``). Each logger is a :class:`~jepa_tui.training.loop.Sink` beside the run's own
files, which stay the source of truth: a logger that fails (disk full, folder gone) says so once and switches
itself off, and the run goes on at its own pace.

- ``tensorboard``: ``RUN_DIR/tensorboard/`` through ``torch.utils.tensorboard`` (``pip install
  'jepa-tui[tensorboard]'``): every numeric field of the train records under ``train/``, of the evaluations under
  ``eval/`` (nested fields joined with ``/``: ``eval/formulas/ratio_of_sums/d_shift``), each event as a sentence
  under the text tag ``events``, the resolved configuration as the text ``config``. A resumed run writes to the same
  folder and purges what the earlier session logged past its checkpoint, so each step is there once.

``jepa-tui export RUN... --to tensorboard`` replays finished runs' records through the same logger.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from jepa_tui.config import Config, ConfigError
from jepa_tui.runs.describe import describe_event

INSTALL = {"tensorboard": "pip install 'jepa-tui[tensorboard]'  (or: pip install tensorboard)"}


def check_available(names: tuple[str, ...] | list[str]) -> None:
    """Raise a ConfigError naming the pip install when a logger's library is missing (before any run directory
    exists)."""
    for name in names:
        if name == "tensorboard":
            try:
                import tensorboard  # noqa: F401
            except ImportError:
                raise ConfigError(f"train.loggers: 'tensorboard' needs the tensorboard package: {INSTALL[name]}") \
                    from None


def logger_sinks(config: Config, run_dir: Path, resume_step: int | None = None) -> list:
    """The sinks of ``config.train.loggers`` for the run in ``run_dir`` (``resume_step``: the checkpoint step a
    resumed run continues from; what was logged after it is purged)."""
    check_available(config.train.loggers)
    return [TensorBoardLogger(Path(run_dir) / "tensorboard", config, resume_step)
            for name in config.train.loggers if name == "tensorboard"]


def scalars(record: dict, prefix: str) -> dict[str, float]:
    """The finite numbers of ``record`` by tag (``prefix/field``, nested fields joined with ``/``); step, kind and
    booleans left out."""
    out: dict[str, float] = {}
    for key, value in record.items():
        if key in ("kind", "step"):
            continue
        tag = f"{prefix}/{key}"
        if isinstance(value, dict):
            out.update(scalars(value, tag))
        elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out[tag] = float(value)
    return out


class TensorBoardLogger:
    """Writes a run's records to a TensorBoard log folder (see the module's docstring).

    Args:
        log_dir: the folder of the event files (created).
        config: the run's resolved configuration (logged as text once, on a new run).
        resume_step: a resumed run's checkpoint step; events logged past it by an earlier session are purged.
    """

    def __init__(self, log_dir: Path, config: Config, resume_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir)
        self.failed: str | None = None
        self.writer = None
        self._guard(lambda: self._open(SummaryWriter, config, resume_step))

    def _open(self, writer_class, config: Config, resume_step: int | None) -> None:
        purge = None if resume_step is None else resume_step + 1
        self.writer = writer_class(log_dir=str(self.log_dir), purge_step=purge, flush_secs=30)
        if resume_step is None:
            import tomli_w

            self.writer.add_text("config", "```\n" + tomli_w.dumps(config.to_dict()) + "\n```", 0)

    def _guard(self, action) -> None:
        """Run ``action``; on the first failure say so once on stderr and switch the logger off."""
        if self.failed is not None:
            return
        try:
            action()
        except Exception as exc:  # a logger must never stop or slow the run
            self.failed = f"{type(exc).__name__}: {exc}"
            print(f"jepa-tui: TensorBoard logging to {self.log_dir} stopped ({self.failed}); the run goes on and "
                  "its own files hold every record", file=sys.stderr, flush=True)
            self.writer = None

    def _scalars(self, record: dict, prefix: str) -> None:
        step = record.get("step")
        if isinstance(step, int) and self.writer is not None:
            for tag, value in scalars(record, prefix).items():
                self.writer.add_scalar(tag, value, step)

    def on_train(self, record: dict) -> None:
        self._guard(lambda: self._scalars(record, "train"))

    def on_eval(self, record: dict) -> None:
        self._guard(lambda: self._scalars(record, "eval"))

    def on_event(self, record: dict) -> None:
        text = describe_event(record)
        if text is not None and isinstance(record.get("step"), int) and self.writer is not None:
            self._guard(lambda: self.writer.add_text("events", text, record["step"]))

    def on_summary(self, summary: dict) -> None:
        self._guard(self._close)

    def _close(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            writer.flush()
            writer.close()


def export_run(run_dir: Path, log_dir: Path, to: str = "tensorboard") -> int:
    """Replay a run directory's records (``metrics.jsonl``, ``events.jsonl`` by step, then its summary) through
    the ``to`` logger into ``log_dir``; returns how many records went. Changes nothing in the run.

    Raises:
        ConfigError: ``to`` is not a logger, its library is missing, ``log_dir`` exists already (an export or a
            live log: a second one would hold every step twice), or the run's configuration cannot be read.
        RunDirError: when the run's records cannot be read.
    """
    from jepa_tui.config import load_run_config
    from jepa_tui.runs import RunDirectory

    if to != "tensorboard":
        raise ConfigError(f"--to {to!r}: expected 'tensorboard' (MLflow and W&B are not built yet)")
    check_available([to])
    if Path(log_dir).exists():
        raise ConfigError(f"'{log_dir}' exists already: each step would be there twice; give --out another folder")
    config = load_run_config(run_dir)
    directory = RunDirectory(run_dir)
    records = sorted(directory.read_records("metrics") + directory.read_records("events"),
                     key=lambda r: (r.get("step") if isinstance(r.get("step"), int) else 0))
    logger = TensorBoardLogger(log_dir, config)
    for record in records:
        kind = record.get("kind")
        if kind == "train":
            logger.on_train(record)
        elif kind == "eval":
            logger.on_eval(record)
        else:
            logger.on_event(record)
    logger.on_summary(directory.read_summary() or {})
    if logger.failed is not None:
        raise ConfigError(f"cannot write '{log_dir}': {logger.failed}")
    return len(records)
