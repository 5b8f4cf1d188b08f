"""Commands a running trainer accepts between steps, and the request files that carry them from `watch`.

The paper's `pause_request.flag` (polled every 50 steps) made general: a request is a small JSON file in
``RUN_DIR/requests/``, written atomically, applied in order of writing and then deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from enum import StrEnum
from pathlib import Path

REQUESTS_DIR = "requests"
POLL_EVERY_STEPS = 50
PAUSE_REQUEST_FLAG = "pause_request.flag"  # the paper's file: checkpoint and exit (75), to be resumed


class Command(StrEnum):
    """Explicit state changes (never toggles), so a log of them replays exactly."""

    PAUSE = "pause"
    RESUME = "resume"
    FREEZE_BUFFER = "freeze_buffer"
    UNFREEZE_BUFFER = "unfreeze_buffer"
    FREEZE_EMA = "freeze_ema"
    UNFREEZE_EMA = "unfreeze_ema"
    SAVE = "save"
    STOP = "stop"


def write_request(run_dir: Path, command: Command) -> Path:
    """Ask the trainer of ``run_dir`` to apply ``command``; it does so within 50 steps (or 1 s while paused)."""
    folder = Path(run_dir) / REQUESTS_DIR
    folder.mkdir(exist_ok=True)
    name = f"{time.time_ns():020d}_{command.value}.json"
    tmp = folder / f".{name}.tmp"
    tmp.write_text(json.dumps({"command": command.value, "time": time.time()}))
    os.replace(tmp, folder / name)
    return folder / name


def take_requests(run_dir: Path) -> list[Command]:
    """Read, delete and return the pending requests of ``run_dir``, oldest first; unknown ones are dropped."""
    folder = Path(run_dir) / REQUESTS_DIR
    if not folder.is_dir():
        return []
    commands = []
    for path in sorted(folder.glob("*.json")):
        with contextlib.suppress(OSError, ValueError, KeyError):
            commands.append(Command(json.loads(path.read_text())["command"]))
        path.unlink(missing_ok=True)
    return commands
