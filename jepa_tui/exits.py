"""The exit codes of ``jepa-tui`` commands, in one place (README, "Command line").

0 done; 2 bad input (profile, key, value, digit file, device, run directory, checkpoint, a resume that differs); 3 a
non-finite loss; 74 the run directory cannot be written (disk full, permissions); 75 suspended by
``pause_request.flag``; 130 SIGINT; 143 SIGTERM or SIGHUP (an SSH drop, which behaves as SIGTERM). Every stop but 2
and 3 leaves a checkpoint to ``--resume`` from.
"""

from __future__ import annotations

import signal
import threading

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_NON_FINITE = 3
EXIT_IO = 74
EXIT_SUSPENDED = 75
EXIT_INTERRUPTED = 130  # SIGINT
EXIT_TERMINATED = 143  # SIGTERM, and SIGHUP
SIGNAL_EXIT_CODES = {"SIGINT": EXIT_INTERRUPTED, "SIGTERM": EXIT_TERMINATED, "SIGHUP": EXIT_TERMINATED}
# the codes of a `jepa-tui train` that ended with a summary.json written (a sweep reads the run's outcome there)
EXITS_WITH_SUMMARY = frozenset({EXIT_OK, EXIT_NON_FINITE, EXIT_SUSPENDED, EXIT_INTERRUPTED, EXIT_TERMINATED})


def exit_code(summary: dict) -> int:
    """The exit code of a training command whose run ended with ``summary`` (``status``, ``stop_reason``)."""
    status = summary["status"]
    if status == "failed":
        return EXIT_NON_FINITE
    if status == "suspended":
        return EXIT_SUSPENDED
    if status == "interrupted":
        return SIGNAL_EXIT_CODES.get(summary.get("stop_reason") or "", EXIT_INTERRUPTED)
    return EXIT_OK


class SignalHandling:
    """While inside (``with``), SIGINT, SIGTERM and SIGHUP call :meth:`handle`; the previous handlers come back on
    exit (:meth:`restored` may choose another). Off the main thread, where Python cannot install handlers, it
    installs nothing. The one way this package takes signals: a headless run stopping cleanly
    (:class:`jepa_tui.cli.signals.SignalStop`) and a sweep passing them on to its runs
    (:class:`jepa_tui.experiments.sweep.SignalForwarder`)."""

    signals = tuple(SIGNAL_EXIT_CODES)

    def __enter__(self):
        self._previous: dict[int, object] = {}
        if threading.current_thread() is threading.main_thread():
            for name in self.signals:
                signum = getattr(signal, name, None)
                if signum is not None:
                    self._previous[signum] = signal.signal(signum, self.handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, self.restored(signum, handler))

    def handle(self, signum: int, frame: object) -> None:
        raise NotImplementedError

    def restored(self, signum: int, previous: object) -> object:
        """The handler to put back for ``signum`` on exit: the previous one."""
        return previous
