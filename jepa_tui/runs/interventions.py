"""What happened to a run besides training, read from its ``events.jsonl``: freezes, pauses, track switches,
thermal pauses, suspensions and forced resumes. The report lists them and draws them on its figures; the dashboard
marks them on its curves."""

from __future__ import annotations

from dataclasses import dataclass

from jepa_tui.runs.records import of_kind

# Commands that change what a run computes when applied by hand (ui, request, replayed after a kill).
RESULT_CHANGING = frozenset({"freeze_buffer", "unfreeze_buffer", "freeze_ema", "unfreeze_ema"})
LABELS = {"freeze_buffer": "buffer frozen", "unfreeze_buffer": "buffer unfrozen", "freeze_ema": "EMA frozen",
          "unfreeze_ema": "EMA unfrozen", "pause": "paused", "resume": "resumed", "switch_away": "track switched away",
          "switch_back": "track switched back", "thermal_pause": "thermal pause", "thermal_resume": "thermal resume",
          "forced_resume": "forced resume", "suspended": "suspended (pause_request.flag)",
          "restart": "restarted from its checkpoint"}
# Short ASCII marks for the dashboard's curves.
MARKS = {"freeze_buffer": "bF", "unfreeze_buffer": "bU", "freeze_ema": "eF", "unfreeze_ema": "eU", "pause": "P",
         "resume": "R", "switch_away": "S>", "switch_back": "S<", "thermal_pause": "T", "thermal_resume": "T<",
         "forced_resume": "F!", "suspended": "Z", "restart": "R*"}


@dataclass(frozen=True)
class Intervention:
    """Something that happened to a run besides training: a freeze, pause, track switch, thermal pause, forced
    resume. ``source`` is who did it: "ui", "request" (from ``watch``), "profile" (scheduled), "replay" (re-applied
    after a kill), "switch" (the dashboard changed track), "thermal", "resume --force", "flag"."""

    step: int
    kind: str
    source: str
    detail: str = ""

    @property
    def changes_results(self) -> bool:
        """A freeze or unfreeze not scheduled by the profile, or a resume forced past a difference."""
        return (self.kind in RESULT_CHANGING and self.source != "profile") or self.kind == "forced_resume"

    @property
    def label(self) -> str:
        return f"{LABELS.get(self.kind, self.kind)} ({self.source})"

    @property
    def mark(self) -> str:
        """A two-character ASCII mark for a curve (the dashboard's help lists them)."""
        return MARKS.get(self.kind, "?")


# What each freeze command sets: a command that finds its state already so changed nothing and is not listed.
FREEZE_STATE = {"freeze_buffer": ("buffer", True), "unfreeze_buffer": ("buffer", False),
                "freeze_ema": ("ema", True), "unfreeze_ema": ("ema", False)}


def interventions(events: list[dict]) -> list[Intervention]:
    """The interventions recorded in a run's ``events.jsonl`` records, in order; a freeze of what is already frozen
    (or an unfreeze of what is not) changed nothing and is left out."""
    out: list[Intervention] = []
    frozen = {"buffer": False, "ema": False}
    for e in events:
        kind, step = e.get("kind"), e.get("step")
        if not isinstance(step, int):
            continue
        if kind == "command":
            command, source = str(e.get("command")), str(e.get("source", "?"))
            if source == "switch" and command in ("pause", "resume"):
                command = "switch_away" if command == "pause" else "switch_back"
            if command in FREEZE_STATE:
                what, value = FREEZE_STATE[command]
                if frozen[what] == value:
                    continue
                frozen[what] = value
            if command in LABELS:
                out.append(Intervention(step, command, source))
        elif kind in ("thermal_pause", "thermal_resume"):
            out.append(Intervention(step, kind, "thermal", f"{e.get('temperature_c', '?')} °C"))
        elif kind == "pause_request":
            out.append(Intervention(step, "suspended", "flag"))
        elif kind == "resume":
            notices = e.get("notices", []) if isinstance(e.get("notices"), list) else []
            forced = [n.removeprefix("forced: ") for n in notices if str(n).startswith("forced: ")]
            if forced:
                out.append(Intervention(step, "forced_resume", "resume --force", "; ".join(forced)))
            else:
                out.append(Intervention(step, "restart", "resume"))
    return out


def marks_by_step(events: list[dict]) -> dict[int, list[str]]:
    """The short marks of a run's interventions and stream world switches ("W<world>", [data.stream]) at each step
    where something happened, in order, each mark once per step."""
    at: dict[int, list[str]] = {}
    for item in interventions(events):
        at.setdefault(item.step, []).append(item.mark)
    for event in of_kind(events, "world_switch"):
        if event.get("previous") is not None and isinstance(event.get("step"), int):
            at.setdefault(event["step"], []).append(f"W{event.get('world')}")
    return {step: list(dict.fromkeys(marks)) for step, marks in sorted(at.items())}


def crowd(marks: dict[int, list[str]] | list[tuple[float, list[str]]], units_per_char: float,
          max_chars: int = 7) -> list[tuple[float, str]]:
    """Lay marks out on one text lane so that none prints over another: a mark starts at its x, and a mark closer
    to the previous label's start than that label's width plus one space (``units_per_char``: x units per
    character) joins it. A merged label lists its marks ("bF/eF") or, past ``max_chars``, its first mark and how
    many more ("bF+11"). Returns (x of the group's first mark, label) in order of x."""
    items = sorted(marks.items() if isinstance(marks, dict) else marks)
    groups: list[tuple[float, list[str], int]] = []  # x, distinct marks, how many marks
    for x, names in items:
        if groups:
            start, names0, count = groups[-1]
            if (x - start) / max(units_per_char, 1e-12) < len(_label(names0, count, max_chars)) + 1:
                groups[-1] = (start, list(dict.fromkeys(names0 + names)), count + len(names))
                continue
        groups.append((x, list(names), len(names)))
    return [(x, _label(names, count, max_chars)) for x, names, count in groups]


def _label(names: list[str], count: int, max_chars: int) -> str:
    joined = "/".join(names)
    return joined if len(joined) <= max_chars and count == len(names) else f"{names[0]}+{count - 1}"
