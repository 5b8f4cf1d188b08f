"""Hostile runs, round 3: readers that skip what they cannot read, a run that never writes, moves or deletes outside
its directory, checkpoints checked field by field before use, commands that check before they create, digit files
checked before training. Each case is exit 0 or 2 without a traceback, and nothing outside the run changes."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from jepa_tui.cli.main import app
from jepa_tui.cli.signals import SignalStop

runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished smoke run (checkpoints and weights at steps 20 and 40), copied by :func:`run`."""
    root = tmp_path_factory.mktemp("finished")
    assert invoke("train", "--profile", "smoke", "--runs-dir", root, "--run-id", "r").exit_code == 0
    return root / "r"


@pytest.fixture
def run(finished, tmp_path) -> Path:
    shutil.copytree(finished, tmp_path / "r", symlinks=True)
    return tmp_path / "r"


def _ok_or_2(result) -> None:
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output, result.output


def _edit_records(path: Path, kind: str, **values: object) -> None:
    lines = path.read_text().splitlines()
    index = max(i for i, line in enumerate(lines) if json.loads(line).get("kind") == kind)
    record = json.loads(lines[index]) | values
    lines[index] = json.dumps(record)  # NaN and Infinity as Python's json writes them
    path.write_text("\n".join(lines) + "\n")


def _edit_checkpoint(path: Path, edit) -> None:
    state = torch.load(path, weights_only=True)
    edit(state)
    torch.save(state, path)


# -- readers -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["directory", "fifo", "symlink loop"])
def test_report_skips_records_that_are_not_regular_files(run, kind):
    metrics = run / "metrics.jsonl"
    metrics.unlink()
    {"directory": metrics.mkdir, "fifo": lambda: os.mkfifo(metrics),
     "symlink loop": lambda: metrics.symlink_to(metrics.name)}[kind]()
    result = invoke("report", run)
    assert result.exit_code == 2 and "unreadable records" in result.output and "Traceback" not in result.output


def test_report_takes_infinite_counts_and_non_finite_d_shift(run):
    _edit_records(run / "metrics.jsonl", "train", buffer_size=float("inf"), boundary_events=-3)
    _edit_records(run / "metrics.jsonl", "eval", d_shift=float("nan"), sigma_z="x")
    result = invoke("report", run)
    assert result.exit_code == 0, result.output
    assert "D_shift not finite at step 40 (diverged)" in result.output
    assert (run.parent / "figures" / "fig3_d_shift.png").stat().st_size > 1000


def test_analyze_skips_non_finite_weights(run):
    _edit_checkpoint(run / "weights" / "step_00000040.pt",
                     lambda s: next(iter(s["model"].values())).fill_(float("nan")))
    result = invoke("analyze", run)
    assert result.exit_code == 0, result.output
    assert "40     skipped: non-finite weights" in result.output
    assert json.loads((run / "analysis" / "step_00000020.json").read_text())["step"] == 20
    assert not (run / "analysis" / "step_00000040.json").exists()
    only = invoke("analyze", run, "--step", "40")
    assert only.exit_code == 2 and "non-finite weights" in only.output


# -- a run stays inside its directory ------------------------------------------------------------------------------
@pytest.mark.parametrize("folder", ["checkpoints", "weights", "requests/rejected"])
def test_a_linked_folder_is_refused_before_anything_is_written(run, tmp_path, folder):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "step_00000001.pt").write_bytes(b"somebody else's")
    target = run / folder
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(exist_ok=True)
    target.symlink_to(outside)
    before = (run / "metrics.jsonl").read_bytes()
    result = invoke("train", "--resume", run, "--steps", "60", "--force")
    assert result.exit_code == 2 and f"'{target}' is a link" in result.output
    assert sorted(p.name for p in outside.iterdir()) == ["step_00000001.pt"]
    assert (run / "metrics.jsonl").read_bytes() == before


def test_pruning_deletes_only_checkpoints_the_run_wrote(run):
    foreign = run / "checkpoints" / "step_00000001.pt"
    shutil.copy(run / "checkpoints" / "step_00000020.pt", foreign)  # a file the run never wrote
    renamed = run / "checkpoints" / "step_00000030.pt"
    renamed.write_bytes(b"not a checkpoint")  # a name the run never recorded
    result = invoke("train", "--resume", run, "--steps", "80", "--force")
    assert result.exit_code == 0, result.output
    kept = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert "step_00000001.pt" in kept and "step_00000030.pt" in kept and "step_00000080.pt" in kept
    assert "step_00000020.pt" not in kept  # the run's own, pruned
    recorded = [e for e in map(json.loads, (run / "events.jsonl").read_text().splitlines())
                if e["kind"] == "checkpoint" and e["step"] == 80]
    assert len(recorded[0]["sha256"]) == 64


def test_a_linked_rejected_folder_moves_nothing_out(run, tmp_path):
    from jepa_tui.training.control import take_requests

    outside = tmp_path / "outside"
    outside.mkdir()
    (run / "requests").mkdir()
    (run / "requests" / "rejected").symlink_to(outside)
    (run / "requests" / "junk.json").write_text("[1]")
    commands, rejected = take_requests(run)
    assert commands == [] and rejected[0].moved_to is None
    assert list(outside.iterdir()) == [] and not (run / "requests" / "junk.json").exists()


# -- checkpoints checked before use --------------------------------------------------------------------------------
@pytest.mark.parametrize(("edit", "said"), [
    (lambda s: s["trainer"]["progress"].update(step=-5), "progress.step is -5; the file is named for step 40"),
    (lambda s: s["trainer"]["progress"].update(step="x"), "progress.step is 'x'"),
    (lambda s: s["trainer"]["progress"].update(seconds=float("inf")), "progress.seconds is inf"),
    (lambda s: s["trainer"].update(buffer_frozen=3), "buffer_frozen is 3"),
    (lambda s: next(iter(s["trainer"]["model"].values())).fill_(float("nan")), "holds non-finite values (model."),
    (lambda s: next(iter(s["trainer"]["optimizer"]["state"].values()))["exp_avg_sq"].fill_(float("inf")),
     "holds non-finite values (optimizer.state."),
])
def test_a_checkpoint_is_checked_field_by_field_before_resuming(run, edit, said):
    _edit_checkpoint(run / "checkpoints" / "step_00000040.pt", edit)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != "writer.lock"}
    result = invoke("train", "--resume", run, "--steps", "60", "--force")
    assert result.exit_code == 2 and said in result.output, result.output
    assert "delete it to resume from step_00000020.pt" in result.output and "Traceback" not in result.output
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != "writer.lock"} == before


def test_a_forced_resume_that_changes_the_model_changes_nothing(run):
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != "writer.lock"}
    result = invoke("train", "--resume", run, "--steps", "60", "--force", "--set", "model.latent_dim=8")
    assert result.exit_code == 2 and "does not fit the configuration (size mismatch" in result.output
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != "writer.lock"} == before


# -- check before creating -----------------------------------------------------------------------------------------
def test_a_folder_named_like_a_temporary_file_does_not_block_resuming(run):
    (run / "checkpoints" / ".step_00000040.pt.x.tmp").mkdir()
    result = invoke("train", "--resume", run, "--steps", "60", "--force")
    assert result.exit_code == 0, result.output
    assert (run / "checkpoints" / ".step_00000040.pt.x.tmp").is_dir()  # not the run's: left alone


def test_a_run_group_with_a_taken_member_name_creates_nothing(tmp_path):
    (tmp_path / "g_s43").mkdir()
    result = invoke("train", "--profile", "smoke", "--seeds", "42", "--seeds", "43", "--runs-dir", tmp_path,
                    "--run-id", "g", "--steps", "2")
    assert result.exit_code == 2 and "g_s43' exists already" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g_s43"]


def test_a_run_directory_that_cannot_be_written_leaves_no_stub(tmp_path, monkeypatch):
    from jepa_tui.runs import RunDirError
    from jepa_tui.runs.directory import RunDirectory

    def full_disk(self, config, description):
        raise RunDirError("cannot write config.toml: No space left on device")

    monkeypatch.setattr(RunDirectory, "write_config", full_disk)
    result = invoke("train", "--profile", "smoke", "--runs-dir", tmp_path, "--run-id", "r", "--steps", "2")
    assert result.exit_code == 2 and "No space left on device" in result.output
    assert list(tmp_path.iterdir()) == []


# -- data files, sweep tables, empty profiles, signals -------------------------------------------------------------
@pytest.mark.parametrize(("pixels", "said"), [
    (np.full((20, 28, 28), 1e6), "float64 pixels in [1e+06, 1e+06]"),
    (np.random.default_rng(0).random((20, 28, 28)), "expected integers 0-255"),
    (np.random.default_rng(0).integers(1, 255, (1, 28, 28)).astype(np.uint8), "holds 1 images"),
    (np.zeros((30, 28, 28), np.uint8), "30 of them blank"),
    (np.array([["a"] * 28] * 28 * 20).reshape(20, 28, 28), "holds <U1 values"),
])
def test_digit_files_are_checked_before_training(tmp_path, pixels, said):
    path = tmp_path / "digits.npz"
    np.savez(path, x_train=pixels)
    result = invoke("train", "--profile", "smoke", "--runs-dir", tmp_path / "runs", "--steps", "2",
                    "--set", f'data.digits="{path}"')
    assert result.exit_code == 2 and said in result.output and f"'{path}'" in result.output, result.output
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


@pytest.mark.parametrize(("body", "said"), [
    ('[sweep]\nbase = "smoke"\nvariant = [1]\n', "'variant' must be an array of tables"),
    ('[sweep]\nbase = "smoke"\nvariant = {name = "x"}\n', "'variant' must be an array of tables"),
    ('[sweep]\nbase = "smoke"\nseeds = "42"\n', "'seeds' must be an array of integers"),
    ('[sweep]\nbase = "smoke"\ntracks = [1]\n', "'tracks' must be an array of track letters"),
    ('[sweep]\nbase = "smoke"\n[[sweep.variant]]\nname = "v"\ntracks = "A"\n', "'tracks' must be an array"),
    ('sweep = 3\n', "'sweep' must be a table"),
])
def test_bad_sweep_tables_are_exit_2(tmp_path, body, said):
    (tmp_path / "s.toml").write_text(body)
    result = invoke("sweep", "--profile", tmp_path / "s.toml", "--runs-dir", tmp_path / "runs")
    _ok_or_2(result)
    assert result.exit_code == 2 and said in result.output, result.output


def test_an_empty_profile_says_so_where_the_budget_is_named(tmp_path):
    from jepa_tui.cli.options import budget_source as _budget_source

    for body in ("", 'description = "nothing else"\n'):
        (tmp_path / "empty.toml").write_text(body)
        said = _budget_source(str(tmp_path / "empty.toml"), None, None, None)
        assert said == f"the defaults: profile {tmp_path / 'empty.toml'} is empty, so every setting is the default"
    (tmp_path / "some.toml").write_text("[model]\nlatent_dim = 8\n")
    assert _budget_source(str(tmp_path / "some.toml"), None, None, None).endswith("sets no budget")


def test_after_a_stop_signal_a_second_sighup_or_sigterm_is_ignored():
    previous = {s: signal.getsignal(s) for s in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)}
    try:
        with SignalStop() as stop:
            os.kill(os.getpid(), signal.SIGHUP)
            assert stop() == "SIGHUP"
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN == signal.getsignal(signal.SIGTERM)
        assert signal.getsignal(signal.SIGINT) == previous[signal.SIGINT]
        with SignalStop():
            pass  # no stop: the handlers before it come back
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN  # (as they were when it was entered)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def test_found_by_fuzzing_a_planted_eval_record_and_a_directory_of_records(run):
    """A metrics.jsonl holding one eval record without D_shift made a resumed run fail at its summary (KeyError);
    a metrics.jsonl that is a directory made watch's reader raise IsADirectoryError."""
    from jepa_tui.runs import JsonlTail
    from jepa_tui.ui.state import RunState

    (run / "metrics.jsonl").write_text('{"kind": "eval", "step": 1, "pad": "x"}\n')
    state = RunState(track="C")
    for record in JsonlTail(run / "metrics.jsonl").read():
        state.ingest(record)
    assert state.skipped_records == 1 and state.peak_d_shift is None
    result = invoke("train", "--resume", run, "--steps", "60", "--force")
    _ok_or_2(result)
    assert result.exit_code == 0
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").mkdir()
    assert JsonlTail(run / "metrics.jsonl").read() == []
