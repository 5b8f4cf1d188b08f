"""The record schema (runs/records.py): the loop writes through its helpers and every reader selects through it, old
runs stay readable (the published runs of docs/reproduction, written before the schema was versioned) and new
fields or kinds do not break old readers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jepa_tui.reporting.collect import read_run
from jepa_tui.runs.catalog import describe_run
from jepa_tui.runs.records import (
    END_STATUSES,
    EVENT_KINDS,
    RECORDS_VERSION,
    evals,
    event_record,
    last_status,
    records_version,
    sessions,
    train_record,
    trains,
)
from jepa_tui.ui.state import RunState


@pytest.fixture(scope="module")
def published_runs(published):
    return sorted(p.parent for p in published.rglob("config.toml"))


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_writers_keep_the_field_order_of_every_record_written_so_far():
    stats = {"loss": 1.0, "loss_pred": 0.9, "loss_var": 0.1, "buffer_size": 3, "boundary_events": 2}
    record = train_record(500, 12.34567, stats, 1e-3, 0.996, 40.12345)
    assert list(record) == ["kind", "step", "elapsed", *stats, "lr", "ema_tau", "steps_per_s"]
    assert record["elapsed"] == 12.346 and record["steps_per_s"] == 40.123
    assert train_record(1, 0, stats, 1, 1, 1, world=3)["world"] == 3
    start = event_record("start", 0, device="cpu")
    assert start["records"] == RECORDS_VERSION and list(start)[:3] == ["kind", "step", "time"]
    assert "records" not in event_record("checkpoint", 5, reason="interval")


def test_old_runs_read_as_version_1_with_every_reader(published_runs):
    """The published runs (no records version in their events) read through the schema's readers as before."""
    assert len(published_runs) >= 3
    for run in published_runs:
        metrics, events = _lines(run / "metrics.jsonl"), _lines(run / "events.jsonl")
        assert records_version(events) == 1 and sessions(events)
        assert last_status(events) in END_STATUSES
        assert set(e["kind"] for e in events) <= set(EVENT_KINDS), run
        assert evals(metrics, complete=True) == evals(metrics) and trains(metrics)
        record = read_run(run)
        assert [r["step"] for r in record.evals] == [r["step"] for r in evals(metrics)]
        info = describe_run(run)
        assert info.status == last_status(events)
        assert info.peak_d_shift == min(r["d_shift"] for r in evals(metrics))


def test_a_future_field_and_kind_do_not_break_the_readers(published_runs, tmp_path):
    """A run written by a later version (an unknown event kind, an unknown field in every record, a higher records
    version) reads as before in the catalogue, the report and the dashboard."""
    run = published_runs[0]
    copy = tmp_path / run.name
    copy.mkdir()
    for item in run.iterdir():
        if item.is_file():
            (copy / item.name).write_bytes(item.read_bytes())
    for name in ("metrics.jsonl", "events.jsonl"):
        records = [{**r, "future_field": [1, 2]} for r in _lines(run / name)]
        if name == "events.jsonl":
            records.insert(1, {"kind": "future_kind", "step": 1, "time": 0.0})
            records[0]["records"] = RECORDS_VERSION + 1
        (copy / name).write_text("".join(json.dumps(r) + "\n" for r in records))
    assert describe_run(copy).peak_d_shift == describe_run(run).peak_d_shift
    assert [r["d_shift"] for r in read_run(copy).evals] == [r["d_shift"] for r in read_run(run).evals]
    state, before = RunState(track="C", run_id="x"), RunState(track="C", run_id="x")
    for record in [*_lines(copy / "metrics.jsonl"), *_lines(copy / "events.jsonl")]:
        state.ingest(record)
    for record in [*_lines(run / "metrics.jsonl"), *_lines(run / "events.jsonl")]:
        before.ingest(record)
    assert state.skipped_records == before.skipped_records == 0
    assert state.d_shift.ys == before.d_shift.ys and state.loss.ys == before.loss.ys
    assert records_version(_lines(copy / "events.jsonl")) == RECORDS_VERSION + 1
