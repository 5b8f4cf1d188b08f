"""The dashboard's keys that act on runs: pause, the freezes, track switches and save (p b e f 1-5 t s), sent as
commands to the active run, and the run browser's choices (overlay a run on the curves, or watch it). A key
pressed twice quickly acts on what the run will be (toggles sent but not yet seen in its records are counted)."""

from __future__ import annotations

import time
from pathlib import Path

from jepa_tui.config import ConfigError, load_run_config
from jepa_tui.config.tracks import TRACKS
from jepa_tui.runs import RunDirectory, RunDirError
from jepa_tui.runs.catalog import RunInfo
from jepa_tui.training.control import Command
from jepa_tui.ui.screens import RunBrowser
from jepa_tui.ui.state import RunState

EXPECT_S = 5.0  # seconds a toggle sent is assumed to take effect before the run's records show it


def overlay_state(run_dir: Path) -> RunState | None:
    """A run directory's records read into a state (for an overlay), or None when it cannot be read."""
    try:
        state = RunState.from_config(load_run_config(run_dir), Path(run_dir).name)
        state.read_history(RunDirectory(run_dir))
    except (RunDirError, ConfigError, OSError):
        return None
    return state


class RunKeys:
    """Mixed into :class:`~jepa_tui.ui.app.Dashboard`, which provides ``controller``, ``state``, ``overlays``,
    ``overlaid``, ``_expected``, ``notify``, ``push_screen`` and ``refresh_panels``."""

    def _send(self, command: Command) -> bool:
        """Send a command to the active run; a run that cannot act on it (watch of an ended or killed run) is
        refused with a toast saying why. Returns whether it was sent."""
        refusal = self.controller.command(command)
        if refusal is not None:
            self.notify(refusal, severity="warning", timeout=8)
        return refusal is None

    def _believed(self, what: str) -> bool:
        """Whether the active run is paused ("paused"), its buffer frozen ("buffer") or its EMA target frozen
        ("ema"), counting the toggles sent but not yet seen in its records (for up to ``EXPECT_S`` seconds): a
        key pressed twice quickly, or right after a track switch, acts on what the run will be, not on what the
        screen showed a moment ago."""
        state = self.state
        actual = {"paused": state.status == "paused", "buffer": state.buffer_frozen, "ema": state.ema_frozen}[what]
        key = (self.controller.active, what)
        value, at = self._expected.get(key, (actual, 0.0))
        if value == actual or time.monotonic() - at > EXPECT_S:
            self._expected.pop(key, None)
            return actual
        return value

    def _send_expecting(self, command: Command, what: str, value: bool) -> None:
        """Send ``command`` to the active run; once sent, expect ``what`` to become ``value`` (:meth:`_believed`)."""
        if self._send(command):
            self._expect(self.controller.active, what, value)

    def _expect(self, track: str, what: str, value: bool) -> None:
        self._expected[(track, what)] = (value, time.monotonic())

    def _toggle(self, what: str, on: Command, off: Command) -> None:
        believed = self._believed(what)
        self._send_expecting(off if believed else on, what, not believed)

    def action_pause(self) -> None:
        self._toggle("paused", Command.PAUSE, Command.RESUME)

    def action_freeze_buffer(self) -> None:
        self._toggle("buffer", Command.FREEZE_BUFFER, Command.UNFREEZE_BUFFER)

    def action_freeze_ema(self) -> None:
        if not self.state.has_ema:
            self.notify("model.target = \"stopgrad\": the targets come from the online encoder, so there is no EMA "
                        "target to freeze", timeout=5)
            return
        self._toggle("ema", Command.FREEZE_EMA, Command.UNFREEZE_EMA)

    def action_dual_freeze(self) -> None:
        """Freeze buffer and EMA together (the paper's dual freeze); when both are frozen, unfreeze both."""
        if not self.state.has_ema:
            self.notify("no EMA target (model.target = \"stopgrad\"): f freezes the buffer alone", timeout=5)
            self.action_freeze_buffer()
            return
        both = self._believed("buffer") and self._believed("ema")
        for what, command in ((("buffer", Command.UNFREEZE_BUFFER), ("ema", Command.UNFREEZE_EMA)) if both else
                              (("buffer", Command.FREEZE_BUFFER), ("ema", Command.FREEZE_EMA))):
            self._send_expecting(command, what, not both)

    def action_track(self, track: str) -> None:
        if not self.controller.live:
            self.notify("watch follows one run directory; start `jepa-tui run` to switch tracks", timeout=3)
            return
        previous = self.controller.active
        self.controller.switch(track)
        if track != previous:  # the switch pauses the run left and resumes the one chosen
            self._expect(previous, "paused", True)
            self._expect(track, "paused", False)
        self.refresh_panels(force=True)

    def action_next_track(self) -> None:
        self.action_track(TRACKS[(TRACKS.index(self.controller.active) + 1) % len(TRACKS)])

    def action_save(self) -> None:
        if self._send(Command.SAVE):
            self.notify("saving a checkpoint at the next step boundary (it is kept)", timeout=3)

    def action_browse(self) -> None:
        marks = {path: f"{i} {name}" for i, (path, name) in enumerate(self.overlaid.items(), start=1)}
        self.push_screen(RunBrowser(self.controller.runs_root, can_watch=not self.controller.live, overlaid=marks),
                         self._chosen)

    def _chosen(self, choice: tuple[str, RunInfo] | None) -> None:
        if choice is None:
            return
        what, info = choice
        if what == "watch" and not self.controller.live:
            try:
                self.controller.attach(Path(info.path))
            except (OSError, ValueError) as exc:
                self.notify(f"cannot watch {info.run_id}: {exc}", severity="error")
                return
            self.overlays.clear()
            self.overlaid.clear()
            self.notify(f"watching {info.run_id}", timeout=3)
        elif what == "overlay":
            self._toggle_overlay(info)
        self.refresh_panels(force=True)

    def _toggle_overlay(self, info: RunInfo) -> None:
        """Overlay a run chosen in the run browser on every curve panel, named by track and seed (its run id
        too where two share them), or remove it."""
        if info.path in self.overlaid:
            del self.overlays[self.overlaid.pop(info.path)]
            self.notify(f"{info.run_id} removed from the curves", timeout=3)
            return
        state = overlay_state(Path(info.path))
        if state is None:
            self.notify(f"cannot read {info.run_id} to overlay it", severity="error")
            return
        name = f"{info.track} s{info.seed}"
        name = name if name not in self.overlays else f"{name} {info.run_id}"
        self.overlays[name] = state
        self.overlaid[info.path] = name
        self.notify(f"{info.run_id} overlaid on every curve as {len(self.overlays) % 10} {name}", timeout=3)
