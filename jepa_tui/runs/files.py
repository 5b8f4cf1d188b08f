"""Writing files of a run or sweep directory so that a reader never sees half of one, and holding a directory for
one writer at a time.

- :func:`atomic_write_bytes`: a temporary file created with ``O_CREAT | O_EXCL`` (``tempfile.mkstemp``) beside the
  target, so a symlink planted at a predictable name is never followed; fsync, rename into place, fsync the folder.
- :class:`WriterLock`: an exclusive ``flock`` on ``writer.lock`` for the life of a writer; the file says who holds
  it (pid, host, since, command). The kernel drops the lock when the process dies, so a killed writer never blocks
  the next one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

LOCK_NAME = "writer.lock"


class RunDirError(OSError):
    """The run directory cannot be created, opened or written; the message names the path and the cause."""


class DirectoryBusy(RunDirError):
    """Another process (or another run in this one) is writing the directory; the message names the holder."""


def os_message(exc: OSError) -> str:
    """A short reason for an OS error: disk full and permissions in plain words, else the error's own text."""
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"not writable ({exc.strerror})"
    return exc.strerror or str(exc)


def fsync_directory(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: some filesystems cannot fsync a directory)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@functools.cache
def process_umask() -> int:
    """The process's umask (Linux: read from ``/proc/self/status``, without changing it; elsewhere set and restored
    once, on first use)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write through a new temporary file beside ``path``, then rename: ``path`` is either the old file or the whole
    new one, and a symlink at ``path`` is replaced, never followed.

    Raises:
        RunDirError: when writing fails (disk full, permissions); the temporary file is removed.
    """
    path = Path(path)
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o666 & ~process_umask())  # mkstemp makes 0600; the file gets what open() would give it
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
        fsync_directory(path.parent)
    except OSError as exc:
        raise RunDirError(f"cannot write '{path}': {os_message(exc)}; the files already there are intact.") \
            from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def sha256_file(path: Path) -> str:
    """The SHA-256 digest of a file's bytes, hex (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, lambda fh: fh.write(text.encode()))


class WriterLock:
    """The exclusive right to write one directory, held until :meth:`release` or the process ends.

    Raises (from :meth:`acquire`):
        DirectoryBusy: another writer holds it (the message names its pid, host and start time).
        RunDirError: the lock file cannot be created.
    """

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, what: str = "run directory") -> WriterLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise RunDirError(f"cannot lock {what} '{self.path.parent}': {os_message(exc)}") from None
        for attempt in range(5):  # a reader asking who holds the lock holds it for a moment too
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if attempt < 4:
                    time.sleep(0.1)
        else:
            holder = describe_holder(self.path)
            os.close(fd)
            raise DirectoryBusy(f"{what} '{self.path.parent}' is in use by {holder}; wait for it to finish or stop "
                                "it first (two writers would interleave their records).") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                "command": " ".join(sys.argv[:6])}
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def _holder(lock_path: Path) -> dict:
    """What the lock file says of its writer (pid, host, since, command). Raises OSError or ValueError."""
    with open(lock_path, "rb") as fh:
        try:
            info = json.loads(fh.read(4096) or b"{}")
        except RecursionError:
            raise ValueError(f"{lock_path}: not a lock record") from None
    if not isinstance(info, dict):
        raise ValueError(f"{lock_path}: not a lock record")
    return info


def describe_holder(lock_path: Path) -> str:
    """Who the lock file says holds it: "pid N on host H since T (command)", or "another process"."""
    try:
        info = _holder(lock_path)
        return f"pid {info['pid']} on host {info['host']} since {info['since']} ({info.get('command', '?')})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def local_writer_pid(folder: Path) -> int | None:
    """The pid of the live writer of ``folder`` when it runs on this host (the dashboard of `watch` samples its CPU
    use), else None (no live writer, another host, an unreadable lock file)."""
    if writer_alive(folder) is not True:
        return None
    try:
        info = _holder(Path(folder) / LOCK_NAME)
        return int(info["pid"]) if info.get("host") == socket.gethostname() else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def writer_alive(folder: Path) -> bool | None:
    """Whether a writer holds ``folder``'s lock now: True, False, or None when there is no lock file (a run
    written before locks existed, or never started)."""
    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False
