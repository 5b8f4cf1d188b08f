"""MLflow and W&B as record loggers (train.loggers, --log-to, export), read back with their own libraries: what
they hold equals the run's own records, a resumed run's steps are there once, a failing tracker never stops the run,
and a missing library is refused before any directory exists."""

from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from jepa_tui.cli.main import app
from jepa_tui.config import load_config
from jepa_tui.runs import RunDirectory
from jepa_tui.training.loggers import LIBRARIES, MlflowLogger, WandbLogger, scalars
from jepa_tui.training.loop import RunLoop
from jepa_tui.training.session import prepare_run

runner = CliRunner()
SETTINGS = ["--set", "eval.every_steps=20"]


def mlflow_run(run_dir: Path, uri: str | None = None):
    """(client, run) of the MLflow run logged for ``run_dir`` (its own store by default)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri or f"sqlite:///{run_dir / 'mlflow.db'}")
    run_id = json.loads((run_dir / "mlflow" / "state.json").read_text())["run_id"]
    return client, client.get_run(run_id)


def wandb_history(run_dir: Path) -> list[dict]:
    """The history rows of every offline W&B run file under ``run_dir`` (the .wandb files are LevelDB-style logs
    of protobuf records: 32 KiB blocks, 7-byte chunk headers, a 7-byte file header)."""
    from wandb.proto import wandb_internal_pb2

    rows = []
    for path in sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb")):
        data, offset, pending = path.read_bytes(), 7, b""
        while offset + 7 <= len(data):
            left = 32768 - offset % 32768
            if left < 7:
                offset += left
                continue
            _, length, kind = struct.unpack("<IHB", data[offset:offset + 7])
            chunk, offset = data[offset + 7:offset + 7 + length], offset + 7 + length
            if kind == 0 and length == 0:
                offset += left - 7
                continue
            pending = chunk if kind in (1, 2) else pending + chunk
            if kind in (1, 4):
                record = wandb_internal_pb2.Record()
                record.ParseFromString(pending)
                if record.WhichOneof("record_type") == "history":
                    rows.append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json)
                                 for i in record.history.item})
    return rows


def expected(run_dir: Path) -> dict[str, dict[int, float]]:
    """Every number of the run's train and eval records, by logger name and step."""
    out: dict[str, dict[int, float]] = {}
    for record in RunDirectory(run_dir).read_records("metrics"):
        if record["kind"] in ("train", "eval"):
            for name, value in scalars(record, record["kind"]).items():
                out.setdefault(name, {})[record["step"]] = value
    return out


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    pytest.importorskip("mlflow")
    pytest.importorskip("wandb")
    root = tmp_path_factory.mktemp("trackers")
    here = Path.cwd()
    os.chdir(root)  # where the command runs: nothing may land there, outside the run directory
    try:
        result = runner.invoke(app, ["train", "--profile", "smoke", "--steps", "40", *SETTINGS, "--log-to",
                                     "mlflow", "--log-to", "wandb", "--runs-dir", str(root / "runs"), "--run-id", "r"])
    finally:
        os.chdir(here)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in root.iterdir()) == ["runs"]
    assert list((root / "runs" / "r" / "mlflow").rglob("events.txt"))  # the artifacts beside the run's store
    return root / "runs" / "r"


def test_mlflow_holds_every_number_the_configuration_and_the_event_log(logged):
    client, run = mlflow_run(logged)
    assert run.info.run_name == "r" and run.info.status == "FINISHED"
    assert run.data.params["train.track"] == "C" and run.data.params["train.steps"] == "40"
    numbers = expected(logged)
    assert "eval/formulas/ratio_of_sums/d_shift" in numbers and "train/loss_pred" in numbers
    for name, by_step in numbers.items():
        history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, name)}
        assert history == pytest.approx(by_step, rel=1e-6, abs=1e-30), name
    events = Path(client.download_artifacts(run.info.run_id, "events.txt", str(logged.parent))).read_text()
    assert "started on cpu" in events and "ended at step 40" in events
    figures = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "figures")}
    assert "fig3_d_shift.png" in figures and "fig5_sigma_z.png" in figures


def test_wandb_offline_holds_every_number(logged):
    rows = wandb_history(logged)
    got: dict[str, dict[int, float]] = {}
    images = {}
    for row in rows:
        for name, value in row.items():
            if name.startswith("figures/"):  # the report's figures at the run's end: figures/<name>/<field>
                figure, field = name.rsplit("/", 1)
                images.setdefault(figure, {"step": row["_step"]})[field] = value
            elif not name.startswith("_"):
                got.setdefault(name, {})[row["_step"]] = value
    assert "figures/fig3_d_shift" in images and {image["step"] for image in images.values()} == {40}
    for image in images.values():
        assert image["_type"] == "image-file" and image["format"] == "png"
        assert next(logged.glob(f"wandb/offline-run-*/files/{image['path']}")).read_bytes()[:4] == b"\x89PNG"
    numbers = expected(logged)
    assert set(got) == set(numbers)
    for name, by_step in numbers.items():
        assert got[name] == pytest.approx(by_step, rel=1e-6, abs=1e-30), name
    assert json.loads((logged / "wandb" / "state.json").read_text())["logged"] == {"train": 40, "eval": 40}


def test_a_resumed_run_continues_the_same_tracker_runs_with_each_step_once(tmp_path):
    pytest.importorskip("mlflow")
    pytest.importorskip("wandb")
    config = load_config("smoke", ["train.steps=60", "eval.every_steps=20", 'train.loggers=["mlflow", "wandb"]'])
    prepared = prepare_run(config, torch.device("cpu"), tmp_path, "r")
    trainer, run = prepared.trainer, tmp_path / "r"
    loggers = [MlflowLogger(run, config), WandbLogger(run, config)]
    RunLoop(trainer, prepared.directory, loggers,
            should_stop=lambda: "stop" if trainer.progress.step >= 40 else None).run()
    client, first = mlflow_run(run)[0], mlflow_run(run)[1].info.run_id
    from mlflow.entities import Metric

    # a session killed after logging step 50 (its checkpoint was at 40): the resumed run recomputes 41-50 and
    # must not log step 50 again
    client.log_batch(first, metrics=[Metric("train/loss", 99.0, 0, 50)])
    state = json.loads((run / "mlflow" / "state.json").read_text())
    (run / "mlflow" / "state.json").write_text(json.dumps({**state, "logged": {"train": 50, "eval": 40}}))
    result = runner.invoke(app, ["train", "--resume", str(run)])
    assert result.exit_code == 0, result.output
    client, again = mlflow_run(run)
    assert again.info.run_id == first and again.info.status == "FINISHED"
    history = sorted(client.get_metric_history(first, "train/loss"), key=lambda m: m.step)
    assert [m.step for m in history] == [10, 20, 30, 40, 50, 60] and history[4].value == 99.0
    assert [m.step for m in client.get_metric_history(first, "eval/d_shift")] == [20, 40, 60]
    steps = [row["_step"] for row in wandb_history(run) if "train/loss" in row]
    assert steps == [10, 20, 30, 40, 50, 60]
    assert len(list(run.glob("wandb/offline-run-*"))) == 2  # two sessions of one W&B run id
    run_id = json.loads((run / "wandb" / "state.json").read_text())["run_id"]
    assert all(f"-{run_id}" in p.name for p in run.glob("wandb/offline-run-*"))


def test_a_tracker_that_fails_mid_run_never_stops_the_run(tmp_path, capsys):
    pytest.importorskip("mlflow")
    config = load_config("smoke", ["train.steps=40", "eval.every_steps=20"])
    prepared = prepare_run(config, torch.device("cpu"), tmp_path, "r")
    logger = MlflowLogger(tmp_path / "r", config)
    real, calls = logger.client.log_batch, {"n": 0}

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 1:  # the records up to the first evaluation go, the next batch fails
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    logger.client.log_batch = failing
    summary = RunLoop(prepared.trainer, prepared.directory, [logger]).run()
    assert summary["status"] == "done" and summary["steps"] == 40
    said = capsys.readouterr().err
    assert said.count("MLflow logging to") == 1 and "No space left on device" in said and logger.failed
    assert [r["step"] for r in RunDirectory(tmp_path / "r").read_records("metrics") if r["kind"] == "train"] == \
        [10, 20, 30, 40]


@pytest.mark.parametrize(("name", "module"), [("mlflow", "mlflow"), ("mlflow", "sqlalchemy"), ("wandb", "wandb")])
def test_a_missing_tracker_library_is_refused_before_any_directory_exists(tmp_path, monkeypatch, name, module):
    for library in LIBRARIES[name]:  # loaded first: MLflow remembers a sqlalchemy it could not import at its own
        pytest.importorskip(library)  # first import, which would break the MLflow tests after this one
    monkeypatch.setitem(sys.modules, module, None)  # import fails
    result = runner.invoke(app, ["train", "--profile", "smoke", "--log-to", name, "--runs-dir", str(tmp_path / "r")])
    assert result.exit_code == 2 and f"pip install 'jepa-tui[{name}]'" in result.output
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("to", ["mlflow", "wandb"])
def test_export_replays_a_finished_run_into_mlflow_and_wandb(tmp_path, to):
    pytest.importorskip(to)
    result = runner.invoke(app, ["train", "--profile", "smoke", "--steps", "20", *SETTINGS, "--runs-dir",
                                 str(tmp_path / "runs"), "--run-id", "r"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "r"
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    result = runner.invoke(app, ["export", str(run), "--to", to, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    out = tmp_path / "out" / "r"
    if to == "mlflow":
        client, exported = mlflow_run(out)
        for name, by_step in expected(run).items():
            assert {m.step: m.value for m in client.get_metric_history(exported.info.run_id, name)} == \
                pytest.approx(by_step, rel=1e-6, abs=1e-30), name
    else:
        steps = sorted({row["_step"] for row in wandb_history(out)})
        assert steps == sorted({s for by_step in expected(run).values() for s in by_step})
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_an_export_into_the_run_directory_names_the_tracker_run_after_the_run(tmp_path):
    """Without --out the export lands in RUN_DIR/mlflow-export; the MLflow run is still named after the run (not
    after that folder), and its event log is the run's."""
    pytest.importorskip("mlflow")
    result = runner.invoke(app, ["train", "--profile", "smoke", "--steps", "20", *SETTINGS, "--runs-dir",
                                 str(tmp_path), "--run-id", "r"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["export", str(tmp_path / "r"), "--to", "mlflow"])
    assert result.exit_code == 0, result.output
    client, exported = mlflow_run(tmp_path / "r" / "mlflow-export")
    assert exported.info.run_name == "r"
    events = Path(client.download_artifacts(exported.info.run_id, "events.txt", str(tmp_path))).read_text()
    assert "ended at step 20" in events
