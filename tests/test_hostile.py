"""Hostile run directories and inputs: whatever is put in a run directory, whatever values pass validation, a run
never crashes without a checkpoint, never writes outside its folder, never follows a planted symlink, never has
two writers, and every bad input is exit 2 (or a logged, skipped record) naming the file, never a traceback."""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from jepa_tui.cli.main import app
from jepa_tui.config import load_config
from jepa_tui.runs import RunDirectory
from jepa_tui.runs.files import DirectoryBusy
from jepa_tui.training.control import Command, take_requests
from jepa_tui.training.loop import RunLoop
from jepa_tui.training.session import prepare_run

runner = CliRunner()
CPU = torch.device("cpu")


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jepa_tui.cli.main", *map(str, args)], capture_output=True,
                          text=True, timeout=300, **kw)


def events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def _hostile_entries(folder: Path, rng: random.Random) -> dict[str, str]:
    """Fill ``folder`` with every kind of bad request (and one good one); returns name -> what it is."""
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    values = [[1], "pause", None, 3.5, {}, {"command": 5}, {"command": "explode"}, {"cmd": "pause"}, True]
    for i, value in enumerate(values):
        name = f"{i:02d}_json.json"
        (folder / name).write_text(json.dumps(value))
        made[name] = f"JSON {value!r}"
    for i in range(4):
        name = f"{20 + i:02d}_bytes.json"
        (folder / name).write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))))
        made[name] = "random bytes"
    (folder / "30_dir.json").mkdir()
    made["30_dir.json"] = "a directory"
    os.mkfifo(folder / "31_fifo.json")
    made["31_fifo.json"] = "a FIFO"
    os.symlink("/dev/zero", folder / "32_zero.json")
    made["32_zero.json"] = "a symlink to /dev/zero"
    (folder / "33_huge.json").write_bytes(b" " * 200_000)
    made["33_huge.json"] = "a 200 kB file"
    (folder / "40_good.json").write_text(json.dumps({"command": "freeze_buffer"}))
    return made


def test_anything_in_requests_is_set_aside_and_training_goes_on(tmp_path, smoke_worlds):
    config = load_config("smoke", ["train.steps=60"])
    prepared = prepare_run(config, CPU, tmp_path, "r", worlds=smoke_worlds)
    run_dir = tmp_path / "r"
    loop = RunLoop(prepared.trainer, prepared.directory)  # started: what arrives now is not stale
    made = _hostile_entries(run_dir / "requests", random.Random(0))
    (run_dir / "pause_request.flag").mkdir()  # the paper's flag, but a directory
    summary = loop.run()
    assert summary["status"] == "done" and summary["steps"] == 60
    log = events(run_dir)
    rejected = {e["name"]: e for e in log if e["kind"] == "request_rejected"}
    assert set(rejected) == {*made, "pause_request.flag"}
    assert rejected["30_dir.json"]["reason"] == "not a regular file"
    assert rejected["00_json.json"]["reason"] == 'not a JSON object with a "command" string'
    assert "unknown command 'explode'" in rejected["06_json.json"]["reason"]
    assert [e["command"] for e in log if e["kind"] == "command"] == ["freeze_buffer"]  # the one good request
    assert sorted(p.name for p in (run_dir / "requests").iterdir()) == ["rejected"]
    assert len(list((run_dir / "requests" / "rejected").iterdir())) == len(made) + 1
    assert take_requests(run_dir) == ([], [])


def test_a_resume_with_hostile_requests_waiting_goes_on(tmp_path):
    assert invoke("train", "--profile", "smoke", "--steps", "20", "--runs-dir", tmp_path, "--run-id",
                  "r").exit_code == 0
    _hostile_entries(tmp_path / "r" / "requests", random.Random(1))
    os.mkfifo(tmp_path / "r" / "pause_request.flag")
    result = cli("train", "--resume", tmp_path / "r", "--steps", "40", "--force")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def _flip_inside_a_tensor(path: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        member = max(archive.infolist(), key=lambda m: m.file_size)  # the largest tensor's data
    data = bytearray(path.read_bytes())
    middle = member.header_offset + 30 + len(member.filename) + member.extra.__len__() + member.file_size // 2
    data[middle] ^= 0xFF
    data[middle + 1] ^= 0x0F
    path.write_bytes(bytes(data))


@pytest.fixture
def trained(tmp_path):
    """A finished smoke run with checkpoints at steps 20 and 40."""
    assert invoke("train", "--profile", "smoke", "--runs-dir", tmp_path, "--run-id", "r").exit_code == 0
    return tmp_path / "r"


def test_a_damaged_checkpoint_is_refused_with_the_way_back(trained):
    last = trained / "checkpoints" / "step_00000040.pt"
    _flip_inside_a_tensor(last)
    result = invoke("train", "--resume", trained, "--steps", "60", "--force")
    assert result.exit_code == 2 and "fails its CRC check" in result.output
    assert "delete it to resume from step_00000020.pt" in result.output and "Traceback" not in result.output
    assert (trained / "checkpoints" / "step_00000020.pt").is_file() and last.is_file()  # nothing lost
    analysis = invoke("analyze", trained, "--step", "40")  # the weights kept at step 40 are intact
    assert analysis.exit_code == 0, analysis.output
    weights = next((trained / "weights").glob("*40*"))
    _flip_inside_a_tensor(weights)
    analysis = invoke("analyze", trained, "--step", "40")
    assert analysis.exit_code == 2 and "CRC" in analysis.output and "Traceback" not in analysis.output


@pytest.mark.parametrize("kind", ["random bytes", "empty", "directory", "symlink", "json"])
def test_checkpoints_of_every_kind_are_exit_2(trained, kind):
    last = trained / "checkpoints" / "step_00000040.pt"
    last.unlink()
    if kind == "random bytes":
        last.write_bytes(os.urandom(5000))
    elif kind == "empty":
        last.write_bytes(b"")
    elif kind == "directory":
        last.mkdir()
    elif kind == "symlink":
        last.symlink_to(trained / "checkpoints" / "step_00000020.pt")
    else:
        last.write_text(json.dumps({"version": 1, "config": {}, "trainer": {}}))
    result = invoke("train", "--resume", trained, "--steps", "60", "--force")
    assert result.exit_code == 2, result.output
    assert "step_00000040.pt" in result.output and "Traceback" not in result.output
    assert (trained / "checkpoints" / "step_00000020.pt").is_file()


def test_malformed_records_and_summaries_are_skipped_with_a_notice(trained, tmp_path):
    rng = random.Random(3)
    with (trained / "metrics.jsonl").open("ab") as fh:
        for value in ([1], "x", None, {"kind": "eval", "step": None}, {"kind": "eval"}, {"step": 3},
                      {"kind": 5, "step": 1}, {"kind": "eval", "step": -4}, {"kind": "train", "step": True}):
            fh.write(json.dumps(value).encode() + b"\n")
        fh.write(bytes(rng.choice([*range(11, 256)]) for _ in range(64)) + b"\n")  # random bytes, one line
    with (trained / "events.jsonl").open("a") as fh:
        fh.write('{"kind": "command", "step": null}\n[]\n')
    (trained / "summary.json").write_bytes(b"\x00not json")
    report = invoke("report", trained, "--out", tmp_path / "out")
    assert report.exit_code == 0 and "Traceback" not in report.output
    resumed = invoke("train", "--resume", trained, "--steps", "60", "--force")
    assert resumed.exit_code == 0, resumed.output
    assert "skipped 10 malformed line(s) of metrics.jsonl" in resumed.output
    assert "skipped 2 malformed line(s) of events.jsonl" in resumed.output
    (trained / "summary.json").write_text("[1, 2]")
    assert invoke("report", trained, "--out", tmp_path / "out").exit_code == 0


def test_two_writers_never_share_a_run_directory(trained):
    holder = RunDirectory.open(trained).lock()
    try:
        result = invoke("train", "--resume", trained, "--steps", "60", "--force")
        assert result.exit_code == 2 and f"is in use by pid {os.getpid()}" in result.output
        with pytest.raises(DirectoryBusy):
            RunDirectory.open(trained).lock()
    finally:
        holder.close()
    first = subprocess.Popen([sys.executable, "-m", "jepa_tui.cli.main", "train", "--resume", str(trained),
                              "--steps", "3000", "--force"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "resume" not in (trained / "events.jsonl").read_text():
            time.sleep(0.2)
        second = cli("train", "--resume", trained, "--steps", "3000", "--force")
        assert second.returncode == 2 and "is in use by pid" in second.stderr, second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=60)
    assert first.returncode == 143
    ends = [e for e in events(trained) if e["kind"] == "end"]
    assert len(ends) == 2  # the first run and the writer that held it; the refused one wrote nothing


@pytest.mark.parametrize("run_id", ["../../x", "/abs/path", "a/b", "..", ".hidden", "-dash", "x" * 200, ""])
def test_run_ids_cannot_leave_the_runs_directory(tmp_path, run_id):
    runs = tmp_path / "runs"
    result = invoke("train", "--profile", "smoke", "--runs-dir", runs, "--run-id", run_id)
    assert result.exit_code == 2 and "is not allowed" in result.output, result.output
    assert not runs.exists() or not any(runs.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if not runs.exists() else ["runs"])


def test_sweep_ids_and_variant_names_cannot_leave_the_runs_directory(tmp_path):
    profile = tmp_path / "escape.toml"
    profile.write_text('[sweep]\nbase = "smoke"\n[[sweep.variant]]\nname = "../../escaped"\nset = {}\n')
    result = invoke("sweep", "--profile", profile, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and "variant name '../../escaped' is not allowed" in result.output
    result = invoke("sweep", "--profile", "smoke", "--runs-dir", tmp_path / "runs", "--sweep-id", "../up")
    assert result.exit_code == 2 and "--sweep-id '../up' is not allowed" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["escape.toml"]


def test_planted_symlinks_are_never_followed(trained, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for name in (".summary.json.tmp", ".config.toml.tmp", ".metrics.jsonl.tmp"):
        (trained / name).symlink_to(victim)
    (trained / "checkpoints" / ".step_00000060.pt.tmp").symlink_to(victim)
    result = invoke("train", "--resume", trained, "--steps", "60", "--force")
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "precious"
    (trained / "metrics.jsonl").unlink()
    (trained / "metrics.jsonl").symlink_to(victim)  # a symlink in place of a file the run appends to
    result = invoke("train", "--resume", trained, "--steps", "80", "--force")
    assert result.exit_code == 2 and "metrics.jsonl" in result.output, result.output
    assert "symbolic links" in result.output or "not a regular file" in result.output
    assert victim.read_text() == "precious"


@pytest.mark.parametrize(("sets", "message"), [
    (["--seconds", "inf"], "expected a finite number"),
    (["--set", "train.seed=20000000000000"], "'train.seed' = 20000000000000 is out of range"),
    (["--set", "eval.n_experiences=1000000000"], "0 <= value <= 100000"),
    (["--set", "train.batch_size=1000000000"], "2 <= value <= 65536"),
    (["--set", "model.hidden_dim=1000000000"], "1 <= value <= 65536"),
    (["--set", "memory.capacity=1000000000"], "1 <= value <= 100000"),
    (["--set", "data.canvas=1000000000"], "32 <= value <= 1024"),
    (["--set", "train.gamma=inf"], "expected a finite number"),
    (["--set", "memory.kappa=inf"], "expected a finite number"),
    (["--set", "train.var_eps=nan"], "expected a finite number"),
    (["--profile", "quick", "--set", "train.batch_size=60000"], "needs about"),
])
def test_values_that_would_crash_later_are_refused_first(tmp_path, sets, message):
    args = sets if "--profile" in sets else ["--profile", "smoke", *sets]
    result = invoke("train", *args, "--runs-dir", tmp_path)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not any(tmp_path.iterdir())


def test_an_unexpected_error_mid_run_leaves_a_checkpoint_and_a_failed_summary(tmp_path, monkeypatch):
    from jepa_tui.training.trainer import Trainer

    real = Trainer.train_step

    def step(self):
        if self.progress.step == 25:
            raise RuntimeError("a bug")
        real(self)

    monkeypatch.setattr(Trainer, "train_step", step)
    result = invoke("train", "--profile", "smoke", "--runs-dir", tmp_path, "--run-id", "r")
    assert result.exit_code != 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["stop_reason"] == "crash" and "a bug" in summary["error"]
    assert (tmp_path / "r" / "checkpoints" / "step_00000025.pt").is_file()
    assert events(tmp_path / "r")[-1]["kind"] == "end"


def test_output_failures_after_the_run_is_safe_do_not_change_the_exit_code(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "jepa_tui.cli.main", "train", "--profile", "smoke",
                             "--runs-dir", str(tmp_path), "--run-id", "r"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout.readline().startswith(b"run r (new run)")
    proc.stdout.close()  # as `| head -1` does
    proc.wait(timeout=120)
    assert proc.returncode == 0, proc.stderr.read()
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["status"] == "done"


def test_a_crashed_watch_does_not_exit_0(trained, monkeypatch):
    from jepa_tui.ui.app import Dashboard

    def crash(self, *args, **kwargs):
        self._return_code = 1

    monkeypatch.setattr(Dashboard, "run", crash)
    assert invoke("watch", trained).exit_code == 1


def test_a_sweep_passes_signals_on_and_waits_for_its_runs(tmp_path):
    sweep = subprocess.Popen([sys.executable, "-m", "jepa_tui.cli.main", "sweep", "--profile", "smoke", "--steps",
                              "100000", "--runs-dir", str(tmp_path), "--sweep-id", "s"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    run_dir = tmp_path / "s" / "C_s42"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not (run_dir / "metrics.jsonl").is_file():
        time.sleep(0.2)
    assert (run_dir / "metrics.jsonl").is_file()
    child = json.loads((run_dir / "writer.lock").read_text())["pid"]
    sweep.send_signal(signal.SIGTERM)
    output, _ = sweep.communicate(timeout=90)
    assert sweep.returncode == 143, output
    assert "sweep stopped by SIGTERM" in output
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)  # the run ended with the sweep, not after it
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["stop_reason"] == "SIGTERM"
    resumed = invoke("sweep", "--resume", tmp_path / "s", "--set", "x")  # --set with --resume is refused
    assert resumed.exit_code == 2


def test_small_ones(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.toml").write_text('[tool.other]\nname = "not a run"\n')
    for args in (("train", "--resume", foreign), ("analyze", foreign)):
        result = invoke(*args)
        assert result.exit_code == 2 and "Traceback" not in result.output
    assert sorted(p.name for p in foreign.iterdir()) == ["config.toml"]  # nothing created there
    text = tmp_path / "latin1.toml"
    text.write_bytes(b'description = "caf\xe9"\n')
    result = invoke("train", "--profile", text, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 2 and "latin1.toml: not UTF-8 text" in result.output
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    result = invoke("train", "--profile", "smoke", "--runs-dir", a_file)
    assert result.exit_code == 2 and "is not a directory" in result.output
    npy = tmp_path / "digits.npz"
    with npy.open("wb") as fh:
        import numpy as np

        np.save(fh, np.zeros((3, 28, 28), dtype=np.uint8))
    result = invoke("train", "--profile", "smoke", "--runs-dir", tmp_path / "runs", "--set", f"data.digits={npy}")
    assert result.exit_code == 2 and "digits.npz" in result.output and "Traceback" not in result.output
    bad = tmp_path / "sweep"
    bad.mkdir()
    (bad / "manifest.json").write_text('{"spec": 3}')
    result = invoke("sweep", "--resume", bad)
    assert result.exit_code == 2 and "manifest.json" in result.output


def test_the_budget_line_says_where_the_budget_comes_from(tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text('[train]\ntrack = "C"\n')
    config = load_config(str(empty))
    assert config.train.steps == 22000
    from jepa_tui.cli.options import budget_source as _budget_source

    assert _budget_source(str(empty), None, None, None) == f"the default: profile {empty} sets no budget"
    assert _budget_source("smoke", None, None, None) == "profile smoke"
    assert _budget_source("smoke", ["train.steps=5"], None, None) == "--set"
    assert _budget_source("smoke", None, 5, None) == "--steps/--seconds"


def test_reports_and_analyses_into_unwritable_folders_are_exit_2(trained, tmp_path, monkeypatch):
    import errno

    from jepa_tui.runs import files

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(files.tempfile, "mkstemp", refuse)
    result = invoke("report", trained, "--out", tmp_path / "out")
    assert result.exit_code == 2 and "not writable" in result.output and "--out" in result.output
    result = invoke("analyze", trained, "--step", "40")
    assert result.exit_code == 2 and "not writable" in result.output


def test_commands_from_a_queue_still_work(tmp_path, smoke_worlds):
    """The run loop's queue takes plain commands (source ui) and (command, source) pairs."""
    prepared = prepare_run(load_config("smoke", ["train.steps=20"]), CPU, tmp_path, "q", worlds=smoke_worlds)
    commands = queue.Queue()
    commands.put(Command.FREEZE_EMA)
    commands.put((Command.FREEZE_BUFFER, "switch"))
    RunLoop(prepared.trainer, prepared.directory, commands=commands).run()
    applied = [(e["command"], e["source"]) for e in events(tmp_path / "q") if e["kind"] == "command"]
    assert applied == [("freeze_ema", "ui"), ("freeze_buffer", "switch")]
