"""The ``jepa-tui`` command line."""
