"""Which code wrote a run: the package version and a digest of the package's source files.

Checkpoints record it, and resuming under different code is refused unless forced (spec §8: resume exactly), so a
silent change of the model or the training step cannot splice two different computations into one run.
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
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


def describe_version() -> str:
    """What ``jepa-tui --version`` prints: the code version, what its digest covers, and the git commit when the
    package runs from a checkout (with "source modified" when its files differ from that commit)."""
    root = Path(__file__).parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "--short=12", "HEAD") if (root.parent / ".git").exists() else None
    if commit is None:
        where = "installed, not a git checkout"
    else:
        changed = git("status", "--porcelain", "--", ".")
        where = f"git commit {commit}" + (", source modified since" if changed else "")
    return f"jepa-tui {code_version()} (the suffix is a digest of the package's source files; {where})"
