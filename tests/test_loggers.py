"""Record loggers (train.loggers, --log-to): what TensorBoard holds equals the run's own records; a logger that
fails never stops the run; a resumed run's logs hold each step once; a missing library is refused up front."""

import json
import math
import sys

import pytest
import torch
from typer.testing import CliRunner

from jepa_tui.cli.main import app
from jepa_tui.config import load_config
from jepa_tui.reporting.publish import run_figures
from jepa_tui.runs import RunDirectory
from jepa_tui.training.loggers import TensorBoardLogger, scalars
from jepa_tui.training.loop import RunLoop
from jepa_tui.training.session import prepare_run

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

runner = CliRunner()
SETTINGS = ["--set", "eval.every_steps=20", "--log-to", "tensorboard"]


def read_back(log_dir) -> EventAccumulator:
    accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def test_tensorboard_holds_every_number_of_the_records(tmp_path):
    result = runner.invoke(app, ["train", "--profile", "smoke", "--steps", "40", *SETTINGS, "--runs-dir",
                                 str(tmp_path), "--run-id", "r"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "r"
    logged = read_back(run / "tensorboard")
    tags = set(logged.Tags()["scalars"])
    metrics = RunDirectory(run).read_records("metrics")
    for kind, prefix in (("train", "train"), ("eval", "eval")):
        records = [r for r in metrics if r["kind"] == kind]
        assert records
        for tag in scalars(records[0], prefix):
            assert tag in tags, tag
            series = {e.step: e.value for e in logged.Scalars(tag)}
            for record in records:
                expected = scalars(record, prefix).get(tag)
                if expected is not None:
                    assert series[record["step"]] == pytest.approx(expected, rel=1e-6, abs=1e-30), (tag, record)
    assert "eval/formulas/ratio_of_sums/d_shift" in tags and "train/loss_pred" in tags
    texts = [t.tensor_proto.string_val[0].decode() for t in logged.Tensors("events/text_summary")]
    assert any(t.startswith("started on cpu") for t in texts) and any(t.startswith("ended at step 40") for t in texts)
    assert 'track = "C"' in logged.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    # the report's figures of the run, as images at its last step
    figures = run_figures(run, tmp_path / "drawn")
    assert figures and set(logged.Tags()["images"]) == {f"figures/{p.stem}" for p in figures}
    shown = logged.Images("figures/fig3_d_shift")
    assert [i.step for i in shown] == [40] and shown[0].width > 300 and shown[0].encoded_image_string[:4] == b"\x89PNG"


def test_a_figure_that_cannot_be_drawn_costs_the_logger_nothing_else(tmp_path, capsys):
    config = load_config("smoke", ["train.steps=20", "eval.every_steps=20"])
    prepared = prepare_run(config, torch.device("cpu"), tmp_path, "r")

    def broken(run_dir, folder):
        raise RuntimeError("no fonts")

    logger = TensorBoardLogger(tmp_path / "r" / "tensorboard", config).with_figures(broken, tmp_path / "r")
    summary = RunLoop(prepared.trainer, prepared.directory, [logger]).run()
    assert summary["status"] == "done" and logger.failed is None and logger.writer is None  # finished, closed
    said = capsys.readouterr().err
    assert said.count("figures were not logged") == 1 and "no fonts" in said and "jepa-tui report" in said
    logged = read_back(tmp_path / "r" / "tensorboard")
    assert logged.Tags()["images"] == [] and [e.step for e in logged.Scalars("train/loss")] == [10, 20]


def test_a_run_group_sends_each_members_records_to_its_own_logs(tmp_path):
    result = runner.invoke(app, ["train", "--profile", "smoke", "--steps", "20", "--seeds", "42", "--seeds", "43",
                                 *SETTINGS, "--runs-dir", str(tmp_path), "--run-id", "g"])
    assert result.exit_code == 0, result.output
    losses = {}
    for seed in (42, 43):
        run = tmp_path / f"g_s{seed}"
        records = [r for r in RunDirectory(run).read_records("metrics") if r["kind"] == "train"]
        logged = read_back(run / "tensorboard")
        series = [(e.step, e.value) for e in logged.Scalars("train/loss")]
        assert series == [(r["step"], pytest.approx(r["loss"], rel=1e-6)) for r in records]
        assert "figures/fig3_d_shift" in logged.Tags()["images"], result.output
        losses[seed] = [v for _, v in series]
    assert "were not logged" not in result.output  # the members drew at once: matplotlib must render in turn
    assert losses[42] != losses[43]  # each member's own records, not one run's twice


def test_a_logger_that_fails_mid_run_never_stops_the_run(tmp_path, capsys, monkeypatch):
    config = load_config("smoke", ["train.steps=40", "eval.every_steps=20"])
    prepared = prepare_run(config, torch.device("cpu"), tmp_path, "r")
    logger = TensorBoardLogger(tmp_path / "r" / "tensorboard", config)
    calls = {"n": 0}
    real = logger.writer.add_scalar

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 30:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(logger.writer, "add_scalar", failing)
    summary = RunLoop(prepared.trainer, prepared.directory, [logger]).run()
    assert summary["status"] == "done" and summary["steps"] == 40
    said = capsys.readouterr().err
    assert said.count("TensorBoard logging to") == 1 and "No space left on device" in said
    assert "the run goes on" in said and logger.failed is not None
    metrics = RunDirectory(tmp_path / "r").read_records("metrics")
    assert [r["step"] for r in metrics if r["kind"] == "train"] == [10, 20, 30, 40]  # every record kept


def test_a_resumed_run_logs_each_step_once(tmp_path):
    config = load_config("smoke", ["train.steps=60", "eval.every_steps=20", 'train.loggers=["tensorboard"]'])
    prepared = prepare_run(config, torch.device("cpu"), tmp_path, "r")
    trainer = prepared.trainer
    logger = TensorBoardLogger(tmp_path / "r" / "tensorboard", config)
    RunLoop(trainer, prepared.directory, [logger], should_stop=lambda: "stop" if trainer.progress.step >= 40 else None
            ).run()
    from torch.utils.tensorboard import SummaryWriter

    killed = SummaryWriter(str(tmp_path / "r" / "tensorboard"))  # an earlier session logged past the checkpoint
    for step in range(41, 51):
        killed.add_scalar("train/loss", 99.0, step)
    killed.close()
    result = runner.invoke(app, ["train", "--resume", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    steps = [e.step for e in read_back(tmp_path / "r" / "tensorboard").Scalars("train/loss")]
    assert steps == [10, 20, 30, 40, 50, 60]
    values = {e.step: e.value for e in read_back(tmp_path / "r" / "tensorboard").Scalars("train/loss")}
    assert all(v != 99.0 for v in values.values())


def test_a_missing_logger_library_is_refused_before_any_directory_exists(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import fails
    result = runner.invoke(app, ["train", "--profile", "smoke", "--log-to", "tensorboard", "--runs-dir",
                                 str(tmp_path / "runs")])
    assert result.exit_code == 2 and "pip install 'jepa-tui[tensorboard]'" in result.output
    assert not (tmp_path / "runs").exists()
    result = runner.invoke(app, ["train", "--profile", "smoke", "--log-to", "neptune", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and "train.loggers" in result.output and "'tensorboard', 'mlflow', 'wandb'" in \
        result.output


def test_scalars_flatten_nested_fields_and_skip_what_is_not_a_finite_number():
    record = {"kind": "eval", "step": 5, "d_shift": 0.9, "formulas": {"r2": {"d_shift": 0.5}}, "ttt": None,
              "flag": True, "bad": math.inf, "name": "x"}
    assert scalars(record, "eval") == {"eval/d_shift": 0.9, "eval/formulas/r2/d_shift": 0.5}
    assert json.dumps(record, default=str)  # untouched


def test_export_replays_a_finished_run_as_the_live_logger_wrote_it(tmp_path):
    result = runner.invoke(app, ["train", "--profile", "smoke", "--steps", "20", *SETTINGS, "--runs-dir",
                                 str(tmp_path / "runs"), "--run-id", "r"])
    assert result.exit_code == 0, result.output
    before = {p: p.read_bytes() for p in (tmp_path / "runs" / "r").rglob("*") if p.is_file()}
    result = runner.invoke(app, ["export", str(tmp_path / "runs"), "--out", str(tmp_path / "tb")])
    assert result.exit_code == 0, result.output
    live, exported = read_back(tmp_path / "runs" / "r" / "tensorboard"), read_back(tmp_path / "tb" / "r")
    assert set(live.Tags()["scalars"]) == set(exported.Tags()["scalars"])
    for tag in live.Tags()["scalars"]:
        assert [(e.step, e.value) for e in live.Scalars(tag)] == [(e.step, e.value) for e in exported.Scalars(tag)]
    assert {p: p.read_bytes() for p in (tmp_path / "runs" / "r").rglob("*") if p.is_file()} == before
    again = runner.invoke(app, ["export", str(tmp_path / "runs"), "--out", str(tmp_path / "tb")])
    assert again.exit_code == 2 and "exists already" in again.output
