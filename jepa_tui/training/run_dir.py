"""The run directory ``runs/<YYYYMMDD_HHMMSS>_<track>_s<seed>/`` (spec §8, §11).

- ``config.toml``: the fully resolved configuration, enough to rerun it (``jepa-tui train --profile config.toml``);
- ``metrics.jsonl``: one JSON object per line, ``"kind": "train"`` or ``"kind": "eval"``;
- ``events.jsonl``: checkpoints, interrupts and other events, one JSON object per line;
- ``checkpoints/step_XXXXXXXX.pt``: the last two plus the one at the best ``D_shift``;
- ``summary.json``: the run's outcome.

Files are written so that a reader never sees a half-written checkpoint or summary (temporary file, then rename).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import tomli_w
import torch

from jepa_tui import __version__
from jepa_tui.config import Config


class RunDirError(OSError):
    """The run directory cannot be created or written; the message names the path."""


def make_run_id(track: str, seed: int, now: datetime | None = None) -> str:
    """``YYYYMMDD_HHMMSS_<track>_s<seed>`` from the local start time, as in the paper plus the seed."""
    return f"{(now or datetime.now()):%Y%m%d_%H%M%S}_{track}_s{seed}"


def _atomic_write_bytes(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


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
        run.checkpoints.mkdir()
        body = {"description": f"resolved configuration of run {run_id} (jepa-tui {__version__})",
                **config.to_dict()}
        _atomic_write_bytes(path / "config.toml", lambda fh: fh.write(tomli_w.dumps(body).encode()))
        return run

    @property
    def run_id(self) -> str:
        return self.path.name

    def _append(self, name: str, record: dict) -> None:
        attr = f"_{name}"
        handle = getattr(self, attr)
        if handle is None:
            handle = (self.path / f"{name}.jsonl").open("a", encoding="utf-8")
            setattr(self, attr, handle)
        handle.write(json.dumps(record, separators=(",", ":")) + "\n")
        handle.flush()

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
        """Write ``checkpoints/step_<step>.pt`` atomically, then delete the others not in ``keep`` ∪ {step}."""
        path = self.checkpoints / f"step_{step:08d}.pt"
        _atomic_write_bytes(path, lambda fh: torch.save(state, fh))
        for old in self.checkpoints.glob("step_*.pt"):
            if int(old.stem.split("_")[1]) not in keep | {step}:
                old.unlink()
        return path

    def close(self) -> None:
        for attr in ("_metrics", "_events"):
            handle = getattr(self, attr)
            if handle is not None:
                handle.close()
                setattr(self, attr, None)
