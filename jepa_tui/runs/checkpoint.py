"""Checkpoint files ``checkpoints/step_XXXXXXXX.pt``: written whole (temporary file, then rename) and read back
with ``weights_only=True``, so a checkpoint can hold tensors and plain values but never runs code."""

from __future__ import annotations

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


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint written by :meth:`~jepa_tui.runs.directory.RunDirectory.save_checkpoint`.

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
