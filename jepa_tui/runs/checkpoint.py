"""Checkpoint files ``checkpoints/step_XXXXXXXX.pt``: written whole (temporary file, then rename) and read back
with ``weights_only=True``, so a checkpoint can hold tensors and plain values but never runs code."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import torch

from jepa_tui.runs.files import atomic_write_bytes

CHECKPOINT_GLOB = "step_*.pt"


class CheckpointError(ValueError):
    """A checkpoint file cannot be read (truncated, corrupt, or not a jepa-tui checkpoint)."""


def checkpoint_name(step: int) -> str:
    """``step_<8 digits>.pt``."""
    return f"step_{step:08d}.pt"


def write_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` to ``path`` atomically (raises RunDirError when it cannot be written)."""
    atomic_write_bytes(path, lambda fh: torch.save(state, fh))


def verify_checkpoint(path: Path) -> None:
    """Check every member of the checkpoint's zip archive against the CRC-32 written with it (``torch.save``
    writes one per member); a flipped byte anywhere in a tensor fails here, where ``torch.load`` would not notice.

    Raises:
        CheckpointError: naming the damaged member, or saying the file is not a zip archive.
    """
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise CheckpointError(f"checkpoint '{path}' is not a regular file.")
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (OSError, zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as exc:
        raise CheckpointError(f"checkpoint '{path}' is corrupt or not a jepa-tui checkpoint ({exc}).") from None
    if bad is not None:
        raise CheckpointError(f"checkpoint '{path}' is damaged: member '{bad}' fails its CRC check.")


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint written by :meth:`~jepa_tui.runs.directory.RunDirectory.save_checkpoint`, after
    :func:`verify_checkpoint`.

    Raises:
        CheckpointError: when the file is truncated, damaged, corrupt or not a jepa-tui checkpoint.
    """
    verify_checkpoint(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, pickle.UnpicklingError, EOFError, ... for damaged files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"checkpoint '{path}' is corrupt or not a jepa-tui checkpoint ({reason[:160]}).") \
            from None
    if not isinstance(state, dict) or not {"version", "config", "trainer"} <= state.keys():
        raise CheckpointError(f"checkpoint '{path}' is not a jepa-tui checkpoint (missing version/config/trainer).")
    return state
