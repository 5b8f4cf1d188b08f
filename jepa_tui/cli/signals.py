"""Signals turned into a clean stop of a headless run (spec §8; paper App. D).

SIGINT (Ctrl-C), SIGTERM and SIGHUP (an SSH drop) ask the run loop to stop at the end of the current step, which
then checkpoints and writes the summary; the command exits with 130 (SIGINT) or 143 (SIGTERM, and SIGHUP, which
behaves as SIGTERM). A second SIGINT exits at once with 130: files are flushed record by record and checkpoints
are renamed into place whole, so nothing already written is damaged.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from types import FrameType
from typing import TextIO

from jepa_tui.exits import SIGNAL_EXIT_CODES, SignalHandling

EXIT_CODES = SIGNAL_EXIT_CODES  # the signals handled, and the exit code of each (jepa_tui.exits)


class SignalStop(SignalHandling):
    """A context manager that installs the handlers and answers the run loop's ``should_stop``.

    Args:
        stream: where the one-line acknowledgement goes (stderr; errors writing it are ignored, the terminal may
            be gone).
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.reason: str | None = None

    def restored(self, signum: int, previous: object) -> object:
        if self.reason is not None and signum != signal.SIGINT:
            # stopping already: a second SIGHUP or SIGTERM while the summary is written must not end the process
            # with its default code (129) instead of the documented one
            return signal.SIG_IGN
        return previous

    def __call__(self) -> str | None:
        """The signal's name once one arrived, else None (the run loop's ``should_stop``)."""
        return self.reason

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.reason or "", 0)

    def _say(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            print(f"jepa-tui: {text}", file=self.stream, flush=True)

    def handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.reason is None:
            self.reason = name
            more = " (Ctrl-C again exits at once)" if name == "SIGINT" else ""
            self._say(f"{name}: saving a checkpoint at the end of this step{more}")
        elif name == "SIGINT":
            self._say("second SIGINT: exiting now; resume from the last checkpoint")
            os._exit(EXIT_CODES["SIGINT"])
