"""Reading the JSONL files of a run directory (``metrics.jsonl``, ``events.jsonl``): whole, incrementally while
another process appends, or only the last record."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path


def is_record(obj: object) -> bool:
    """A well-formed record: a JSON object with a string ``kind`` and an integer ``step`` ≥ 0."""
    return isinstance(obj, dict) and isinstance(obj.get("kind"), str) and type(obj.get("step")) is int \
        and obj["step"] >= 0


def parse_jsonl(data: bytes) -> tuple[list[dict], int]:
    """The records of the complete lines of ``data`` and how many bytes they take; a last line without its
    newline (still being written, or torn by a kill) is left out, and malformed lines (not JSON, not an object,
    no string ``kind`` or integer ``step``) are skipped (:func:`count_malformed` counts them)."""
    end = data.rfind(b"\n") + 1
    records = []
    for line in data[:end].splitlines():
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):  # a line nested 100,000 deep too
            continue
        if is_record(record):
            records.append(record)
    return records, end


def count_malformed(data: bytes) -> int:
    """How many complete, non-empty lines of ``data`` :func:`parse_jsonl` skips."""
    end = data.rfind(b"\n") + 1
    lines = [line for line in data[:end].splitlines() if line.strip()]
    return len(lines) - len(parse_jsonl(data)[0])


def read_regular_file(path: Path) -> bytes:
    """The bytes of ``path`` if it is a regular file (a symlink, FIFO or device is refused, never opened for
    reading, so nothing can block or read forever).

    Raises:
        FileNotFoundError: when it does not exist.
        OSError: when it is not a regular file (the message names it) or cannot be read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"'{path}' is not a regular file")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class JsonlTail:
    """Reads complete new lines of a JSONL file that another process appends to, never re-reading old ones.

    A file replaced or shortened under it (a resumed run rolls back ``metrics.jsonl``) sets :attr:`replaced`, and
    reading starts again from the beginning of the new file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.replaced = False
        self._inode: int | None = None

    def read(self) -> list[dict]:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError:  # not there yet, or a symlink: nothing to read
            return []
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # a directory, a FIFO: nothing to read (fdopen refuses a directory)
            os.close(fd)
            return []
        with os.fdopen(fd, "rb") as fh:
            if self._inode is not None and (info.st_ino != self._inode or info.st_size < self.offset):
                self.offset, self.replaced = 0, True
            self._inode = info.st_ino
            fh.seek(self.offset)
            chunk = fh.read()
        records, end = parse_jsonl(chunk)  # a torn last line waits for its newline
        self.offset += end
        return records


def last_step(run_dir: Path) -> int:
    """The step of the last complete record in ``metrics.jsonl`` (reads only the file's end)."""
    path = run_dir / "metrics.jsonl"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return 0
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        return 0
    with os.fdopen(fd, "rb") as fh:
        fh.seek(max(0, info.st_size - 4096))
        records, _ = parse_jsonl(fh.read().partition(b"\n")[2] if info.st_size > 4096 else fh.read())
    return records[-1]["step"] if records else 0
