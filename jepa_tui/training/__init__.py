"""Objective, schedules, the trainer and the run directory (paper §4)."""
