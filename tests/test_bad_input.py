"""Every mistake in a profile or on the command line: exit code 2, one message naming the file, the key and what
is allowed, no traceback, and nothing already written touched."""

import textwrap

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from jepa_tui.cli.main import app

runner = CliRunner()

# (profile text or None for the smoke profile, extra arguments, what the message must contain)
CASES = {
    "toml syntax": ("[train]\nsteps = 40\nlr = = 1\n", [], ["TOML syntax error", "line 3", "column"]),
    "unknown section": ("[trian]\nsteps = 4\n", [], ["unknown section [trian]", "Did you mean 'train'?"]),
    "unknown key in profile": ("[train]\nlrr = 0.1\n", [], ["unknown key 'train.lrr'", "Did you mean 'lr'?"]),
    "unknown key in --set": (None, ["--set", "memory.kapa=2"], ["unknown key 'memory.kapa'", "'kappa'"]),
    "wrong type int": ('[train]\nsteps = "many"\n', [], ["'train.steps'", "got 'many'", "expected an integer"]),
    "wrong type list": ("[model]\nhorizons = 3\n", [], ["'model.horizons'", "expected a list of integers"]),
    "wrong choice": ('[train]\ntrack = "F"\n', [], ["'train.track'", "one of 'A', 'B', 'C', 'D', 'E'"]),
    "lr zero": ("[train]\nlr = 0\n", [], ["'train.lr' = 0.0 is out of range", "allowed: 0 < value <= 1000"]),
    "lr negative": (None, ["--set", "train.lr=-1e-3"], ["'train.lr' = -0.001", "0 < value <= 1000"]),
    "kappa zero": ("[memory]\nkappa = 0.0\n", [], ["'memory.kappa' = 0.0", "a number > 0"]),
    "capacity zero": ("[memory]\ncapacity = 0\n", [], ["'memory.capacity' = 0", "1 <= value <= 100000"]),
    "horizons empty": ("[model]\nhorizons = []\n", [], ["'model.horizons' = []", "non-empty list"]),
    "horizons non-positive": ("[model]\nhorizons = [0, 1]\n", [], ["'model.horizons' = [0, 1]", "integers >= 1"]),
    "gamma zero": ("[train]\ngamma = 0.0\n", [], ["'train.gamma' = 0.0", "a number > 0"]),
    "both budgets in profile": ("[train]\nsteps = 4\nseconds = 5.0\n", [], ["'train.steps' or 'train.seconds'",
                                                                            "not both"]),
    "both budgets on the command line": (None, ["--steps", "5", "--seconds", "5"], ["not both"]),
    "steps zero": (None, ["--steps", "0"], ["'train.steps' = 0", "1 <= value <= 1000000000"]),
    "thermal thresholds": ("[thermal]\npause_at_c = 70.0\nresume_at_c = 75.0\n", [],
                           ["'thermal.resume_at_c' = 75.0", "thermal.pause_at_c (70 °C)"]),
    "set without =": (None, ["--set", "train.lr"], ["--set 'train.lr'", "expected section.key=value"]),
    "set not TOML": (None, ["--set", "model.horizons=[1, 2"], ["the value '[1, 2' does not parse as TOML"]),
    "set wrong type": (None, ["--set", "train.lr=fast"], ["--set: 'train.lr': got 'fast', expected a finite number"]),
    "unknown profile": (None, ["--profile", "trak_c"], ["unknown profile 'trak_c'", "track_c"]),
    "missing digit file": (None, ["--set", "data.digits=/no/such/mnist.npz"], ["/no/such/mnist.npz", "no such file"]),
    "device choice": (None, ["--device", "tpu"], ["'train.device'", "one of 'auto', 'cpu', 'cuda'"]),
}


def invoke(args):
    result = runner.invoke(app, args)
    assert "Traceback" not in result.output
    return result


@pytest.mark.parametrize("case", CASES)
def test_bad_profile_or_option_exits_2_with_a_message(case, tmp_path):
    text, extra, expected = CASES[case]
    profile = "smoke"
    if text is not None:
        path = tmp_path / "bad.toml"
        path.write_text(textwrap.dedent(text))
        profile = str(path)
    args = ["train", "--profile", profile, "--runs-dir", str(tmp_path / "runs"), *extra]
    if "--profile" in extra:
        args = ["train", *extra, "--runs-dir", str(tmp_path / "runs")]
    result = invoke(args)
    assert result.exit_code == 2, result.output
    for part in expected:
        assert part in result.output, (part, result.output)
    if text is not None:
        assert str(tmp_path / "bad.toml") in result.output  # the file is named
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # no run was started


def test_a_malformed_digit_file_is_named(tmp_path):
    bad = tmp_path / "mnist.npz"
    np.savez(bad, x_train=np.zeros((3, 5), dtype=np.uint8))
    result = invoke(["train", "--profile", "smoke", "--set", f"data.digits={bad}", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and str(bad) in result.output
    assert "28" in result.output  # says what shape was expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_exits_2(tmp_path):
    result = invoke(["train", "--profile", "smoke", "--device", "cuda", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and "CUDA is not available" in result.output and "--device cpu" in result.output


def test_an_existing_run_directory_is_never_overwritten(tmp_path):
    existing = tmp_path / "mine"
    existing.mkdir()
    (existing / "notes.txt").write_text("keep me")
    result = invoke(["train", "--profile", "smoke", "--runs-dir", str(tmp_path), "--run-id", "mine"])
    assert result.exit_code == 2 and "exists already; it is never overwritten" in result.output
    assert [p.name for p in existing.iterdir()] == ["notes.txt"] and (existing / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(("args", "message"), [
    (["--resume", "{tmp}"], "is not a run directory: it has no config.toml"),
    (["--resume", "{tmp}/nowhere"], "is not a directory"),
    (["--profile", "smoke", "--resume", "{tmp}"], "pass exactly one of --profile NAME"),
    ([], "pass exactly one of --profile NAME"),
    (["--profile", "smoke", "--force"], "--force only applies with --resume"),
])
def test_bad_resume_arguments(args, message, tmp_path):
    result = invoke(["train", *[a.format(tmp=tmp_path) for a in args], "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and message in result.output, result.output


def test_a_corrupt_config_toml_in_a_run_directory_is_named(tmp_path):
    run_dir = tmp_path / "r"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.toml").write_text("[train]\nsteps = \n")
    result = invoke(["train", "--resume", str(run_dir)])
    assert result.exit_code == 2 and f"{run_dir / 'config.toml'}: TOML syntax error" in result.output


def test_the_dashboard_and_watch_reject_bad_input_too(tmp_path):
    assert invoke(["run", "--profile", "smoke", "--set", "train.lr=0", "--runs-dir", str(tmp_path)]).exit_code == 2
    result = invoke(["watch", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "no config.toml" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["report", "{tmp}/nowhere"], "does not exist"),
    (["report", "{tmp}"], "no run directories under"),
    (["analyze", "{tmp}"], "is not a run directory: it has no config.toml"),
    (["sweep", "--profile", "smoke", "--tracks", "x"], "track 'X' is not one of A, B, C, D, E"),
    (["sweep", "--profile", "smoke", "--set", "train.lr=0"], "'train.lr' = 0.0 is out of range"),
    (["sweep"], "pass exactly one of --profile NAME (a new sweep) or --resume SWEEP_DIR"),
    (["sweep", "--resume", "{tmp}"], "is not a sweep directory"),
])
def test_bad_input_to_the_experiment_commands(args, message, tmp_path):
    result = invoke([a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2 and message in result.output, result.output


def test_train_and_run_take_the_same_run_options_declared_once():
    """`train` and `run` share one declaration of their run options (cli/options.py, RunOptions): an option added
    there reaches both, in the same order, before each command's own."""
    import dataclasses

    import typer

    from jepa_tui.cli.options import RunOptions

    shared = [f.name for f in dataclasses.fields(RunOptions)]
    commands = typer.main.get_command(app).commands
    for name, own in (("train", ["run_id", "seeds"]), ("run", ["redraw_hz"])):
        assert [p.name for p in commands[name].params] == [*shared, *own], name
    result = runner.invoke(app, ["run", "--profile", "smoke", "--seconds", "-1"])
    assert result.exit_code == 2 and "train.seconds" in result.output  # the shared options reach the command
