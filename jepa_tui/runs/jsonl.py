"""Reading the JSONL files of a run directory (``metrics.jsonl``, ``events.jsonl``): whole, incrementally while
another process appends, or only the last record."""

from __future__ import annotations

import json
import os
from pathlib import Path


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
            with self.path.open("rb") as fh:
                stat = os.fstat(fh.fileno())
                if self._inode is not None and (stat.st_ino != self._inode or stat.st_size < self.offset):
                    self.offset, self.replaced = 0, True
                self._inode = stat.st_ino
                fh.seek(self.offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        records, end = parse_jsonl(chunk)  # a torn last line waits for its newline
        self.offset += end
        return records


def last_step(run_dir: Path) -> int:
    """The step of the last complete record in ``metrics.jsonl`` (reads only the file's end)."""
    path = run_dir / "metrics.jsonl"
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - 4096))
            lines = fh.read().split(b"\n")[:-1]
        return int(json.loads(lines[-1])["step"]) if lines else 0
    except (OSError, ValueError, KeyError, IndexError):
        return 0
