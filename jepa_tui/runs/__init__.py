"""Run and sweep directories on disk: the contract between the trainer that writes them and every reader (the
dashboard's ``watch``, ``report``, ``analyze``, sweeps). Nothing here imports training, the UI or reporting."""

from jepa_tui.runs.checkpoint import CheckpointError, load_checkpoint
from jepa_tui.runs.directory import RunDirectory, make_run_id
from jepa_tui.runs.files import RunDirError
from jepa_tui.runs.jsonl import JsonlTail, last_step, parse_jsonl

__all__ = ["CheckpointError", "JsonlTail", "RunDirError", "RunDirectory", "last_step", "load_checkpoint",
           "make_run_id", "parse_jsonl"]
