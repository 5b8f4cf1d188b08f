"""A sweep directory's ``manifest.json``: the sweep it was started with and its runs, one run directory each.

The file is the contract between whoever runs a sweep (:mod:`jepa_tui.experiments`) and whoever reads it (the
report): ``{"spec": {...}, "runs": [{"name", "variant", "track", "seed", "overrides"}, ...]}``.
"""

from __future__ import annotations

import json
from pathlib import Path

MANIFEST = "manifest.json"


def write_manifest(sweep_dir: Path, body: dict) -> None:
    """Write ``manifest.json`` in ``sweep_dir`` (created if missing)."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / MANIFEST).write_text(json.dumps(body, indent=2) + "\n")


def read_manifest(sweep_dir: Path) -> dict:
    """The manifest of ``sweep_dir`` as written.

    Raises:
        OSError, ValueError: when it is missing or not JSON.
    """
    return json.loads((Path(sweep_dir) / MANIFEST).read_text())


def sweep_variant(run_dir: Path) -> str:
    """The sweep variant of a run directory, from its sweep's manifest ("" outside a sweep or for no variant)."""
    manifest = run_dir.parent / MANIFEST
    if manifest.is_file():
        for run in json.loads(manifest.read_text()).get("runs", []):
            if run["name"] == run_dir.name:
                return run["variant"]
    return ""
