"""Commands a running trainer accepts between steps, and the request files that carry them from `watch`.

The paper's `pause_request.flag` (polled every 50 steps) made general: a request is a small JSON object
``{"command": "<name>", ...}`` in ``RUN_DIR/requests/NAME.json``, written atomically, applied in order of name and
then deleted. Requests are input from another process: anything in ``requests/`` that is not a regular file holding
such an object (other JSON, a directory, a FIFO, a symlink, a huge file) is moved to ``requests/rejected/`` and
reported, never read past 64 KiB and never waited on.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from jepa_tui.runs.files import atomic_write_text

REQUESTS_DIR = "requests"
REJECTED_DIR = "rejected"
POLL_EVERY_STEPS = 50
PAUSE_REQUEST_FLAG = "pause_request.flag"  # the paper's file: checkpoint and exit (75), to be resumed
MAX_REQUEST_BYTES = 65536


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


@dataclass(frozen=True)
class Rejected:
    """A request (or flag) that was not applied: its name, why, and where it was moved (None: removed)."""

    name: str
    reason: str
    moved_to: str | None


def write_request(run_dir: Path, command: Command) -> Path:
    """Ask the trainer of ``run_dir`` to apply ``command``; it does so within 50 steps (or 1 s while paused)."""
    folder = Path(run_dir) / REQUESTS_DIR
    folder.mkdir(exist_ok=True)
    path = folder / f"{time.time_ns():020d}_{command.value}.json"
    atomic_write_text(path, json.dumps({"command": command.value, "time": time.time()}))
    return path


def _read_request(path: Path) -> Command:
    """The command of one request file; ValueError saying why it is not one."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError as exc:
        raise ValueError(f"cannot be opened ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("not a regular file")
        if info.st_size > MAX_REQUEST_BYTES:
            raise ValueError(f"{info.st_size} bytes, more than a request ({MAX_REQUEST_BYTES})")
        data = os.read(fd, MAX_REQUEST_BYTES + 1)
    finally:
        os.close(fd)
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ValueError("not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("command"), str):
        raise ValueError('not a JSON object with a "command" string')
    try:
        return Command(body["command"])
    except ValueError:
        raise ValueError(f"unknown command {body['command'][:40]!r}; known: "
                         f"{', '.join(c.value for c in Command)}") from None


def set_aside(path: Path, reason: str, folder: Path) -> Rejected:
    """Move ``path`` (any kind of file) into ``folder`` under a unique name, or remove it when it cannot be moved
    (``folder`` not a real folder, a link say: nothing is moved out of the run directory)."""
    target = folder / f"{time.time_ns():020d}_{path.name}"
    try:
        folder.mkdir(exist_ok=True)
        if not stat.S_ISDIR(os.lstat(folder).st_mode):  # a link: the entry would leave the run directory
            raise OSError(f"'{folder}' is not a folder of the run directory")
        os.replace(path, target)
        return Rejected(path.name, reason, str(target))
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(path)
        return Rejected(path.name, reason, None)


def take_requests(run_dir: Path, since: float | None = None) -> tuple[list[Command], list[Rejected]]:
    """Read, delete and return the pending requests of ``run_dir``, oldest first, and the entries set aside.

    ``since`` (seconds since the epoch): a request file last written before it is stale (sent to a run that was not
    running: a key pressed in ``watch`` on a killed run must not act days later when the run is resumed) and is set
    aside with that reason instead of applied.
    """
    folder = Path(run_dir) / REQUESTS_DIR
    try:
        info = os.lstat(folder)
    except OSError:
        return [], []
    if not stat.S_ISDIR(info.st_mode):
        return [], [set_aside(folder, "requests/ is not a directory", Path(run_dir) / f"{REQUESTS_DIR}.{REJECTED_DIR}")]
    commands, rejected = [], []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith(".") or entry.name == REJECTED_DIR:  # a writer's temporary file; the set-aside folder
            continue
        path = Path(entry.path)
        try:
            written = entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            written = None
        if since is not None and written is not None and written < since:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(written))
            rejected.append(set_aside(path, f"stale: written {when}, before this run started; not applied",
                                      folder / REJECTED_DIR))
            continue
        try:
            commands.append(_read_request(path))
        except ValueError as exc:
            rejected.append(set_aside(path, str(exc), folder / REJECTED_DIR))
            continue
        with contextlib.suppress(OSError):
            os.unlink(path)
    return commands, rejected


def take_pause_flag(run_dir: Path) -> tuple[bool, Rejected | None]:
    """Whether ``pause_request.flag`` asks the run to suspend (the regular file is then removed); anything else
    by that name (a directory, a FIFO, a symlink) is moved aside and returned as rejected."""
    flag = Path(run_dir) / PAUSE_REQUEST_FLAG
    try:
        info = os.lstat(flag)
    except OSError:
        return False, None
    if stat.S_ISREG(info.st_mode):
        with contextlib.suppress(OSError):
            os.unlink(flag)
        return True, None
    return False, set_aside(flag, "not a regular file", Path(run_dir) / REQUESTS_DIR / REJECTED_DIR)
