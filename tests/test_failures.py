"""Failures mid-run: a non-finite loss (exit 3), a full disk (exit 74), a second Ctrl-C (exit at once)."""

import errno
import json
import signal

import pytest
import torch
from typer.testing import CliRunner

from jepa_tui.cli.main import app
from jepa_tui.cli.signals import SignalStop
from jepa_tui.runs import checkpoint as checkpoint_module
from jepa_tui.runs import load_checkpoint

runner = CliRunner()


def events_of(run_dir):
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def test_a_diverging_run_stops_with_exit_3_and_keeps_the_last_good_checkpoint(tmp_path):
    # a learning rate of 30 (reached over a long warm-up) diverges between steps 5 and 10
    result = runner.invoke(app, ["train", "--profile", "smoke", "--set", "train.lr=30", "--set",
                                 "train.warmup_frac=0.9", "--set", "eval.every_steps=5", "--runs-dir", str(tmp_path),
                                 "--run-id", "nan"])
    assert result.exit_code == 3, result.output
    assert "non-finite values at step 10: loss nan" in result.output
    assert "the last good checkpoint (step 5) is kept" in result.output
    assert "Try a lower learning rate" in result.output and "Traceback" not in result.output
    run_dir = tmp_path / "nan"
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["step_00000005.pt"]
    state = load_checkpoint(run_dir / "checkpoints" / "step_00000005.pt")
    assert all(torch.isfinite(v).all() for v in state["trainer"]["model"].values() if v.is_floating_point())
    (bad,) = [e for e in events_of(run_dir) if e["kind"] == "non_finite"]
    assert bad["detected_at_step"] == 10 and bad["last_checkpoint_step"] == 5
    assert bad["terms"] == {"loss": "nan", "loss_pred": "nan", "loss_var": "nan"}
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "non-finite" in summary["error"]


def test_a_full_disk_stops_cleanly_and_damages_nothing(tmp_path, monkeypatch):
    real_save = torch.save
    calls = []

    def save(obj, fh):
        calls.extend([1] if "trainer" in obj else [])  # checkpoints only (weights/ are written beside them)
        if "trainer" in obj and len(calls) == 2:  # the second checkpoint (step 40) hits a full disk half-way
            fh.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, fh)

    monkeypatch.setattr(checkpoint_module.torch, "save", save)
    result = runner.invoke(app, ["train", "--profile", "smoke", "--runs-dir", str(tmp_path), "--run-id", "full"])
    assert result.exit_code == 74, result.output
    assert "no space left on the device" in result.output and "Traceback" not in result.output
    assert "jepa-tui train --resume" in result.output
    run_dir = tmp_path / "full"
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step_00000020.pt"]  # no .tmp left
    assert load_checkpoint(run_dir / "checkpoints" / "step_00000020.pt")["trainer"]["progress"]["step"] == 20
    for name in ("metrics.jsonl", "events.jsonl"):
        assert all(json.loads(line) for line in (run_dir / name).read_text().splitlines())
    monkeypatch.undo()
    resumed = runner.invoke(app, ["train", "--resume", str(run_dir)])
    assert resumed.exit_code == 0, resumed.output
    assert "moved 3 records after step 20" in resumed.output  # train@30, train@40, eval@40: recomputed


def test_an_unwritable_runs_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    result = runner.invoke(app, ["train", "--profile", "smoke", "--runs-dir", str(blocker / "runs")])
    assert result.exit_code == 2 and "cannot create run directory" in result.output
    assert "Traceback" not in result.output and blocker.read_text() == "not a folder"


def test_a_second_sigint_exits_at_once(monkeypatch, capsys):
    exits = []
    monkeypatch.setattr("jepa_tui.cli.signals.os._exit", exits.append)
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the tests run in a background job
    with SignalStop() as stop:
        assert stop() is None
        signal.raise_signal(signal.SIGINT)
        assert stop() == "SIGINT" and stop.exit_code == 130 and exits == []
        signal.raise_signal(signal.SIGTERM)  # later signals other than SIGINT change nothing
        assert stop() == "SIGINT" and exits == []
        signal.raise_signal(signal.SIGINT)
        assert exits == [130]
    assert signal.getsignal(signal.SIGINT) is before  # restored on exit
    err = capsys.readouterr().err
    assert "saving a checkpoint at the end of this step" in err and "second SIGINT: exiting now" in err


@pytest.mark.parametrize(("name", "code"), [("SIGTERM", 143), ("SIGHUP", 143)])
def test_sigterm_and_sighup_map_to_143(name, code, monkeypatch):
    with SignalStop() as stop:
        signal.raise_signal(getattr(signal, name))
        assert stop() == name and stop.exit_code == code


def test_files_the_tool_writes_honour_the_umask(tmp_path):
    """Atomic writes go through mkstemp (mode 0600): the renamed file must get what open() would give it."""
    import os

    from jepa_tui.runs.files import atomic_write_text

    old = os.umask(0o027)
    try:
        from jepa_tui.runs import files

        files.process_umask.cache_clear()
        atomic_write_text(tmp_path / "a.txt", "x")
        assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)
        files.process_umask.cache_clear()
    result = runner.invoke(app, ["train", "--profile", "smoke", "--runs-dir", str(tmp_path), "--run-id", "u",
                                 "--threads", "1", "--steps", "20"])
    assert result.exit_code == 0, result.output
    expected = 0o666 & ~old
    for name in ("config.toml", "summary.json", "checkpoints/step_00000020.pt", "weights/step_00000020.pt"):
        assert (tmp_path / "u" / name).stat().st_mode & 0o777 == expected, name
