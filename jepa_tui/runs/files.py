"""Writing files of a run or sweep directory so that a reader never sees half of one."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


class RunDirError(OSError):
    """The run directory cannot be created, opened or written; the message names the path and the cause."""


def os_message(exc: OSError) -> str:
    """A short reason for an OS error: disk full and permissions in plain words, else the error's own text."""
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"not writable ({exc.strerror})"
    return exc.strerror or str(exc)


def atomic_write_bytes(path: Path, write: Callable[[BinaryIO], object]) -> None:
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
        raise RunDirError(f"cannot write '{path}': {os_message(exc)}; the files already there are intact.") \
            from None
