"""Fuzzing the run directory's formats (Hypothesis): random and adversarial contents written into any file of a
finished run and of its sweep folder, then every reader of it (resume, `report`, `runs`, `analyze`, `watch`'s JSONL
tail) must end with exit 0 or 2 (for a resumed run also 3, diverged, or 75, suspended by a planted
``pause_request.flag``), never a traceback, within a time bound, and must never change a byte outside the run's
folder.

CI runs ``JEPA_FUZZ_EXAMPLES`` examples (default 10, about a minute on 2 cores); before a release run a few hundred:
``JEPA_FUZZ_EXAMPLES=300 pytest tests/test_fuzz.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from jepa_tui.cli.main import app
from jepa_tui.config import load_config
from jepa_tui.runs import JsonlTail
from jepa_tui.runs.interventions import MARKS, crowd
from jepa_tui.ui.state import RunState

runner = CliRunner()
EXAMPLES = int(os.environ.get("JEPA_FUZZ_EXAMPLES", "10"))
SECONDS_PER_COMMAND = 60.0

# Every file a run or sweep folder holds that a reader opens.
TARGETS = ["r/metrics.jsonl", "r/events.jsonl", "r/summary.json", "r/config.toml", "r/checkpoints/step_00000040.pt",
           "r/weights/step_00000040.pt", "r/evaluations/default.jsonl", "r/requests/0001_pause.json",
           "r/pause_request.flag", "r/metrics.rolled_back.jsonl", "manifest.json"]


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
        ["kind", "step", "d_shift", "sigma_z", "buffer_size", "status", "formulas", "n_curve", "progress", "x"]),
        inner, max_size=5),
    max_leaves=12)

CONTENTS = st.one_of(
    st.tuples(st.just("bytes"), st.binary(max_size=300)),
    st.tuples(st.just("json lines"), st.lists(JSON_VALUES.map(lambda v: json.dumps(v)), min_size=1, max_size=6)),
    st.tuples(st.just("records"), st.lists(st.fixed_dictionaries(
        {"kind": st.sampled_from(["eval", "train", "end", "start", "checkpoint", "command", "world_switch"]),
         "step": st.integers(0, 100)}, optional={"d_shift": JSON_VALUES, "buffer_size": JSON_VALUES,
                                                 "status": JSON_VALUES, "path": JSON_VALUES}).map(json.dumps),
        min_size=1, max_size=6)),
    st.tuples(st.just("deep json"), st.integers(1000, 60000).map(_deep)),
    st.tuples(st.just("special"), st.sampled_from(["fifo", "directory", "symlink outside", "symlink loop", "empty",
                                                   "huge line"])),
)


def _plant(root: Path, target: str, content: tuple, outside: Path) -> None:
    path = root / target
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    kind, value = content
    if kind == "bytes":
        path.write_bytes(value)
    elif kind in ("json lines", "records"):
        path.write_text("\n".join(value) + "\n")
    elif kind == "deep json":
        path.write_text(value + "\n")
    elif value == "fifo":
        os.mkfifo(path)
    elif value == "directory":
        path.mkdir()
    elif value == "symlink outside":
        path.symlink_to(outside / "victim.txt")
    elif value == "symlink loop":
        path.symlink_to(path.name)
    elif value == "empty":
        path.write_bytes(b"")
    else:
        path.write_text('{"kind": "eval", "step": 1, "pad": "' + "x" * 3_000_000 + '"}\n')


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory) -> Path:
    """A finished smoke run inside a folder with a sweep manifest, as `sweep` leaves it."""
    root = tmp_path_factory.mktemp("fuzz") / "sweep"
    root.mkdir()
    assert runner.invoke(app, ["train", "--profile", "smoke", "--runs-dir", str(root), "--run-id", "r"]).exit_code == 0
    assert runner.invoke(app, ["evaluate", str(root / "r")]).exit_code == 0
    (root / "manifest.json").write_text(json.dumps({"spec": {"base": "smoke", "tracks": ["C"], "seeds": [42]}}))
    return root


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(target=st.sampled_from(TARGETS), content=CONTENTS)
def test_any_content_in_any_run_file_is_exit_0_or_2_and_stays_inside(sweep_folder, tmp_path_factory, target, content):
    work = tmp_path_factory.mktemp("case")
    root, outside = work / "sweep", work / "outside"
    shutil.copytree(sweep_folder, root, symlinks=True)
    outside.mkdir()
    (outside / "victim.txt").write_text("not the run's\n")
    before = _digest(outside)
    _plant(root, target, content, outside)
    commands = [["runs", str(root)], ["report", str(root), "--out", str(work / "report")],
                ["analyze", str(root / "r"), "--step", "20"],
                ["train", "--resume", str(root / "r"), "--steps", "60", "--force"]]
    for args in commands:
        started = time.perf_counter()
        result = runner.invoke(app, args)
        took = time.perf_counter() - started
        allowed = (0, 2, 3, 75) if args[0] == "train" else (0, 2)  # 75: a planted pause_request.flag suspends
        assert result.exit_code in allowed and "Traceback" not in result.output, (args, content, result.output,
                                                                                 result.exception)
        assert took < SECONDS_PER_COMMAND, (args, took)
    state = RunState.from_config(load_config("smoke"), "r")
    for name in ("metrics.jsonl", "events.jsonl"):
        for record in JsonlTail(root / "r" / name).read():  # watch's reader and state: whatever the file holds
            state.ingest(record)
    assert _digest(outside) == before


@settings(max_examples=EXAMPLES * 5, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5000), st.sampled_from(sorted(set(MARKS.values())) + ["W3"])),
                min_size=1, max_size=40),
       st.floats(1.0, 400.0))
def test_crowded_marks_never_print_over_each_other_and_none_is_lost(marks, per_char):
    at: dict[int, list[str]] = {}
    for step, mark in marks:
        at.setdefault(step, []).append(mark)
    lane = crowd(at, per_char)
    for (x0, label0), (x1, _) in zip(lane, lane[1:], strict=False):
        assert (x1 - x0) / per_char >= len(label0) + 1  # the next label starts after this one and a space
    counted = 0
    for _, label in lane:
        counted += int(label.rsplit("+", 1)[1]) + 1 if "+" in label else len(label.split("/"))
    assert counted == sum(len(v) for v in at.values())
