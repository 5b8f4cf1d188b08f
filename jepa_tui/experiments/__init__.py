"""Experiments over many runs: sweep specifications, the sweep logic, and the backends that execute the runs.

Each run is a ``jepa-tui train`` command line; nothing here imports the trainer.
"""
