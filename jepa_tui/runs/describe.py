"""One sentence per record of a run's ``events.jsonl`` (and its evaluations), in one place: the headless
console prints some of them as they happen, the dashboard's event log (v) lists them all."""

from __future__ import annotations

from jepa_tui.runs.interventions import LABELS

VIA = {"request": "a request (watch)", "profile": "the profile", "replay": "a replay after a kill",
       "ui": "the dashboard", "switch": "a track switch"}


def describe_event(record: dict) -> str | None:
    """What the record says, as one plain sentence (its step included where the headless log needs it), or None
    for a kind with nothing to say. Never raises on a damaged record: a missing field reads "?"."""
    r = _Lenient(record)
    kind = record.get("kind")
    if kind == "checkpoint":
        return f"checkpoint saved at step {r['step']} ({r['reason']}): {r['path']}"
    if kind == "thermal_pause":
        return (f"cooling: GPU at {_num(r['temperature_c'], '.0f')} °C (above {_num(r['pause_at_c'], 'g')} °C); "
                f"training paused at step {r['step']}, resuming below {_num(r['resume_at_c'], 'g')} °C")
    if kind == "thermal_resume":
        return f"training again: GPU at {_num(r['temperature_c'], '.0f')} °C"
    if kind == "pause_request":
        return f"{r['flag']} found at step {r['step']}: checkpointing and exiting"
    if kind == "command":
        source = record.get("source")
        what = LABELS.get(str(record.get("command")), str(record.get("command")))
        return f"{r['command']} applied at step {r['step']} from {VIA.get(str(source), source)} ({what})"
    if kind == "threads":
        return (f"CPU threads {r['previous']} → {r['threads']} at step {r['step']}: other processes use "
                f"{_num(r['others_cores'], '.1f')} of {r['cores']} cores")
    if kind == "world_switch":
        return f"world {r['world']} from step {r['first_step']}: {r['physics']}"
    if kind == "compiled":
        return f"compiled the training step ({r['mode']}) in {_num(r['seconds'], '.1f')} s"
    if kind == "request_rejected":
        return f"request {r['name']} set aside: {r['reason']}"
    if kind == "non_finite":
        return f"non-finite values detected at step {r['detected_at_step']}: {r['terms']}"
    if kind in ("start", "resume"):
        notices = record.get("notices") if isinstance(record.get("notices"), list) else []
        return (f"{'started' if kind == 'start' else 'resumed from its checkpoint'} on {r['device']} "
                f"(code {r['version']})" + "".join(f"; {n}" for n in notices))
    if kind == "end":
        reason = f" ({record['reason']})" if record.get("reason") else ""
        error = f": {record['error']}" if record.get("error") else ""
        return f"ended at step {r['step']}: {r['status']}{reason}{error}"
    if kind == "eval":
        return (f"evaluated at step {r['step']}: D_shift {_num(r['d_shift'], '.4f')}  σ_z {_num(r['sigma_z'], '.3f')}"
                f"  d_base {_num(r['d_base'], '.4f')}")
    return None


class _Lenient(dict):
    """A record whose missing fields read "?"."""

    def __missing__(self, key: str) -> str:
        return "?"


def _num(value, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, int | float) and not isinstance(value, bool) else str(value)
