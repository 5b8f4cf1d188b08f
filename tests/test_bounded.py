"""Unbounded input, bounded readers: a line nested 100,000 deep, a FIFO or a link to /dev/zero named like a run file,
a 1 MB value in an override. Each is skipped or refused with a short message, never a RecursionError, a hang or a
megabyte on stderr."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from jepa_tui.cli.main import app
from jepa_tui.config import ConfigError, load_config, read_toml
from jepa_tui.runs.jsonl import parse_jsonl

runner = CliRunner()
DEEP = b"[" * 100_000 + b"]" * 100_000


def test_a_deeply_nested_line_is_a_malformed_line():
    good = json.dumps({"kind": "train", "step": 1}).encode()
    records, _ = parse_jsonl(good + b"\n" + DEEP + b"\n" + good + b"\n")
    assert len(records) == 2


def test_a_deeply_nested_record_leaves_the_run_resumable_and_readable(tmp_path):
    result = runner.invoke(app, ["train", "--profile", "smoke", "--runs-dir", str(tmp_path), "--run-id", "r",
                                 "--steps", "20", "--threads", "1"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "r"
    for name in ("metrics.jsonl", "events.jsonl"):
        with open(run / name, "ab") as fh:
            fh.write(b'{"kind": "train", "step": 5, "x": ' + DEEP + b"}\n")
    (run / "summary.json").write_bytes(DEEP)
    for args in (["report", str(run), "--out", str(tmp_path / "rep")], ["runs", str(tmp_path)],
                 ["train", "--resume", str(run), "--steps", "40", "--force"]):
        result = runner.invoke(app, args)
        assert result.exit_code in (0, 2), (args, result.output)
        assert "Traceback" not in result.output and "RecursionError" not in result.output, args


def test_toml_that_is_not_a_profile_is_refused_without_reading_it(tmp_path):
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        read_toml(fifo)  # would block forever if it were opened for reading without O_NONBLOCK
    link = tmp_path / "zero.toml"
    link.symlink_to("/dev/zero")
    with pytest.raises(ConfigError, match="not a regular file"):
        read_toml(link)
    big = tmp_path / "big.toml"
    big.write_text("description = \"" + "x" * (2 << 20) + "\"\n")
    with pytest.raises(ConfigError, match="more than a profile"):
        read_toml(big)
    deep = tmp_path / "deep.toml"
    deep.write_text("v = " + "[" * 50_000 + "]" * 50_000 + "\n")
    with pytest.raises(ConfigError, match=str(deep)):
        read_toml(deep)


def test_an_override_is_quoted_short_and_nesting_is_an_error():
    with pytest.raises(ConfigError) as info:
        load_config("smoke", ["train.track=\"" + "Z" * 1_000_000 + "\""])
    assert len(str(info.value)) < 600 and "characters" in str(info.value)
    with pytest.raises(ConfigError, match="nested too deeply|does not parse"):
        load_config("smoke", ["eval.n_curve=" + "[" * 50_000 + "]" * 50_000])
    result = runner.invoke(app, ["train", "--profile", "smoke", "--set", "train.track=" + "y" * 1_000_000])
    assert result.exit_code == 2 and len(result.output) < 2_000
