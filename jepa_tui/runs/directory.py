"""The run directory ``runs/<YYYYMMDD_HHMMSS>_<track>_s<seed>/`` (spec §8, §11).

- ``config.toml``: the fully resolved configuration, enough to rerun it (``jepa-tui train --profile config.toml``);
- ``metrics.jsonl``: one JSON object per line, ``"kind": "train"`` or ``"kind": "eval"``;
- ``events.jsonl``: checkpoints, interrupts and other events, one JSON object per line;
- ``checkpoints/step_XXXXXXXX.pt``: the last two plus the one at the best ``D_shift``;
- ``weights/step_XXXXXXXX.pt``: the model's weights (with buffer and detector, no optimiser) at every evaluation
  step (``eval.keep_weights``), so ``jepa-tui evaluate`` can re-ask any evaluated step a new question;
- ``evaluations/<tag>.jsonl``: what ``jepa-tui evaluate`` found, one record per step (never the run's own files);
- ``summary.json``: the run's outcome;
- ``metrics.rolled_back.jsonl``: records written after the checkpoint a resumed run continued from (they are
  recomputed by the resumed run, and kept here rather than lost).

Files are written so that a reader never sees a half-written checkpoint or summary (temporary file, then rename),
and every JSONL record is one ``write`` of a whole line; a line torn by a kill is dropped on resume.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from datetime import datetime
from pathlib import Path

import tomli_w

from jepa_tui import __version__
from jepa_tui.config import Config
from jepa_tui.runs.checkpoint import CHECKPOINT_GLOB, checkpoint_name, write_checkpoint
from jepa_tui.runs.files import (
    RunDirError,
    WriterLock,
    atomic_write_bytes,
    atomic_write_text,
    os_message,
    sha256_file,
)
from jepa_tui.runs.jsonl import count_malformed, parse_jsonl, read_regular_file

RUN_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def check_name(name: str, what: str = "run id") -> str:
    """``name`` if it is one safe path component (letters, digits, '.', '_', '-'; not starting with '.' or '-';
    at most 128 characters), so that it cannot leave the folder it is created in.

    Raises:
        ValueError: naming the rule it breaks.
    """
    if not name or len(name) > 128 or name[0] in ".-" or not set(name) <= RUN_ID_CHARS:
        raise ValueError(f"{what} {name!r} is not allowed: use letters, digits, '.', '_' and '-' only (no '/', "
                         "not starting with '.' or '-', at most 128 characters).")
    return name


def make_run_id(track: str, seed: int, now: datetime | None = None) -> str:
    """``YYYYMMDD_HHMMSS_<track>_s<seed>`` from the local start time, as in the paper plus the seed."""
    return f"{(now or datetime.now()):%Y%m%d_%H%M%S}_{track}_s{seed}"


class RunDirectory:
    """One run's files. A writer makes one with :meth:`create` or takes an existing one with :meth:`open` then
    :meth:`lock`; readers construct it directly. Only the holder of the directory's writer lock writes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        self.weights = self.path / "weights"
        self.evaluations = self.path / "evaluations"
        self._metrics = None
        self._events = None
        self._lock = WriterLock(self.path)

    @classmethod
    def create(cls, runs_dir: Path, config: Config, run_id: str | None = None) -> RunDirectory:
        """Make a new run directory, take its writer lock and write ``config.toml``.

        Raises:
            ValueError: ``run_id`` is not one safe path component.
            RunDirError: when the directory exists already (never overwritten) or cannot be created.
        """
        run_id = check_name(run_id) if run_id is not None else make_run_id(config.train.track, config.train.seed)
        runs_dir = Path(runs_dir)
        if runs_dir.exists() and not runs_dir.is_dir():
            raise RunDirError(f"--runs-dir '{runs_dir}' is not a directory.")
        path = runs_dir / run_id
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.mkdir()
        except FileExistsError:
            raise RunDirError(f"run directory '{path}' exists already; it is never overwritten.") from None
        except OSError as exc:
            raise RunDirError(f"cannot create run directory '{path}': {os_message(exc)}") from None
        run = cls(path)
        try:
            run.lock()
            _make_folder(run.checkpoints)
            run.write_config(config, f"resolved configuration of run {run_id} (jepa-tui {__version__})")
        except BaseException:  # a full disk, say: no stub without config.toml is left behind
            run.close()
            shutil.rmtree(path, ignore_errors=True)
            raise
        return run

    def lock(self) -> RunDirectory:
        """Take the directory's writer lock (held until :meth:`close` or the process ends), after checking that
        every folder the run writes into is a real folder inside it (:meth:`check_folders`).

        Raises:
            DirectoryBusy: another writer holds it; the message says who. RunDirError: a folder of the run is a
            link or not a folder.
        """
        self.check_folders()
        if not self._lock.held:
            self._lock.acquire()
        return self

    def check_folders(self) -> None:
        """Refuse a run directory whose folders (``checkpoints/``, ``weights/``, ``evaluations/``, ``analysis/``,
        ``requests/``, ``requests/rejected/``) are links or files: the run would write, move or delete outside
        itself.

        Raises:
            RunDirError: naming the folder.
        """
        for name in RUN_FOLDERS:
            folder = self.path / name
            try:
                mode = os.lstat(folder).st_mode
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise RunDirError(f"cannot inspect '{folder}': {os_message(exc)}") from None
            if not stat.S_ISDIR(mode):
                kind = "a link" if stat.S_ISLNK(mode) else "not a folder"
                raise RunDirError(f"'{folder}' is {kind}: a run writes only inside its own directory; move it "
                                  f"away (or replace it by a folder) and try again.")

    def write_config(self, config: Config, description: str) -> None:
        """Write ``config.toml`` atomically: the fully resolved configuration, enough to rerun the run."""
        body = {"description": description, **config.to_dict()}
        atomic_write_bytes(self.path / "config.toml", lambda fh: fh.write(tomli_w.dumps(body).encode()))

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
        return cls(path)  # nothing is created here: a foreign folder stays as it was

    @property
    def run_id(self) -> str:
        return self.path.name

    def _append(self, name: str, record: dict) -> None:
        attr = f"_{name}"
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        try:
            fd = getattr(self, attr)
            if fd is None:
                # never through a symlink, never blocking on a FIFO: a hostile file here is an error, not a target
                fd = os.open(self.path / f"{name}.jsonl",
                             os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    os.close(fd)
                    raise OSError(f"'{self.path / name}.jsonl' is not a regular file")
                setattr(self, attr, fd)
            written = os.write(fd, line)  # one write of the whole line: a kill leaves it whole or torn, never mixed
        except OSError as exc:
            raise RunDirError(f"cannot append to '{self.path / name}.jsonl': {os_message(exc)}.") from None
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
        """Write ``summary.json`` atomically."""
        atomic_write_bytes(self.path / "summary.json",
                           lambda fh: fh.write((json.dumps(summary, indent=2) + "\n").encode()))

    def read_summary(self) -> dict | None:
        """The run's ``summary.json``, or None when there is none (yet) or it does not parse."""
        try:
            summary = json.loads(read_regular_file(self.path / "summary.json"))
        except (OSError, ValueError, RecursionError):
            return None
        return summary if isinstance(summary, dict) else None

    def save_checkpoint(self, state: dict, step: int, keep: set[int]) -> Path:
        """Write ``checkpoints/step_<step>.pt`` atomically, then delete the others not in ``keep`` ∪ {step}.

        Raises:
            RunDirError: when the checkpoint cannot be written (the older checkpoints are then all kept).
        """
        _make_folder(self.checkpoints)
        path = self.checkpoints / checkpoint_name(step)
        write_checkpoint(path, state)
        own = self.own_checkpoints()
        for old_step, old in self.checkpoint_paths().items():
            if old_step in keep | {step} or old.is_symlink():
                continue
            digests = own.get(old.relative_to(self.path).as_posix())
            if digests is not None and (not digests or sha256_file(old) in digests):
                old.unlink()  # only a file this run wrote (events.jsonl names it, with its digest)
        return path

    def own_checkpoints(self) -> dict[str, set[str]]:
        """The checkpoints this run wrote, from its ``checkpoint`` events: relative path -> SHA-256 digests
        recorded for it (empty for events written before digests were recorded)."""
        own: dict[str, set[str]] = {}
        for event in self.read_records("events"):
            if event.get("kind") == "checkpoint" and isinstance(event.get("path"), str):
                digest = event.get("sha256")
                own.setdefault(event["path"], set()).update([digest] if isinstance(digest, str) else [])
        return own

    def save_weights(self, state: dict, step: int) -> Path:
        """Write ``weights/step_<step>.pt`` atomically (kept for good: a few MB each).

        Raises:
            RunDirError: when it cannot be written.
        """
        _make_folder(self.weights)
        path = self.weights / checkpoint_name(step)
        write_checkpoint(path, state)
        return path

    def write_evaluations(self, tag: str, records: list[dict]) -> Path:
        """Write ``evaluations/<tag>.jsonl`` whole and atomically (``tag``: one safe path component).

        Raises:
            ValueError: a tag that is not one safe path component; RunDirError: when it cannot be written.
        """
        _make_folder(self.evaluations)
        path = self.evaluations / f"{check_name(tag, 'tag')}.jsonl"
        text = "".join(json.dumps(record, separators=(",", ":")) + "\n" for record in records)
        atomic_write_text(path, text)
        return path

    def read_evaluations(self) -> dict[str, list[dict]]:
        """Every ``evaluations/<tag>.jsonl``: tag -> its records (malformed lines left out)."""
        found: dict[str, list[dict]] = {}
        if not self.evaluations.is_dir() or self.evaluations.is_symlink():
            return found
        for path in sorted(self.evaluations.glob("*.jsonl")):
            try:
                data = read_regular_file(path)
            except OSError:
                continue
            found[path.stem] = parse_jsonl(data)[0]
        return found

    # -- reading back ----------------------------------------------------------------------------------------
    def checkpoint_paths(self) -> dict[int, Path]:
        """Complete checkpoints by step, oldest first (temporary files are not checkpoints)."""
        return _step_files(self.checkpoints)

    def weights_paths(self) -> dict[int, Path]:
        """Kept weights by step, oldest first."""
        return _step_files(self.weights)

    def _read(self, name: str) -> bytes:
        try:
            return read_regular_file(self.path / f"{name}.jsonl")
        except FileNotFoundError:
            return b""
        except OSError as exc:
            raise RunDirError(f"cannot read '{self.path / name}.jsonl': {exc}") from None

    def read_records(self, name: str) -> list[dict]:
        """The well-formed records of ``<name>.jsonl`` (a torn last line and malformed lines are left out).

        Raises:
            RunDirError: when the file is not a regular file or cannot be read.
        """
        return parse_jsonl(self._read(name))[0]

    def malformed_lines(self, name: str) -> int:
        """How many complete lines of ``<name>.jsonl`` are not well-formed records (and so are skipped)."""
        return count_malformed(self._read(name))

    def drop_torn_line(self, name: str) -> bytes:
        """Cut a last line without its newline (left by a kill mid-write) from ``<name>.jsonl``; returns it."""
        path = self.path / f"{name}.jsonl"
        data = self._read(name)
        end = data.rfind(b"\n") + 1
        if end == len(data):
            return b""
        os.truncate(path, end)
        return data[end:]

    def remove_partial_files(self) -> list[str]:
        """Delete temporary files a kill left behind mid-write (regular files only: a folder or link of that name
        is not the run's and stays); returns their names."""
        removed = []
        for folder in (self.path, self.checkpoints, self.weights, self.evaluations):
            if not folder.is_dir() or folder.is_symlink():
                continue
            for tmp in folder.glob(".*.tmp"):
                if stat.S_ISREG(os.lstat(tmp).st_mode):
                    tmp.unlink()
                    removed.append(str(tmp.relative_to(self.path)))
        return removed

    def roll_back_metrics(self, step: int) -> int:
        """Move the ``metrics.jsonl`` records after ``step`` to ``metrics.rolled_back.jsonl``; returns how many.

        A resumed run recomputes them from its checkpoint at ``step``; moving them keeps ``metrics.jsonl`` one
        history without losing what was written. The rewrite is atomic.
        """
        records = self.read_records("metrics")
        later = [r for r in records if r["step"] > step]
        if not later:
            return 0
        kept = [r for r in records if r["step"] <= step]
        try:
            earlier = read_regular_file(self.path / "metrics.rolled_back.jsonl").decode(errors="replace")
        except FileNotFoundError:
            earlier = ""
        except OSError as exc:
            raise RunDirError(f"cannot read '{self.path / 'metrics.rolled_back.jsonl'}': {exc}") from None
        atomic_write_text(self.path / "metrics.rolled_back.jsonl",
                          earlier + "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in later))
        body = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in kept).encode()
        atomic_write_bytes(self.path / "metrics.jsonl", lambda fh: fh.write(body))
        return len(later)

    def close(self) -> None:
        """Close the JSONL files and give up the writer lock."""
        for attr in ("_metrics", "_events"):
            fd = getattr(self, attr)
            if fd is not None:
                os.close(fd)
                setattr(self, attr, None)
        self._lock.release()


RUN_FOLDERS = ("checkpoints", "weights", "evaluations", "analysis", "requests", "requests/rejected")


def _make_folder(path: Path) -> None:
    """Create a folder of the run directory (never through a symlink).

    Raises:
        RunDirError: when it cannot be created or is not a real folder.
    """
    try:
        path.mkdir(exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create '{path}': {os_message(exc)}") from None
    if path.is_symlink() or not path.is_dir():
        raise RunDirError(f"'{path}' is not a folder of the run directory (a link or a file); move it away.")


def _step_files(folder: Path) -> dict[int, Path]:
    """``step_<N>.pt`` files of ``folder`` by step, oldest first (temporary files left out)."""
    found = {}
    if not folder.is_dir():
        return found
    for path in folder.glob(CHECKPOINT_GLOB):
        try:
            found[int(path.stem.split("_")[1])] = path
        except (IndexError, ValueError):
            continue
    return dict(sorted(found.items()))
