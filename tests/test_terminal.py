"""`jepa-tui run` in a real terminal (tmux): boots, shows the six panels, pauses on p, exits cleanly on q."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

# The last panel is the GPU's on a machine NVML can read, else the CPU and memory panel.
TITLES = ("Loss", "Shift-world error", "Experience buffer", "Boundary events", "Modulation")


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False).stdout


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return False


def start_run(session: str, runs, echo_exit: bool = True) -> None:
    """`jepa-tui run --profile smoke` in a detached 120×36 tmux session (kept after exit when ``echo_exit``, with
    "EXITED <code>" printed)."""
    command = f"{sys.executable} -m jepa_tui.cli.main run --profile smoke --steps 100000 --runs-dir {runs}"
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "36", command + ("; echo EXITED $?" if echo_exit
                                                                                 else ""))
    if echo_exit:
        tmux("set-option", "-t", session, "remain-on-exit", "on")


def test_run_in_tmux_boots_pauses_and_quits(tmp_path):
    session = f"jepa-tui-test-{os.getpid()}"
    runs = tmp_path / "runs"
    start_run(session, runs)
    try:
        pane = lambda: tmux("capture-pane", "-p", "-t", session)  # noqa: E731
        status = lambda: pane().splitlines()[0] if pane() else ""  # noqa: E731
        assert wait_for(lambda: all(t in pane() for t in TITLES) and ("GPU" in pane() or "CPU and memory" in pane())
                        and status().strip().startswith("training") and "step 0/" not in status(), 90), pane()
        tmux("send-keys", "-t", session, "p")
        assert wait_for(lambda: status().strip().startswith("paused"), 30), pane()
        tmux("send-keys", "-t", session, "q")
        assert wait_for(lambda: "EXITED 0" in pane(), 60), pane()
        after = tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", session)  # wrapped lines joined, scrollback
    finally:
        tmux("kill-session", "-t", session)
    (run_dir,) = runs.iterdir()
    assert run_dir.name in after  # the run directory is printed once the normal screen is back
    assert "track C: stopped at step" in after and "continue with: jepa-tui run --resume" in after
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "stopped"
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert [e["command"] for e in events if e["kind"] == "command"] == ["pause"]


def test_terminal_going_away_checkpoints_and_exits(tmp_path):
    """An SSH drop: the terminal disappears (SIGHUP); the run checkpoints, writes its summary and the process ends."""
    session = f"jepa-tui-hup-{os.getpid()}"
    runs = tmp_path / "runs"
    start_run(session, runs, echo_exit=False)
    try:
        status = lambda: (tmux("capture-pane", "-p", "-t", session).splitlines() or [""])[0]  # noqa: E731
        started = wait_for(lambda: status().strip().startswith("training") and "step 0/" not in status(), 180)
        assert started, tmux("capture-pane", "-p", "-t", session)  # show the screen when it did not start
    finally:
        tmux("kill-session", "-t", session)
    alive = lambda: subprocess.run(["pgrep", "-f", f"runs-dir {runs}"], capture_output=True).returncode == 0  # noqa: E731
    assert wait_for(lambda: not alive(), 60), "the process outlived its terminal"
    (run_dir,) = runs.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["stop_reason"] == "SIGHUP"  # SIGHUP behaves as SIGTERM


def test_the_switch_back_recipe_in_tmux_never_ends_the_dashboard(tmp_path):
    """The issue's recipe: at 120×36 press 1, wait 5 s, press 3 (the switch back killed the dashboard in plotext's
    legend builder); then at 80×24 1 → t → 3 and a dozen more keys. No traceback reaches the screen, the curves
    and numbers keep coming, and q stops every run cleanly."""
    session = f"jepa-tui-switch-{os.getpid()}"
    runs = tmp_path / "runs"
    start_run(session, runs)

    def pane() -> str:
        return tmux("capture-pane", "-p", "-t", session)

    def step() -> int:
        first = pane().splitlines()[0] if pane() else ""
        words = first.split()
        return int(words[words.index("step") + 1].split("/")[0]) if "step" in words else -1

    def keys(*names: str, gap: float = 0.4) -> None:
        for name in names:
            tmux("send-keys", "-t", session, name)
            time.sleep(gap)
            assert "Traceback" not in pane(), pane()

    try:
        assert wait_for(lambda: "Track C" in pane() and step() > 0, 90), pane()
        keys("1")
        assert wait_for(lambda: "Track A" in pane() and step() > 0, 30), pane()
        time.sleep(5)
        keys("3")
        assert wait_for(lambda: "Track C" in pane(), 30), pane()
        tmux("resize-window", "-t", session, "-x", "80", "-y", "24")
        keys("1", "t", "3", "b", "e", "p", "p", "Tab", "z", "l", "+", "z", "f", "f", "v", "Escape", "c",
             "Escape", "Tab", "Tab")  # tmux's key names
        before = step()
        assert wait_for(lambda: step() > before and "Track C" in pane(), 60), pane()  # still training, drawn
        assert "Traceback" not in pane() and "cannot draw" not in pane(), pane()
        keys("q")
        assert wait_for(lambda: "EXITED 0" in pane(), 90), pane()
    finally:
        tmux("kill-session", "-t", session)
    for run_dir in runs.iterdir():
        assert json.loads((run_dir / "summary.json").read_text())["status"] == "stopped", run_dir
