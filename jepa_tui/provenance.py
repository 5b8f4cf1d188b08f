"""Which code wrote a run: the package version and a digest of the package's source files.

Checkpoints record it, and resuming under different code is refused unless forced (spec §8: resume exactly), so a
silent change of the model or the training step cannot splice two different computations into one run.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from jepa_tui import __version__


@functools.cache
def code_version() -> str:
    """``<version>+<12 hex digits>``: the version and the SHA-256 of every ``.py`` file of the package, in order."""
    root = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root).parts[0] == "profiles":  # the repository's profiles/ folder: data, not code
            continue
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:12]}"
