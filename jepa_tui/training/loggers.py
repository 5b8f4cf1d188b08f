"""Record loggers: a run's records also sent, as they are written, where researchers already look
(``train.loggers``, ``--log-to``). Each logger is a :class:`~jepa_tui.training.loop.Sink` beside the run's own
files, which stay the source of truth: a logger that fails (disk full, folder gone, server gone) says so once and
switches itself off, and the run goes on at its own pace.

- ``tensorboard``: ``RUN_DIR/tensorboard/`` through ``torch.utils.tensorboard`` (``pip install
  'jepa-tui[tensorboard]'``): every numeric field of the train records under ``train/``, of the evaluations under
  ``eval/`` (nested fields joined with ``/``: ``eval/formulas/ratio_of_sums/d_shift``), each event as a sentence
  under the text tag ``events``, the resolved configuration as the text ``config``, the report's figures as images
  ``figures/<name>`` when the run ends. A resumed run writes to the same folder and purges what the earlier session
  logged past its checkpoint, so each step is there once.
- ``mlflow``: one MLflow run per run directory (``pip install 'jepa-tui[mlflow]'``), in the tracking store of
  ``MLFLOW_TRACKING_URI`` or, by default, ``RUN_DIR/mlflow.db`` (SQLite; ``mlflow ui --backend-store-uri
  sqlite:///RUN_DIR/mlflow.db``, artifacts in ``RUN_DIR/mlflow/``), experiment ``jepa-tui``: the same metric names
  as TensorBoard's tags, the resolved configuration as parameters (``train.lr``, ...) and ``config.toml``, the
  event log as ``events.txt`` when a session ends, the report's figures as artifacts ``figures/<name>.png`` when
  the run ends, the run's status.
- ``wandb``: one W&B run per run directory (``pip install 'jepa-tui[wandb]'``) in ``RUN_DIR/wandb``, offline
  unless ``WANDB_MODE`` says otherwise (``wandb sync RUN_DIR/wandb/offline-run-*`` uploads it), project
  ``WANDB_PROJECT`` or ``jepa-tui``: the same metric names, the configuration as the run's config, the event log
  as the table ``events`` when a session ends, the report's figures as images ``figures/<name>`` when the run ends.

The figures are those of ``jepa-tui report RUN_DIR`` (drawn by the command that started the run, which hands the
loggers a :data:`FigureMaker`: this layer does not draw), made in a temporary folder when the run is done, at its
last step logged; a figure that cannot be drawn is reported once and the logger still finishes.

A resumed run continues the same MLflow and W&B run (their ids are kept in ``RUN_DIR/<logger>/state.json`` with
the last step logged of each kind) and logs only steps past what they hold, so each step is there once.
``jepa-tui export RUN... --to NAME`` replays finished runs' records through the same loggers.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from jepa_tui.config import Config, ConfigError, flat_keys
from jepa_tui.config.validation import require_extra
from jepa_tui.runs.describe import describe_event
from jepa_tui.runs.files import atomic_write_text
from jepa_tui.runs.records import is_number

# each logger's libraries (its optional extra, named as the logger, installs them)
LIBRARIES = {"tensorboard": ("tensorboard",), "mlflow": ("mlflow", "sqlalchemy", "alembic"), "wandb": ("wandb",)}
EXPERIMENT = "jepa-tui"  # MLflow's experiment and W&B's default project
EXPORT_FOLDERS = {"tensorboard": "tensorboard", "mlflow": "mlflow-export", "wandb": "wandb-export"}  # in RUN_DIR
# (run directory, empty folder) -> the PNG files of the run's figures it wrote into the folder
FigureMaker = Callable[[Path, Path], list[Path]]


def viewer_command(to: str, log_dirs: list[Path]) -> str:
    """The command that opens what was logged to ``log_dirs`` by logger ``to``."""
    if to == "tensorboard":
        return "tensorboard --logdir_spec " + ",".join(f"{d.parent.name}:{d}" for d in log_dirs)
    if to == "mlflow":
        return "; ".join(f"mlflow ui --backend-store-uri sqlite:///{(d / 'mlflow.db').resolve()}" for d in log_dirs)
    return "wandb sync " + " ".join(f"{d}/wandb/offline-run-*" for d in log_dirs)


def check_available(names: tuple[str, ...] | list[str]) -> None:
    """Raise a ConfigError naming the pip install when a logger's library is missing (before any run directory
    exists)."""
    for name in names:
        for module in LIBRARIES.get(name, ()):
            require_extra(module, f"train.loggers: '{name}'", f"the {module} package", name)


def logger_sinks(config: Config, run_dir: Path, resume_step: int | None = None,
                 figures: FigureMaker | None = None) -> list:
    """The sinks of ``config.train.loggers`` for the run in ``run_dir`` (``resume_step``: the checkpoint step a
    resumed run continues from; ``figures``: what draws the run's figures, logged as images when it ends)."""
    check_available(config.train.loggers)
    makers = {"tensorboard": lambda: TensorBoardLogger(Path(run_dir) / "tensorboard", config, resume_step),
              "mlflow": lambda: MlflowLogger(Path(run_dir), config),
              "wandb": lambda: WandbLogger(Path(run_dir), config)}
    return [makers[name]().with_figures(figures, Path(run_dir)) for name in config.train.loggers]


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
        elif is_number(value):
            out[tag] = float(value)
    return out


def _events_text(run_dir: Path) -> list[tuple[int, str]]:
    """(step, sentence) for each event of the run directory's ``events.jsonl`` that has one."""
    from jepa_tui.runs import RunDirectory

    out = []
    for record in RunDirectory(run_dir).read_records("events"):
        text = describe_event(record)
        if text is not None:
            out.append((record["step"], text))
    return out


class RecordLogger:
    """What every logger shares: records dispatched to :meth:`write_scalars` / :meth:`write_text`, failures
    reported once and the logger switched off, and (``remembers``) the last step logged of each kind kept in
    ``state_dir/state.json``, so that a resumed run logs only what the tracker does not hold yet.

    Subclasses set ``title`` and implement ``write_scalars(values, step)`` (or ``write_batch``),
    ``write_images(paths, step)`` and ``finish(summary)``, and ``write_text(text, step)`` where events go out as
    they come.
    """

    title = ""
    remembers = False
    flush_s = 0.0  # records written at most this long after they came (and at checkpoints, evaluations, the end)

    def __init__(self, where: Path, state_dir: Path | None = None) -> None:
        self.where = Path(where)
        self.pending: list[tuple[str, dict[str, float], int]] = []
        self.flushed_at = time.monotonic()
        self.failed: str | None = None
        self.active = False
        self.state_dir = state_dir
        self.state: dict = {}
        if self.remembers and state_dir is not None:
            try:
                self.state = json.loads((state_dir / "state.json").read_text())
            except (OSError, ValueError):
                self.state = {}
        self.logged: dict[str, int] = dict(self.state.get("logged", {}))
        self.last_step = max(self.logged.values(), default=0)  # the last step written
        self.figures: FigureMaker | None = None
        self.source: Path | None = None  # the run directory whose figures are drawn
        self.figures_always = False

    def with_figures(self, figures: FigureMaker | None, source: Path, always: bool = False) -> RecordLogger:
        """Log the figures ``figures`` draws of run ``source`` as images when the run is done (``always``: when
        the records end, whatever the run's status: an export); returns self."""
        self.figures, self.source, self.figures_always = figures, source, always
        return self

    def _guard(self, action) -> None:
        """Run ``action``; on the first failure say so once on stderr and switch the logger off."""
        if self.failed is not None:
            return
        try:
            action()
        except Exception as exc:  # a logger must never stop or slow the run
            self.failed = f"{type(exc).__name__}: {exc}"
            self.active = False
            print(f"jepa-tui: {self.title} logging to {self.where} stopped ({self.failed}); the run goes on and "
                  "its own files hold every record", file=sys.stderr, flush=True)

    def _save_state(self) -> None:
        if self.remembers and self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.state_dir / "state.json", json.dumps({**self.state, "logged": self.logged}))

    def _numbers(self, record: dict, prefix: str, flush: bool = False) -> None:
        step = record.get("step")
        if not isinstance(step, int) or not self.active or step <= self.logged.get(prefix, -1):
            return
        self.pending.append((prefix, scalars(record, prefix), step))
        if flush or time.monotonic() - self.flushed_at >= self.flush_s:
            self._flush()

    def _flush(self) -> None:
        """Write what is pending, then remember the last step written of each kind."""
        self.flushed_at = time.monotonic()
        if not self.pending or not self.active:
            return
        pending, self.pending = self.pending, []
        self.write_batch([(values, step) for _, values, step in pending if values])
        self.last_step = max(self.last_step, *(step for _, _, step in pending))
        if self.remembers:
            for prefix, _, step in pending:
                self.logged[prefix] = step
            self._save_state()

    def on_train(self, record: dict) -> None:
        self._guard(lambda: self._numbers(record, "train"))

    def on_eval(self, record: dict) -> None:
        self._guard(lambda: self._numbers(record, "eval", flush=True))

    def on_event(self, record: dict) -> None:
        if record.get("kind") == "checkpoint":  # what a resume will not recompute is written before it goes on
            self._guard(self._flush)
        text = describe_event(record)
        if text is not None and isinstance(record.get("step"), int) and self.active:
            self._guard(lambda: self.write_text(text, record["step"]))

    def on_summary(self, summary: dict) -> None:
        if self.active:
            self._guard(self._flush)
            if summary.get("status") == "done" or self.figures_always:  # a stopped run may be resumed
                self._send_figures()
            self._guard(lambda: self.finish(summary))
        self.active = False

    def _send_figures(self) -> None:
        """The run's figures as images at the last step logged; a failure is said once and the logger finishes."""
        if self.figures is None or self.source is None or not self.active:
            return
        try:
            with tempfile.TemporaryDirectory(prefix="jepa-tui-figures-") as folder:
                paths = self.figures(self.source, Path(folder))
                if paths:
                    self.write_images(paths, self.last_step)
        except Exception as exc:  # a figure must not cost the logger its end (status, event log)
            print(f"jepa-tui: {self.title}: the run's figures were not logged ({type(exc).__name__}: {exc}); "
                  f"`jepa-tui report {self.source}` draws them", file=sys.stderr, flush=True)

    def write_batch(self, items: list[tuple[dict[str, float], int]]) -> None:
        """Write (values by name, step) pairs, oldest first."""
        for values, step in items:
            self.write_scalars(values, step)

    def write_scalars(self, values: dict[str, float], step: int) -> None:
        raise NotImplementedError

    def write_text(self, text: str, step: int) -> None:
        """An event's sentence at its step (default: none; the event log is written when a session ends)."""

    def write_images(self, paths: list[Path], step: int) -> None:
        """PNG files as images named ``figures/<file stem>`` at ``step``."""
        raise NotImplementedError

    def finish(self, summary: dict) -> None:
        raise NotImplementedError


class TensorBoardLogger(RecordLogger):
    """Writes a run's records to a TensorBoard log folder (see the module's docstring).

    Args:
        log_dir: the folder of the event files (created).
        config: the run's resolved configuration (logged as text once, on a new run).
        resume_step: a resumed run's checkpoint step; events logged past it by an earlier session are purged.
    """

    title = "TensorBoard"

    def __init__(self, log_dir: Path, config: Config, resume_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        super().__init__(log_dir)
        self.log_dir = self.where
        self.writer = None
        self._guard(lambda: self._open(SummaryWriter, config, resume_step))

    def _open(self, writer_class, config: Config, resume_step: int | None) -> None:
        purge = None if resume_step is None else resume_step + 1
        self.writer = writer_class(log_dir=str(self.log_dir), purge_step=purge, flush_secs=30)
        self.active = True
        if resume_step is None:
            import tomli_w

            self.writer.add_text("config", "```\n" + tomli_w.dumps(config.to_dict()) + "\n```", 0)

    def write_scalars(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def write_text(self, text: str, step: int) -> None:
        self.writer.add_text("events", text, step)

    def write_images(self, paths: list[Path], step: int) -> None:
        from matplotlib.image import imread

        for path in paths:
            self.writer.add_image(f"figures/{path.stem}", imread(path)[..., :3], step, dataformats="HWC")

    def finish(self, summary: dict) -> None:
        writer, self.writer = self.writer, None
        writer.flush()
        writer.close()


class MlflowLogger(RecordLogger):
    """Writes a run's records to one MLflow run (see the module's docstring).

    Args:
        run_dir: where ``mlflow.db`` and ``mlflow/`` (artifacts, ``state.json``) go: the run directory.
        config: the run's resolved configuration (logged as parameters on a new run).
        source: the run directory logged, when not ``run_dir`` (an export): it names the MLflow run and gives the
            event log.
    """

    title = "MLflow"
    remembers = True
    flush_s = 10.0  # one database transaction per batch of records: about 6 ms each, per record 3-4 % of a step

    def __init__(self, run_dir: Path, config: Config, source: Path | None = None) -> None:
        run_dir = Path(run_dir)
        uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(run_dir / 'mlflow.db').resolve()}"
        super().__init__(Path(uri), run_dir / "mlflow")
        self.uri, self.store_dir, self.run_dir = uri, run_dir, Path(source or run_dir)
        self.client, self.run_id = None, None
        self._guard(lambda: self._open(config))

    def _open(self, config: Config) -> None:
        import logging

        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        for name in ("mlflow", "alembic"):  # its database set-up notes are not the run's business
            logging.getLogger(name).setLevel(logging.WARNING)
        self.client = MlflowClient(tracking_uri=self.uri)
        self.run_id = self.state.get("run_id")
        if self.run_id is not None:
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            experiment = self.client.get_experiment_by_name(EXPERIMENT)
            # in the run directory's own store, its artifacts go beside it (MLflow's default is ./mlruns, wherever
            # the command happened to run); a store the user named keeps its own artifact location
            artifacts = None if "MLFLOW_TRACKING_URI" in os.environ else (self.store_dir / "mlflow").resolve().as_uri()
            experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(
                EXPERIMENT, artifact_location=artifacts)
            self.run_id = self.client.create_run(experiment_id, run_name=self.run_dir.name,
                                                 tags={"jepa_tui.run_dir": str(self.run_dir.resolve())}).info.run_id
            params = [Param(k, (v if isinstance(v, str) else json.dumps(v))[:6000])
                      for k, v in flat_keys(config.to_dict()).items()]
            for i in range(0, len(params), 100):  # MLflow takes at most 100 parameters a batch
                self.client.log_batch(self.run_id, params=params[i:i + 100])
            import tomli_w

            self.client.log_text(self.run_id, tomli_w.dumps(config.to_dict()), "config.toml")
            self.state = {"run_id": self.run_id}
            self._save_state()
        self.active = True

    def write_batch(self, items: list[tuple[dict[str, float], int]]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for values, step in items for k, v in values.items()]
        for i in range(0, len(metrics), 1000):  # MLflow takes at most 1,000 metrics a batch
            self.client.log_batch(self.run_id, metrics=metrics[i:i + 1000])

    def write_images(self, paths: list[Path], step: int) -> None:
        for path in paths:
            self.client.log_artifact(self.run_id, str(path), "figures")

    def finish(self, summary: dict) -> None:
        lines = [f"step {step}: {text}" for step, text in _events_text(self.run_dir)]
        self.client.log_text(self.run_id, "\n".join(lines) + "\n", "events.txt")
        status = summary.get("status")
        self.client.set_terminated(self.run_id, "FINISHED" if status == "done" else
                                   "FAILED" if status == "failed" else "KILLED")


class WandbLogger(RecordLogger):
    """Writes a run's records to one W&B run (see the module's docstring).

    Args:
        run_dir: where ``wandb/`` (the offline run, ``state.json``) goes: the run directory.
        config: the run's resolved configuration (the W&B run's config).
        source: the run directory logged, when not ``run_dir`` (an export): it names the W&B run and gives the event
            log.
    """

    title = "W&B"
    remembers = True
    flush_s = 10.0  # records handed over in batches, and the state file written once a batch

    def __init__(self, run_dir: Path, config: Config, source: Path | None = None) -> None:
        run_dir = Path(run_dir)
        super().__init__(run_dir / "wandb", run_dir / "wandb")
        self.store_dir, self.run_dir, self.run = run_dir, Path(source or run_dir), None
        self._guard(lambda: self._open(config))

    def _open(self, config: Config) -> None:
        import wandb

        run_id = self.state.get("run_id") or secrets.token_hex(4)  # W&B's ids: lowercase letters and digits
        self.where.mkdir(parents=True, exist_ok=True)
        mode = os.environ.get("WANDB_MODE", "offline")
        if mode in ("offline", "disabled"):
            # W&B's own error reporting (OpenTelemetry, to its servers) would load on the first record and time
            # every one: 0.2 s of the training thread and a steady cost, for a run that sends nothing anywhere
            os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", EXPERIMENT), name=self.run_dir.name,
                              id=run_id, dir=str(self.store_dir), mode=mode,
                              resume="allow", config=config.to_dict(), reinit="create_new",
                              settings=wandb.Settings(silent=True, console="off"))
        self.state = {**self.state, "run_id": run_id}
        self._save_state()
        self.active = True

    def write_scalars(self, values: dict[str, float], step: int) -> None:
        self.run.log(values, step=step)

    def write_images(self, paths: list[Path], step: int) -> None:
        import wandb

        self.run.log({f"figures/{path.stem}": wandb.Image(str(path)) for path in paths}, step=step)

    def finish(self, summary: dict) -> None:
        import wandb

        rows = [[step, text] for step, text in _events_text(self.run_dir)]
        self.run.summary["events"] = wandb.Table(columns=["step", "event"], data=rows)
        self.run.finish(exit_code=0 if summary.get("status") in ("done", None) else 1)


def export_run(run_dir: Path, log_dir: Path, to: str = "tensorboard", figures: FigureMaker | None = None) -> int:
    """Replay a run directory's records (``metrics.jsonl``, ``events.jsonl`` by step, then its summary) through
    the ``to`` logger into ``log_dir``, and the figures ``figures`` draws of the run; returns how many records went.
    Changes nothing in the run.

    Raises:
        ConfigError: ``to`` is not a logger, its library is missing, ``log_dir`` exists already (an export or a
            live log: a second one would hold every step twice), or the run's configuration cannot be read.
        RunDirError: when the run's records cannot be read.
    """
    from jepa_tui.config import load_run_config
    from jepa_tui.runs import RunDirectory

    if to not in LIBRARIES:
        raise ConfigError(f"--to {to!r}: expected one of {', '.join(repr(n) for n in LIBRARIES)}")
    check_available([to])
    if Path(log_dir).exists():
        raise ConfigError(f"'{log_dir}' exists already: each step would be there twice; give --out another folder")
    config = load_run_config(run_dir)
    directory = RunDirectory(run_dir)
    records = sorted(directory.read_records("metrics") + directory.read_records("events"),
                     key=lambda r: (r.get("step") if isinstance(r.get("step"), int) else 0))
    logger = exporter(to, Path(log_dir), Path(run_dir), config).with_figures(figures, Path(run_dir), always=True)
    for record in records:
        kind = record.get("kind")
        if kind == "train":
            logger.on_train(record)
        elif kind == "eval":
            logger.on_eval(record)
        else:
            logger.on_event(record)
    logger.on_summary(directory.read_summary() or {"status": "done"})
    if logger.failed is not None:
        raise ConfigError(f"cannot write '{log_dir}': {logger.failed}")
    return len(records)


def exporter(to: str, log_dir: Path, run_dir: Path, config: Config) -> RecordLogger:
    """The logger that replays ``run_dir`` into ``log_dir``: a TensorBoard folder, an MLflow store
    (``log_dir/mlflow.db``, unless ``MLFLOW_TRACKING_URI`` names one) or a W&B offline run (``log_dir/wandb``)."""
    if to == "tensorboard":
        return TensorBoardLogger(log_dir, config)
    log_dir.mkdir(parents=True)
    return (MlflowLogger if to == "mlflow" else WandbLogger)(log_dir, config, source=run_dir)
