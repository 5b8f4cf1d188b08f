"""jepa-tui: train and study EPM-JEPA world models under distribution shift.

In a notebook: ``jepa_tui.open_run(path)`` gives a run's configuration, summary and records as pandas DataFrames,
``jepa_tui.open_runs(folder)`` the table of every run under a folder (:mod:`jepa_tui.runs.notebook`).
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["open_run", "open_runs"]


def __getattr__(name: str):
    # Lazily: `import jepa_tui` stays cheap for the command line (no torch, no pandas until asked for).
    if name in __all__:
        from jepa_tui.runs import notebook

        return getattr(notebook, name)
    raise AttributeError(f"module 'jepa_tui' has no attribute {name!r}")
