"""The run directory ``runs/<YYYYMMDD_HHMMSS>_<track>_s<seed>/`` (spec §8, §11).

- ``config.toml``: the fully resolved configuration, enough to rerun it (``jepa-tui train --profile config.toml``);
- ``metrics.jsonl``: one JSON object per line, ``"kind": "train"`` or ``"kind": "eval"``;
- ``events.jsonl``: checkpoints, interrupts and other events, one JSON object per line;
- ``checkpoints/step_XXXXXXXX.pt``: the last two plus the one at the best ``D_shift``;
- ``summary.json``: the run's outcome;
- ``metrics.rolled_back.jsonl``: records written after the checkpoint a resumed run continued from (they are
  recomputed by the resumed run, and kept here rather than lost).

Files are written so that a reader never sees a half-written checkpoint or summary (temporary file, then rename),
and every JSONL record is one ``write`` of a whole line; a line torn by a kill is dropped on resume.
"""

from __future__ import annotations

import errno
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import tomli_w
import torch

from jepa_tui import __version__
from jepa_tui.config import Config

CHECKPOINT_GLOB = "step_*.pt"


class RunDirError(OSError):
    """The run directory cannot be created, opened or written; the message names the path and the cause."""


class CheckpointError(ValueError):
    """A checkpoint file cannot be read (truncated, corrupt, or not a jepa-tui checkpoint)."""


def parse_jsonl(data: bytes) -> tuple[list[dict], int]:
    """The records of the complete lines of ``data`` and how many bytes they take; a last line without its
    newline (still being written, or torn by a kill) is left out, and lines that are not JSON are skipped."""
    end = data.rfind(b"\n") + 1
    records = []
    for line in data[:end].splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records, end


def _os_message(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"not writable ({exc.strerror})"
    return exc.strerror or str(exc)


def make_run_id(track: str, seed: int, now: datetime | None = None) -> str:
    """``YYYYMMDD_HHMMSS_<track>_s<seed>`` from the local start time, as in the paper plus the seed."""
    return f"{(now or datetime.now()):%Y%m%d_%H%M%S}_{track}_s{seed}"


def _atomic_write_bytes(path: Path, write: Any) -> None:
    """Write through a temporary file, then rename: ``path`` is either the old file or the whole new one.

    Raises:
        RunDirError: when writing fails (disk full, permissions); the temporary file is removed.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RunDirError(f"cannot write '{path}': {_os_message(exc)}; the files already there are intact.") \
            from None


class RunDirectory:
    """Writes one run's files. Create with :meth:`create`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.checkpoints = path / "checkpoints"
        self._metrics = None
        self._events = None

    @classmethod
    def create(cls, runs_dir: Path, config: Config, run_id: str | None = None) -> RunDirectory:
        """Make a new run directory and write ``config.toml``.

        Raises:
            RunDirError: when the directory exists already (never overwritten) or cannot be created.
        """
        run_id = run_id or make_run_id(config.train.track, config.train.seed)
        path = Path(runs_dir) / run_id
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir()
        except FileExistsError:
            raise RunDirError(f"run directory '{path}' exists already; it is never overwritten.") from None
        except OSError as exc:
            raise RunDirError(f"cannot create run directory '{path}': {exc.strerror}") from None
        run = cls(path)
        try:
            run.checkpoints.mkdir()
        except OSError as exc:
            raise RunDirError(f"cannot create '{run.checkpoints}': {_os_message(exc)}") from None
        run.write_config(config, f"resolved configuration of run {run_id} (jepa-tui {__version__})")
        return run

    def write_config(self, config: Config, description: str) -> None:
        """Write ``config.toml`` atomically: the fully resolved configuration, enough to rerun the run."""
        body = {"description": description, **config.to_dict()}
        _atomic_write_bytes(self.path / "config.toml", lambda fh: fh.write(tomli_w.dumps(body).encode()))

    @classmethod
    def open(cls, path: Path) -> RunDirectory:
        """An existing run directory, to resume or inspect.

        Raises:
            RunDirError: when ``path`` is not a directory with a ``config.toml``.
        """
        path = Path(path)
        if not path.is_dir():
            raise RunDirError(f"'{path}' is not a directory; pass a run directory (runs/<run_id>).")
        if not (path / "config.toml").is_file():
            raise RunDirError(f"'{path}' is not a run directory: it has no config.toml.")
        run = cls(path)
        run.checkpoints.mkdir(exist_ok=True)
        return run

    @property
    def run_id(self) -> str:
        return self.path.name

    def _append(self, name: str, record: dict) -> None:
        attr = f"_{name}"
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        try:
            fd = getattr(self, attr)
            if fd is None:
                fd = os.open(self.path / f"{name}.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                setattr(self, attr, fd)
            written = os.write(fd, line)  # one write of the whole line: a kill leaves it whole or torn, never mixed
        except OSError as exc:
            raise RunDirError(f"cannot append to '{self.path / name}.jsonl': {_os_message(exc)}.") from None
        if written != len(line):
            raise RunDirError(f"cannot append to '{self.path / name}.jsonl': wrote {written} of {len(line)} bytes "
                              "(disk full?); the torn line is dropped when the run is resumed.")

    def append_metric(self, record: dict) -> None:
        """Append one complete record to ``metrics.jsonl`` and flush it."""
        self._append("metrics", record)

    def append_event(self, record: dict) -> None:
        """Append one complete record to ``events.jsonl`` and flush it."""
        self._append("events", record)

    def write_summary(self, summary: dict) -> None:
        _atomic_write_bytes(self.path / "summary.json",
                            lambda fh: fh.write((json.dumps(summary, indent=2) + "\n").encode()))

    def save_checkpoint(self, state: dict, step: int, keep: set[int]) -> Path:
        """Write ``checkpoints/step_<step>.pt`` atomically, then delete the others not in ``keep`` ∪ {step}.

        Raises:
            RunDirError: when the checkpoint cannot be written (the older checkpoints are then all kept).
        """
        path = self.checkpoints / f"step_{step:08d}.pt"
        _atomic_write_bytes(path, lambda fh: torch.save(state, fh))
        for old_step, old in self.checkpoint_paths().items():
            if old_step not in keep | {step}:
                old.unlink()
        return path

    # -- reading back ----------------------------------------------------------------------------------------
    def checkpoint_paths(self) -> dict[int, Path]:
        """Complete checkpoints by step, oldest first (temporary files are not checkpoints)."""
        found = {}
        for path in self.checkpoints.glob(CHECKPOINT_GLOB):
            try:
                found[int(path.stem.split("_")[1])] = path
            except (IndexError, ValueError):
                continue
        return dict(sorted(found.items()))

    def read_records(self, name: str) -> list[dict]:
        """The complete records of ``<name>.jsonl`` (a torn last line is left out)."""
        path = self.path / f"{name}.jsonl"
        if not path.is_file():
            return []
        return parse_jsonl(path.read_bytes())[0]

    def drop_torn_line(self, name: str) -> bytes:
        """Cut a last line without its newline (left by a kill mid-write) from ``<name>.jsonl``; returns it."""
        path = self.path / f"{name}.jsonl"
        if not path.is_file():
            return b""
        data = path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end == len(data):
            return b""
        os.truncate(path, end)
        return data[end:]

    def remove_partial_files(self) -> list[str]:
        """Delete temporary files a kill left behind mid-write; returns their names."""
        removed = []
        for folder in (self.path, self.checkpoints):
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink()
                removed.append(str(tmp.relative_to(self.path)))
        return removed

    def roll_back_metrics(self, step: int) -> int:
        """Move the ``metrics.jsonl`` records after ``step`` to ``metrics.rolled_back.jsonl``; returns how many.

        A resumed run recomputes them from its checkpoint at ``step``; moving them keeps ``metrics.jsonl`` one
        history without losing what was written. The rewrite is atomic.
        """
        records = self.read_records("metrics")
        later = [r for r in records if r.get("step", 0) > step]
        if not later:
            return 0
        kept = [r for r in records if r.get("step", 0) <= step]
        with (self.path / "metrics.rolled_back.jsonl").open("a", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, separators=(",", ":")) + "\n" for r in later)
        body = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in kept).encode()
        _atomic_write_bytes(self.path / "metrics.jsonl", lambda fh: fh.write(body))
        return len(later)

    def close(self) -> None:
        for attr in ("_metrics", "_events"):
            fd = getattr(self, attr)
            if fd is not None:
                os.close(fd)
                setattr(self, attr, None)


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint written by :meth:`RunDirectory.save_checkpoint`.

    Raises:
        CheckpointError: when the file is truncated, corrupt or not a jepa-tui checkpoint.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, pickle.UnpicklingError, EOFError, ... for damaged files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"checkpoint '{path}' is corrupt or not a jepa-tui checkpoint ({reason[:160]}).") \
            from None
    if not isinstance(state, dict) or not {"version", "config", "trainer"} <= state.keys():
        raise CheckpointError(f"checkpoint '{path}' is not a jepa-tui checkpoint (missing version/config/trainer).")
    return state
