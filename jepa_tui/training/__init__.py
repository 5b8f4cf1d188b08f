"""Training (paper §4): the trainer and its step, objectives and schedules, the run loop that writes a run directory
through :mod:`jepa_tui.runs`, resume, run groups, the session a command or the dashboard starts, loggers, thermal
guard and control requests."""
