"""A sweep directory's ``manifest.json``: the sweep it was started with and its runs, one run directory each.

The file is the contract between whoever runs a sweep (:mod:`jepa_tui.experiments`) and whoever reads it (the
report): ``{"spec": {...}, "runs": [{"name", "variant", "track", "seed", "overrides", "jobs"}, ...]}``, where
``jobs`` lists every ``{"backend", "job_id", "started"}`` that ran the run, oldest first.
"""

from __future__ import annotations

import json
from pathlib import Path

from jepa_tui.runs.files import RunDirError, atomic_write_text, os_message
from jepa_tui.runs.jsonl import read_regular_file

MANIFEST = "manifest.json"


def write_manifest(sweep_dir: Path, body: dict) -> None:
    """Write ``manifest.json`` in ``sweep_dir`` (created if missing) atomically.

    Raises:
        RunDirError: when the folder or the file cannot be written.
    """
    try:
        sweep_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create sweep directory '{sweep_dir}': {os_message(exc)}") from None
    atomic_write_text(sweep_dir / MANIFEST, json.dumps(body, indent=2) + "\n")


def read_manifest(sweep_dir: Path) -> dict:
    """The manifest of ``sweep_dir`` as written.

    Raises:
        OSError, ValueError: when it is missing, not a regular file, not JSON or not a JSON object.
    """
    try:
        body = json.loads(read_regular_file(Path(sweep_dir) / MANIFEST))
    except RecursionError:
        raise ValueError("nested too deeply to be a manifest") from None
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    return body


def sweep_variant(run_dir: Path) -> str:
    """The sweep variant of a run directory, from its sweep's manifest ("" outside a sweep, for no variant, or
    when the manifest cannot be read)."""
    try:
        runs = read_manifest(run_dir.parent).get("runs", [])
        for run in runs:
            if isinstance(run, dict) and run.get("name") == run_dir.name and isinstance(run.get("variant"), str):
                return run["variant"]
    except (OSError, ValueError, AttributeError, TypeError):
        pass
    return ""
