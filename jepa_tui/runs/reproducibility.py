"""Whether a run is bitwise reproducible, read from its ``events.jsonl``.

A CPU run is bitwise reproducible at a fixed thread count (the count changes the order of floating-point sums); a
CUDA run only with PyTorch's deterministic algorithms (``train.deterministic``). A run whose thread count followed
the load (``train.threads = 0``, the default) reruns and resumes equal to rounding, not bitwise, even if no change
happened: a rerun's governor may act at other steps. A resume forced past a difference breaks it too.
"""

from __future__ import annotations

from jepa_tui.runs.records import sessions

BITWISE = "bitwise"


def reproducibility(events: list[dict]) -> tuple[str, str]:
    """("bitwise", "") or ("to rounding", why) or ("unknown", why), from every start and resume of a run."""
    found = sessions(events)
    if not found:
        return "unknown", "no start recorded"
    reasons = []
    if any(e.get("follows_load") for e in found):
        reasons.append("the CPU thread count followed the load (pin it: --deterministic or train.threads)")
    elif any(e.get("kind") == "threads" for e in events):
        reasons.append("the CPU thread count changed during the run")
    counts = {e.get("cpu_threads") for e in found if str(e.get("device", "cpu")).startswith("cpu")}
    if len(counts) > 1:
        reasons.append(f"sessions ran at different thread counts ({', '.join(map(str, sorted(counts, key=str)))})")
    if any(not str(e.get("device", "cpu")).startswith("cpu") and not e.get("deterministic") for e in found):
        reasons.append("trained on a GPU without deterministic algorithms (--deterministic)")
    if any(str(n).startswith("forced: ") for e in found for n in (e.get("notices") or [])):
        reasons.append("a resume was forced past a difference")
    if not reasons and any("cpu_threads" not in e and str(e.get("device", "cpu")).startswith("cpu")
                           for e in found):
        return "unknown", "written before thread counts were recorded"
    return (BITWISE, "") if not reasons else ("to rounding", "; ".join(reasons))
