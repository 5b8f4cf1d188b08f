"""Tables over runs and sweeps (spec §6–§7), as Markdown: Table 1 with the paper's bootstrap CIs and our t-based
CIs, the pre-registered comparison (δ and the outcome, stated only when its preconditions hold), Welch's t-tests,
Table 2 for freeze runs, Table 3 for a λ sweep, and every run's interventions. Runs are read by
:mod:`jepa_tui.reporting.collect`; any mix of finished, stopped, failed and never-evaluated runs is accepted."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

from jepa_tui.config import describe_shift, flat_keys
from jepa_tui.reporting.cells import _ci, _f, _flags, _signed
from jepa_tui.reporting.collect import COLLAPSE_LINE, RunRecord, Skipped
from jepa_tui.reporting.freezes import table2
from jepa_tui.reporting.memory import memory_section
from jepa_tui.reporting.statistics import OUTCOMES, SeedSummary, outcome, relative_delta_pct, summarise, welch
from jepa_tui.runs.reproducibility import reproducibility

# Keys that say how a run is shown or where it ran, not what it computes.
PRESENTATION_KEYS = frozenset({"train.device", "train.print_every_seconds", "train.threads"})
MIN_SEEDS = 3  # the paper's pre-registered comparison ran three seeds per track


@dataclass
class Report:
    """The report's Markdown sections and the numbers behind them (for tests and figures).

    Attributes:
        runs: every run read; ``groups`` holds those with a D_shift under the formula, by (variant, track).
        summaries: the seed statistics of each group.
        delta_pct, outcome: per variant, only where the pre-registered comparison's preconditions hold.
        no_outcome: per variant with Tracks B and C, why no outcome is stated (empty when one is).
    """

    runs: list[RunRecord]
    skipped: list[Skipped] = field(default_factory=list)
    groups: dict[tuple[str, str], list[RunRecord]] = field(default_factory=dict)
    summaries: dict[tuple[str, str], SeedSummary] = field(default_factory=dict)
    sections: list[str] = field(default_factory=list)
    delta_pct: dict[str, float] = field(default_factory=dict)
    outcome: dict[str, str] = field(default_factory=dict)
    no_outcome: dict[str, list[str]] = field(default_factory=dict)
    identical: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        return "\n\n".join(self.sections) + "\n"

    @property
    def variants(self) -> list[str]:
        return sorted({v for v, _ in self.groups})

    @property
    def formula(self) -> str | None:
        """The D_shift formula the runs were read under (None: each run's ``eval.formula``)."""
        return self.runs[0].formula if self.runs else None

    @property
    def config(self):
        return self.runs[0].config.report


def config_differences(runs: list[RunRecord]) -> list[str]:
    """``key: value (runs), value (runs)`` for each computing key on which ``runs`` differ, track and seed aside."""
    flat = {run.label: flat_keys(run.config.to_dict()) for run in runs}
    keys = sorted(set().union(*flat.values()) - PRESENTATION_KEYS - {"train.track", "train.seed"})
    lines = []
    for key in keys:
        values: dict[str, list[str]] = {}
        for label, table in flat.items():
            values.setdefault(repr(table.get(key, "(unset)")), []).append(label)
        if len(values) > 1:
            lines.append(f"{key}: " + ", ".join(f"{v} ({', '.join(labels)})" for v, labels in values.items()))
    return lines


def _header(report: Report) -> None:
    runs = report.runs
    formula = report.formula or "each run's eval.formula"
    lines = ["# jepa-tui report", "", *_verdict_lines(report),
             f"{len(runs)} run directories; D_shift formula: **{formula}**. Statistics marked *(ours)* are not the "
             "paper's; the pre-registered comparison is the paper's.", "",
             "| run | directory | status | steps | evaluations | reproducible |", "| --- " * 6 + "|"]
    reproducible = {run.path: reproducibility(run.events) for run in runs}
    for run in runs:
        budget = f"{run.last_step}/{run.budget_steps}" if run.budget_steps else str(run.last_step)
        lines.append(f"| {run.label} | {run.path.name} | {run.status} | {budget} | {len(run.evals)} | "
                     f"{reproducible[run.path][0]} |")
    for verdict, heading in (("to rounding", "Reproducible *to rounding* (a rerun matches to the last digits, not "
                                             "bitwise)"), ("unknown", "Reproducibility *unknown*")):
        why = sorted({w for v, w in reproducible.values() if v == verdict and w})
        if why:
            lines += ["", f"{heading}: " + "; ".join(why) + "."]
    out = [r for r in runs if r.peak is None]
    if out or report.skipped:
        lines += ["", "Not in the tables:"]
        for run in out:
            why = ("no evaluation yet" if not run.evals else
                   f"its evaluations carry no D_shift under the formula '{report.formula}' (written before every "
                   "formula was recorded)")
            lines.append(f"- {run.label} ({run.path.name}): {why}")
        lines += [f"- {s.path}: {s.reason}" for s in report.skipped]
    vals = [e.get("val_seconds") for r in runs for e in r.evals if isinstance(e.get("val_seconds"), int | float)]
    evals = [e.get("seconds") for r in runs for e in r.evals if e.get("val_seconds") is not None]
    if vals and sum(evals):
        lines += ["", f"Validation-split evaluation (`eval.val_selection`, ours) cost {sum(vals) / len(vals):.2f} s "
                      f"per evaluation on average, {100 * sum(vals) / sum(evals):.0f} % of evaluation time."]
    report.sections.append("\n".join(lines))


def _identical_tracks(report: Report) -> None:
    """Flag tracks of one variant and seed whose evaluations are bitwise equal (memory that never acted)."""
    by_seed: dict[tuple[str, int], list[RunRecord]] = {}
    for run in report.runs:
        if run.scored_evals:
            by_seed.setdefault((run.variant, run.seed), []).append(run)
    for (variant, seed), runs in sorted(by_seed.items()):
        for a, b in combinations(sorted(runs, key=lambda r: r.track), 2):
            if a.track != b.track and [(e["step"], a.d_shift(e)) for e in a.scored_evals] == \
                    [(e["step"], b.d_shift(e)) for e in b.scored_evals]:
                name = f" ({variant})" if variant else ""
                report.identical.append(f"Tracks {a.track} and {b.track}{name}, seed {seed}: every evaluation is "
                                        "identical; the memory pathway changed nothing")


def _flag_section(report: Report) -> None:
    flagged = [(run, run.flags()) for run in report.runs if run.flags()]
    if not flagged and not report.identical:
        return
    lines = ["## Flags", "", "Read the numbers below with these in mind:", ""]
    lines += [f"- {run.label}: {'; '.join(flags)}" for run, flags in flagged]
    lines += [f"- {text}" for text in report.identical]
    report.sections.append("\n".join(lines))


def verdict_blockers(report: Report, variant: str) -> list[str]:
    """Why the pre-registered outcome cannot be stated for ``variant`` (empty: it can)."""
    runs = [r for r in report.runs if r.variant == variant]
    memory_runs = [r for r in runs if r.track in ("B", "C")]
    reasons = []
    for track in ("B", "C"):
        n = len({r.seed for r in report.groups.get((variant, track), [])})
        if n < MIN_SEEDS:
            reasons.append(f"Track {track} has {n} seed(s) with an evaluation; the comparison needs ≥ {MIN_SEEDS}")
    reasons += [f"{r.label} did not finish its budget ({r.status} at step {r.last_step})" for r in memory_runs
                if not r.finished]
    reasons += [f"{r.label} has no D_shift under this formula" for r in memory_runs if r.peak is None and r.evals]
    reasons += [f"{r.label}'s experience buffer never received an entry" for r in memory_runs
                if r.buffer_entries == 0]
    reasons += [f"{r.label} was changed interactively" for r in memory_runs if r.interactive]
    differences = config_differences(runs)
    if differences:
        reasons.append("the configurations differ beyond track and seed: " + "; ".join(differences))
    return reasons


def verdicts(report: Report) -> None:
    """For each variant with Tracks B and C: δ and the outcome when the preconditions hold, else the reasons."""
    cfg = report.config
    for variant in sorted({r.variant for r in report.runs}):
        if not {"B", "C"} <= {r.track for r in report.runs if r.variant == variant}:
            continue
        report.no_outcome[variant] = verdict_blockers(report, variant)
        if not report.no_outcome[variant]:
            b, c = report.summaries[(variant, "B")], report.summaries[(variant, "C")]
            delta = relative_delta_pct(b.mean, c.mean)
            report.delta_pct[variant], report.outcome[variant] = delta, outcome(delta, cfg)


def _verdict_lines(report: Report) -> list[str]:
    lines = []
    for variant, blockers in sorted(report.no_outcome.items()):
        name = f" ({variant})" if variant else ""
        if blockers:
            lines += [f"**No outcome**{name}: the pre-registered comparison of C against B is not stated, because:"]
            lines += [f"- {reason}" for reason in blockers]
        else:
            lines.append(f"**Outcome {report.outcome[variant]}**{name} ({OUTCOMES[report.outcome[variant]]}): "
                         f"δ = {report.delta_pct[variant]:.2f}% (see Comparisons).")
        lines.append("")
    return lines


def table1(report: Report) -> None:
    """Table 1 per variant and track: mean D_shift at each run's peak with the paper's and our CIs, σ_z, the
    val-picked test D_shift (ours), the base → shift gap; then one row per seed."""
    cfg = report.config
    small = any(s.n <= 3 for s in report.summaries.values())
    lines = ["## Table 1: D_shift^{n=50} at the peak step, mean over seeds",
             f"CI (paper): 95 % percentile bootstrap over seed-level values ({cfg.bootstrap_resamples:,} resamples, "
             f"seed {cfg.bootstrap_seed})" + (", which with 3 or fewer seeds is exactly [min, max]" if small else "")
             + ". CI t (ours): 95 % t-interval of the mean. std with ddof = 1. σ_z at each seed's peak (mean). "
             "Val-picked (ours): the test D_shift at the step with the lowest D_shift on the shift *validation* "
             "split, beside the paper's choice of the peak on the test split itself. Gap: D_shift − d_base at the "
             "peak, each normalised by its own world's persistence error: positive when the shift world is predicted "
             "worse *relative to persistence* than the base world, negative when better (a world whose persistence "
             "baseline is poorer can score lower while its raw error is higher; the memory section's raw numbers "
             "and pixel error compare the worlds on one scale).",
             ""]
    header = ["| variant | track | seeds | D_shift (mean) | CI (paper) | CI t (ours) | std | σ_z | val-picked (ours) "
              "| gap | flags |", "| --- " * 11 + "|"]
    shown_variant = None
    for key, runs in sorted(report.groups.items()):
        variant, track = key
        if variant != shown_variant:  # one table per variant, named with its shift world (one per kind of shift)
            shifts = sorted({describe_shift(r.config.data) for (v, _), group in report.groups.items() if v == variant
                             for r in group})
            title = f"### {variant or 'runs of no variant'}: " if len(report.variants) > 1 else ""
            lines += ([""] if shown_variant is not None else []) + \
                [f"{title}Shift world: {'; '.join(shifts)}", "", *header]
            shown_variant = variant
        s = report.summaries[key]
        sigmas = [v for r in runs if (v := r.sigma_z(r.peak)) is not None]
        sigma = sum(sigmas) / len(sigmas) if sigmas else None
        picks = [r.d_shift(r.val_pick) for r in runs if r.val_pick is not None]
        picked = _f(sum(picks) / len(picks)) if len(picks) == len(runs) else "n/a"
        gaps = [r.d_shift(r.peak) - r.value(r.peak, "d_base") for r in runs if r.value(r.peak, "d_base") is not None]
        gap = _signed(sum(gaps) / len(gaps)) if gaps else "n/a"
        flags = []
        if sigma is not None and sigma < COLLAPSE_LINE:
            flags.append("σ_z < 0.5")
        if s.mean >= 1.0:
            flags.append("≥ 1: no better than persistence")
        flags += [f"{r.label}: changed interactively" for r in runs if r.interactive]
        flags += [f"{r.label}: {r.status}" for r in runs if not r.finished]
        lines.append(f"| {variant or '-'} | {track} | {s.n} | {_f(s.mean)} | {_ci(s.ci_low, s.ci_high, s.n)} | "
                     f"{_ci(s.t_low, s.t_high, s.n)} | {_f(s.std) if s.std is not None else 'n/a (1 seed)'} | "
                     f"{_f(sigma)} | {picked} | {gap} | {'; '.join(flags) or '-'} |")
    lines += ["", "Per seed:", "",
              "| variant | track | seed | run | status | peak step | D_shift at peak | σ_z at peak | gap per k at peak "
              "| val-picked step → test D_shift | final step | final D_shift | final σ_z | flags |",
              "| --- " * 14 + "|"]
    for (variant, _), runs in sorted(report.groups.items()):
        for r in runs:
            peak, final = r.peak, r.final
            shift_k, base_k = r.per_horizon(peak, "d_shift_per_horizon"), r.per_horizon(peak, "d_base_per_horizon")
            gap_k = " ".join(f"k{k} {_signed(shift_k[k] - base_k[k], 3)}" for k in shift_k if k in base_k) or "-"
            pick = r.val_pick
            picked = f"{pick['step']} → {_f(r.d_shift(pick))}" if pick is not None else "-"
            lines.append(f"| {variant or '-'} | {r.track} | {r.seed} | {r.path.name} | {r.status} | {peak['step']} | "
                         f"{_f(r.d_shift(peak))} | {_f(r.sigma_z(peak))} | {gap_k} | {picked} | {final['step']} | "
                         f"{_f(r.d_shift(final))} | {_f(r.sigma_z(final))} | {_flags(r)} |")
    report.sections.append("\n".join(lines))


def _describe(summary: SeedSummary, track: str) -> str:
    return (f"Track {track}: mean {_f(summary.mean)} over {summary.n} seed(s); CI (paper) "
            f"{_ci(summary.ci_low, summary.ci_high, summary.n)}; CI t (ours) "
            f"{_ci(summary.t_low, summary.t_high, summary.n)}")


def _welch_line(a: list[RunRecord], b: list[RunRecord], names: str) -> str:
    test = welch([r.d_shift(r.peak) for r in a], [r.d_shift(r.peak) for r in b])
    if test is None:
        return f"Welch's t-test (ours), {names}: n/a (needs ≥ 2 seeds with spread per track)"
    return f"Welch's t-test (ours), {names}: t = {test.t:+.3f}, df = {test.df:.1f}, two-sided p = {test.p:.4f}"


def comparisons(report: Report) -> None:
    """Per variant: C against B (pre-registered: δ and the outcome, only when the preconditions hold); D and E against
    C and C against A (not pre-registered), each with the paper's and our statistics."""
    cfg = report.config
    lines = ["## Comparisons"]
    for variant in report.variants:
        name = f" ({variant})" if variant else ""
        groups = {t: report.groups.get((variant, t)) for t in "ABC"}
        summaries = {t: report.summaries.get((variant, t)) for t in "ABC"}
        b, c, a = summaries["B"], summaries["C"], summaries["A"]
        if b is not None and c is not None:
            lines += ["", f"### C against B{name}: the pre-registered comparison", "",
                      f"- {_describe(b, 'B')}", f"- {_describe(c, 'C')}",
                      f"- {_welch_line(groups['C'], groups['B'], 'C against B')}"]
            blockers = report.no_outcome.get(variant, [])
            if blockers:
                lines += ["", f"**No outcome**{name}: the pre-registered outcome and δ are stated only when their "
                              "preconditions hold; why they do not is listed at the top of this report."]
            else:
                delta = report.delta_pct[variant]
                lines += ["", f"**Pre-registered**{name}: δ = (D_B − D_C) / D_B = ({b.mean:.4f} − {c.mean:.4f}) / "
                              f"{b.mean:.4f} = **{delta:.2f}%** → **Outcome {report.outcome[variant]}** "
                              f"({OUTCOMES[report.outcome[variant]]}; A ≥ {cfg.strong_pct:g}%, B ≥ "
                              f"{cfg.null_band_pct:g}%, C within ±{cfg.null_band_pct:g}%, D ≤ −{cfg.null_band_pct:g}%; "
                              "the 5 % null band is from a published summary of the paper, the 10 % line is ours)."]
        for other in ("D", "E"):
            o = report.summaries.get((variant, other))
            if o is not None and c is not None:
                lines += ["", f"### {other} against C{name}: not pre-registered (§5.3's future work)", "",
                          f"- {_describe(c, 'C')}", f"- {_describe(o, other)}",
                          f"- relative difference (D_C − D_{other}) / D_C: {relative_delta_pct(c.mean, o.mean):.2f}%",
                          f"- {_welch_line(report.groups[(variant, other)], groups['C'], f'{other} against C')}"]
        if a is not None and c is not None:
            best_a = min(r.d_shift(r.peak) for r in groups["A"])
            lines += ["", f"### C against A{name}: not pre-registered", "",
                      f"- {_describe(a, 'A')}", f"- {_describe(c, 'C')}",
                      f"- δ against A's best seed ({best_a:.4f}): {relative_delta_pct(best_a, c.mean):.2f}%; against "
                      f"A's mean ({a.mean:.4f}): {relative_delta_pct(a.mean, c.mean):.2f}%",
                      f"- {_welch_line(groups['C'], groups['A'], 'C against A')}"]
    if len(lines) > 1:
        report.sections.append("\n".join(lines))


def table3(report: Report) -> None:
    """Runs that differ in λ (``train.lambda_var``): peak, final and σ_z at the peak per λ."""
    scored = [r for r in report.runs if r.peak is not None]
    if len({r.config.train.lambda_var for r in scored}) < 2:
        return
    rows = [f"| {run.config.train.lambda_var:g} | {run.label} | {run.d_shift(run.peak):.4f} | "
            f"{run.d_shift(run.final):.4f} | {_f(run.sigma_z(run.peak))} | {run.peak['step']} | {_flags(run)} |"
            for run in sorted(scored, key=lambda r: (r.config.train.lambda_var, r.label))]
    report.sections.append("\n".join(["## Table 3: λ (variance weight) sensitivity", "",
                                      "| λ | run | peak D_shift | final D_shift | σ_z at peak | peak step | flags |",
                                      "| --- | --- | --- | --- | --- | --- | --- |", *rows]))


def diagnostics_table(report: Report) -> None:
    """Representation diagnostics at each run's peak, mean over seeds: effective rank (RankMe) of the online
    latents on the shift test split, and the kinematic probe's R² (position, velocity) on base validation and shift
    test frames. Written for runs that recorded them (``eval.diagnostics``)."""
    def mean(values: list[float]) -> str:
        return _f(sum(values) / len(values), 3) if values else "n/a"

    def probe(peaks: list[dict], world: str, what: str) -> str:
        return mean([p["probe_r2"][world][what] for p in peaks
                     if isinstance(p.get("probe_r2", {}).get(world, {}).get(what), int | float)])

    rows = []
    for (variant, track), runs in sorted(report.groups.items()):
        peaks = [r.peak for r in runs if isinstance(r.peak.get("effective_rank"), int | float)]
        if peaks:
            rows.append(f"| {variant or '-'} | {track} | {len(peaks)} | "
                        f"{mean([p['effective_rank'] for p in peaks])} | "
                        + " | ".join(probe(peaks, w, what) for w in ("base", "shift")
                                     for what in ("position", "velocity")) + " |")
    if rows:
        report.sections.append("\n".join([
            "## Representation diagnostics at the peak (ours)",
            "Effective rank: RankMe of the online latents of the shift test split (1 … latent_dim). Probe: ridge "
            "regression from frozen latents to each digit's position (px) and velocity (px/frame), fitted on "
            "base-world train frames; R² on base validation and shift test frames (README, \"Beyond the paper\").",
            "", "| variant | track | seeds | effective rank | R² base position | R² base velocity | "
            "R² shift position | R² shift velocity |", "| --- " * 8 + "|", *rows]))


def interventions_section(report: Report) -> None:
    """Every run's freezes, pauses, track switches, thermal pauses and forced resumes, with steps and sources."""
    listed = [(run, run.interventions) for run in report.runs if run.interventions]
    if not listed:
        return
    lines = ["## Interventions", "",
             "Freezes applied by hand (source ui, request or replay) and forced resumes change what a run computes: "
             "such runs are marked *changed interactively* in every table. Pauses, track switches and thermal pauses "
             "stop the clock but not the computation. Scheduled freezes (source profile) are the experiment itself.",
             ""]
    for run, items in listed:
        text = "; ".join(f"step {i.step}: {i.label}{' — ' + i.detail if i.detail else ''}" for i in items)
        lines.append(f"- {run.label} ({run.path.name}): {text}")
    report.sections.append("\n".join(lines))


def build_report(runs: list[RunRecord], skipped: list[Skipped] | None = None) -> Report:
    """Every section the runs support (Table 2 needs freeze runs, Table 3 several λ)."""
    report = Report(runs, list(skipped or []))
    for run in runs:
        if run.peak is not None:
            report.groups.setdefault((run.variant, run.track), []).append(run)
    report.summaries = {key: summarise([r.d_shift(r.peak) for r in group], report.config)
                        for key, group in report.groups.items()}
    _identical_tracks(report)
    verdicts(report)
    _header(report)
    _flag_section(report)
    if report.groups:
        table1(report)
        comparisons(report)
        section = table2(report.runs)
        if section is not None:
            report.sections.append(section)
        table3(report)
        diagnostics_table(report)
    memory_section(report)
    interventions_section(report)
    return report
