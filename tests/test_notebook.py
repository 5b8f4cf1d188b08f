"""The notebook API: every published run of docs/reproduction read as DataFrames equal to its JSONL records."""

import json
import math
from pathlib import Path

import pytest

import jepa_tui
from jepa_tui.runs import RunDirectory

ARCHIVES = sorted((Path(__file__).parent.parent / "docs" / "reproduction" / "runs").glob("*.tar.xz"))


def flat(record: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in record.items():
        if isinstance(value, dict) and value:
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def same(a, b) -> bool:
    if isinstance(b, float) and math.isnan(b):
        return a is None or (isinstance(a, float) and math.isnan(a))
    if a is None:
        return b is None or (isinstance(b, float) and math.isnan(b))
    return a == b


def test_every_published_run_reads_as_frames_equal_to_its_records(published):
    assert len(ARCHIVES) == 3
    runs = sorted(p.parent for p in published.rglob("config.toml"))
    assert len(runs) >= 20
    for path in runs:
        run = jepa_tui.open_run(path)
        directory = RunDirectory(path)
        metrics = directory.read_records("metrics")
        for kind, frame in (("eval", run.evals()), ("train", run.train())):
            records = [flat(r) for r in metrics if r["kind"] == kind]
            assert len(frame) == len(records), (path, kind)
            rows = frame.to_dict("records")
            for record, row in zip(records, rows, strict=True):
                for key, value in record.items():
                    if key != "kind":
                        assert same(row[key], value), (path, kind, record["step"], key, row[key], value)
        events = directory.read_records("events")
        assert len(run.events()) == len(events) and list(run.events()["kind"]) == [e["kind"] for e in events]
        assert run.config.train.track in "ABCDE" and run.summary == json.loads((path / "summary.json").read_text())


def test_open_runs_is_the_runs_table(published):
    from typer.testing import CliRunner

    from jepa_tui.cli.main import app

    sweep = published / "table1"
    frame = jepa_tui.open_runs(sweep)
    printed = json.loads(CliRunner().invoke(app, ["runs", str(sweep), "--json"]).output)
    assert frame.to_dict("records") == printed and len(frame) == 9


def test_open_run_refuses_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        jepa_tui.open_run(tmp_path)
    with pytest.raises(AttributeError):
        jepa_tui.no_such_thing  # noqa: B018
