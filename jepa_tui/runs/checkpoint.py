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


def _tensors(tree: object, prefix: str) -> list[tuple[str, torch.Tensor]]:
    if isinstance(tree, torch.Tensor):
        return [(prefix, tree)]
    if isinstance(tree, dict):
        return [item for key, value in tree.items() for item in _tensors(value, f"{prefix}.{key}")]
    if isinstance(tree, list | tuple):
        return [item for i, value in enumerate(tree) for item in _tensors(value, f"{prefix}.{i}")]
    return []


def check_trainer_state(state: dict, path: Path, step: int) -> None:
    """Check a loaded checkpoint's trainer state before anything uses it: every counter's type and range,
    ``progress.step`` equal to the step in the file's name, and every floating-point tensor (parameters, buffers,
    optimiser moments) finite.

    Raises:
        CheckpointError: naming the file, the field and what it holds (quoted, at most ~200 characters).
    """
    from jepa_tui.config.validation import shorten

    trainer = state.get("trainer")
    if not isinstance(trainer, dict):
        raise CheckpointError(f"checkpoint '{path}' is not a jepa-tui checkpoint (no trainer state).")

    def bad(field: str, value: object, want: str) -> CheckpointError:
        return CheckpointError(f"checkpoint '{path}': {field} is {shorten(value)}; {want}.")

    progress = trainer.get("progress")
    if not isinstance(progress, dict):
        raise bad("progress", progress, "a table of counters was expected")
    if type(progress.get("step")) is not int or progress["step"] != step:
        raise bad("progress.step", progress.get("step"), f"the file is named for step {step}")
    seconds = progress.get("seconds")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or not 0 <= seconds < float("inf"):
        raise bad("progress.seconds", seconds, "a finite number of seconds >= 0 was expected")
    peak = progress.get("peak_step")
    if peak is not None and (type(peak) is not int or not 0 <= peak <= step):
        raise bad("progress.peak_step", peak, f"a step in [0, {step}] or none was expected")
    for field in ("boundary_events", "stat_steps", "slots_bound"):
        value = trainer.get(field)
        if type(value) is not int or value < 0:
            raise bad(field, value, "a count >= 0 was expected")
    for field in ("buffer_frozen", "ema_frozen"):
        if type(trainer.get(field)) is not bool:
            raise bad(field, trainer.get(field), "true or false was expected")
    for name, tensor in _tensors({"model": trainer.get("model"), "optimizer": trainer.get("optimizer")}, "trainer"):
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"checkpoint '{path}' holds non-finite values ({name[len('trainer.'):]}): a "
                                  "diverged model, not a point to resume from.")
