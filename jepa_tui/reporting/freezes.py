"""Table 2 of the report: freeze ablations and the settling transient of D_shift after a freeze or the peak (spec §6
Table 2; the paper's §5.3 question for Tracks D and E)."""

from __future__ import annotations

from dataclasses import dataclass

from jepa_tui.config import MODULATED_TRACKS  # the settling transient is asked about these
from jepa_tui.reporting.cells import _f
from jepa_tui.reporting.collect import RunRecord


def _freeze_of(run: RunRecord) -> tuple[int, str, str] | None:
    """(step, kind, how) of a run's first freeze: the profile's scheduled one or the first applied by hand."""
    t = run.config.train
    scheduled = [s for s in (t.freeze_buffer_at, t.freeze_ema_at) if s is not None]
    if scheduled:
        kind = {(True, True): "dual", (True, False): "buffer only", (False, True): "EMA only"}[
            (t.freeze_buffer_at is not None, t.freeze_ema_at is not None)]
        return min(scheduled), kind, "profile"
    manual = [i for i in run.interventions if i.kind in ("freeze_buffer", "freeze_ema")]
    if not manual:
        return None
    at = manual[0].step
    kinds = {i.kind for i in manual if i.step == at}
    kind = "dual" if len(kinds) == 2 else ("buffer only" if "freeze_buffer" in kinds else "EMA only")
    return at, kind, f"interactive ({manual[0].source})"


SETTLING_SHARE = 0.9  # ours: the settling ends where the rise first reaches this share of its final size


@dataclass(frozen=True)
class Settling:
    """The rise of D_shift after a reference evaluation (the peak, or the last one at or before a freeze; spec §6
    Table 2): ``rise`` = final − reference, and ``length`` the steps from the reference to the first evaluation
    reaching ``SETTLING_SHARE`` of the rise (None when there is no rise)."""

    reference: dict
    final: dict
    rise: float
    length: int | None


def settling(run: RunRecord, reference: dict) -> Settling:
    """The settling after ``reference`` (an eval record of ``run``) to the run's final evaluation."""
    start = run.d_shift(reference)
    final = run.final
    rise = run.d_shift(final) - start
    length = None
    if rise > 0:
        after = [e for e in run.scored_evals if e["step"] > reference["step"]]
        reached = next(e for e in after if run.d_shift(e) - start >= SETTLING_SHARE * rise)
        length = reached["step"] - reference["step"]
    return Settling(reference, final, rise, length)


def _settling_row(run: RunRecord, freeze: str, result: Settling, at: str) -> str:
    length = "no rise" if result.length is None else f"{result.length:,}"
    return (f"| {run.label} | {freeze} | {run.d_shift(result.reference):.4f} ({at} {result.reference['step']}) | "
            f"{run.d_shift(result.final):.4f} (step {result.final['step']}) | {result.rise:+.4f} | {length} | "
            f"{_f(run.sigma_z(result.final))} |")


def table2(runs: list[RunRecord]) -> str | None:
    """Freeze runs and the settling transient: D_shift at the freeze step, final, settling = final − at freeze and
    its length in steps; runs of Tracks C, D and E without a freeze as baselines (final − peak). Then the mean
    settling per track and reference, which answers §5.3's question for FiLM (D) and the hypernetwork (E)."""
    rows, settled = [], []
    scored = [r for r in runs if r.peak is not None]
    for run in scored:
        freeze = _freeze_of(run)
        if freeze is None:
            continue
        at, kind, how = freeze
        before = [e for e in run.scored_evals if e["step"] <= at]
        if not before:
            rows.append(f"| {run.label} | {kind} at {at}, {how} | no evaluation before the freeze | - | - | - | - |")
            continue
        result = settling(run, before[-1])
        if how == "profile":
            rows.append(_settling_row(run, f"{kind} at {at}, {how}", result, "step"))
            settled.append((run.track, f"{kind} freeze", result))
        else:  # a key pressed while watching is not an ablation: shown with its step, kept out of the means
            rows.append(_settling_row(run, f"{kind} at {at}, {how}: not an ablation, not in the means", result,
                                      "step"))
    baselines = [r for r in scored if r.track in MODULATED_TRACKS and _freeze_of(r) is None]
    if not rows and not any(r.track != "C" for r in baselines):
        return None
    for run in reversed(baselines):
        result = settling(run, run.peak)
        rows.insert(0, _settling_row(run, "none (peak)", result, "peak at"))
        settled.append((run.track, "after the peak", result))
    lines = ["## Table 2: freeze ablations and the settling transient",
             "Settling = final − value at the freeze step (for runs without a freeze: final − peak). Length (ours): "
             f"steps from there to the first evaluation that reaches {SETTLING_SHARE:.0%} of the settling (the paper: "
             "about 2,000 steps after a dual freeze).", "",
             "| run | freeze | D_shift at freeze | final D_shift | settling | length (steps) | final σ_z |",
             "| --- | --- | --- | --- | --- | --- | --- |", *rows]
    groups: dict[tuple[str, str], list[Settling]] = {}
    for track, reference, result in settled:
        groups.setdefault((track, reference), []).append(result)
    if len({track for track, _ in groups}) > 1:
        lines += ["", "Per track (mean over runs; D and E are not pre-registered, §5.3's open question):", "",
                  "| track | reference | runs | mean settling | mean length (steps) | runs with a rise |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for (track, reference), results in sorted(groups.items()):
            lengths = [r.length for r in results if r.length is not None]
            mean_length = f"{sum(lengths) / len(lengths):,.0f}" if lengths else "-"
            lines.append(f"| {track} | {reference} | {len(results)} | "
                         f"{sum(r.rise for r in results) / len(results):+.4f} | {mean_length} | "
                         f"{len(lengths)}/{len(results)} |")
    return "\n".join(lines)
