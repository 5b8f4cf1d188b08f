"""The terminal dashboard: a Textual app that sends commands and draws snapshots of runs."""
