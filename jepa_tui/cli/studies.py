"""The commands that study runs: ``sweep`` (tracks × seeds × variants), ``report``, ``analyze``, ``evaluate`` and
``export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jepa_tui.cli.options import (
    DeviceOption,
    LogToOption,
    ProfileOption,
    RunsDirOption,
    SetOption,
    StepsOption,
    bad_input_errors,
    fail,
    say,
    with_loggers,
)
from jepa_tui.config import ConfigError, load_run_config
from jepa_tui.exits import EXIT_INTERRUPTED, SIGNAL_EXIT_CODES


def sweep(
    profile: ProfileOption = None,
    resume: Annotated[Path | None, typer.Option(help="Continue this sweep directory (instead of --profile).")]
    = None,
    tracks: Annotated[list[str] | None, typer.Option(metavar="TRACK...",
                                                     help="Tracks: --tracks a b c (replaces the profile's).")] = None,
    seeds: Annotated[list[int] | None, typer.Option(metavar="SEED...",
                                                    help="Seeds: --seeds 42 43 44 (replaces the profile's).")]
    = None,
    variants: Annotated[list[str] | None, typer.Option(
        metavar="NAME...", help="Only these variants of a sweep profile: --variants NAME ...")] = None,
    jobs: Annotated[int, typer.Option(min=1, help="Runs at once, each in its own process (local backend).")] = 1,
    steps: StepsOption = None,
    runs_dir: RunsDirOption = Path("runs"),
    sweep_id: Annotated[str | None, typer.Option(help="Name of the sweep directory (default: time, profile).")]
    = None,
    set_: SetOption = None,
    log_to: LogToOption = None,
    backend: Annotated[str, typer.Option(help="Where runs execute: local (processes here), submitit (SLURM jobs; "
                                              "pip install 'jepa-tui[slurm]') or ray (Ray tasks; "
                                              "pip install 'jepa-tui[ray]').")] = "local",
    partition: Annotated[str | None, typer.Option(help="submitit: the SLURM partition.")] = None,
    cluster: Annotated[str | None, typer.Option(help="submitit: slurm, local (jobs as processes here, to try a "
                                                     "sweep) or auto.")] = None,
    gpus_per_run: Annotated[float | None, typer.Option(min=0, help="submitit: GPUs per job; ray: num_gpus per "
                                                                   "task (fractions share a GPU).")] = None,
    cpus_per_run: Annotated[float | None, typer.Option(min=0, help="submitit: CPUs per job; ray: num_cpus per "
                                                                   "task.")] = None,
    time_min: Annotated[int | None, typer.Option(min=1, help="submitit: the job time limit in minutes (a job "
                                                             "past it checkpoints and is requeued).")] = None,
    array_parallelism: Annotated[int | None, typer.Option(min=1, help="submitit, ray: runs queued at once "
                                                                      "(default: all).")] = None,
    ray_address: Annotated[str | None, typer.Option(help="ray: the cluster to join (auto, ray://host:10001); "
                                                         "default: start Ray on this machine.")] = None,
    group: Annotated[bool, typer.Option(help="Start the new runs of each variant and track as one run group "
                                             "(`train --seeds`: one process, one vectorised step; local "
                                             "backend).")] = False,
) -> None:
    """Run tracks x seeds (x a sweep profile's variants), one run directory each under RUNS_DIR/<sweep_id>/, on
    this machine or a cluster engine (--backend)."""
    set_ = with_loggers(set_, log_to)
    from jepa_tui.experiments.cluster import resolve
    from jepa_tui.experiments.engines import make_backend
    from jepa_tui.experiments.spec import load_spec, load_sweep, make_sweep_id
    from jepa_tui.experiments.sweep import run_sweep
    from jepa_tui.runs.directory import check_name

    try:
        if (profile is None) == (resume is None):
            raise ConfigError("pass exactly one of --profile NAME (a new sweep) or --resume SWEEP_DIR.")
        if resume is not None:
            given = [name for name, value in (("--tracks", tracks), ("--seeds", seeds), ("--variants", variants),
                                              ("--set", set_), ("--steps", steps), ("--sweep-id", sweep_id))
                     if value]
            if given:
                raise ConfigError(f"{', '.join(given)} cannot change a sweep being resumed: its manifest decides "
                                  "what runs. Start a new sweep (--profile) for other settings.")
            spec, sweep_dir = load_spec(resume), Path(resume)
        else:
            extra = [*(set_ or []), *([f"train.steps={steps}"] if steps is not None else [])]
            spec = load_sweep(profile, [t.upper() for t in tracks or []] or None, seeds, extra, variants)
            sweep_dir = runs_dir / (check_name(sweep_id, "--sweep-id") if sweep_id else make_sweep_id(spec))
            if (sweep_dir / "manifest.json").is_file() and load_spec(sweep_dir) != spec:
                raise ConfigError(f"sweep directory '{sweep_dir}' holds a different sweep; continue it with "
                                  f"`jepa-tui sweep --resume {sweep_dir}` or choose another --sweep-id.")
        runs = spec.runs()
        if group and backend != "local":
            raise ConfigError(f"--group runs on the local backend; with --backend {backend} each run is its own "
                              "job.")
        settings = None if backend == "local" else resolve(backend, spec.backends, {
            "partition": partition, "cluster": cluster, "gpus_per_run": gpus_per_run, "cpus_per_run": cpus_per_run,
            "time_min": time_min, "array_parallelism": array_parallelism, "address": ray_address})
        engine = make_backend(backend, settings, len(runs), jobs, sweep_dir)
    except bad_input_errors() as exc:
        raise fail(str(exc)) from None
    say(f"sweep {sweep_dir}: {len(runs)} runs ({', '.join(r.name for r in runs)}), {engine.slots} at a time on "
        f"the {engine.name} backend" + (f": {settings.describe()}" if settings is not None else ""))
    try:
        result = run_sweep(spec, sweep_dir, jobs, say=say, backend=engine, group=group)
    except bad_input_errors() as exc:
        raise fail(str(exc)) from None
    if result.stopped_by is not None:
        say(f"sweep stopped by {result.stopped_by}: the running runs checkpointed and stopped; continue with: "
            f"jepa-tui sweep --resume {sweep_dir}")
        raise typer.Exit(SIGNAL_EXIT_CODES.get(result.stopped_by, EXIT_INTERRUPTED))
    outcomes = result.outcomes
    failed = [o for o in outcomes if o.status != "done"]
    say(f"sweep finished: {len(outcomes) - len(failed)} of {len(outcomes)} runs done"
        + (f"; not done: {', '.join(f'{o.run.name} ({o.status})' for o in failed)}" if failed else "")
        + f"\nreport: jepa-tui report {sweep_dir}")
    if failed:
        raise typer.Exit(1)


def report(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH...",
                                                help="Run directories and/or sweep directories.")],
    out: Annotated[Path | None, typer.Option(help="Where report.md and the figures go (default: the first path, "
                                                   "or its parent for a run directory).")] = None,
    terminal: Annotated[bool, typer.Option(help="Also draw the figures in the terminal (plotext).")] = False,
    formula: Annotated[str | None, typer.Option(help="D_shift formula for the tables and figures: per_sample, "
                                                     "ratio_of_sums, median or r2 (default: each run's "
                                                     "eval.formula).")] = None,
) -> None:
    """Tables (Table 1 with bootstrap and t CIs; the pre-registered outcome when its preconditions hold; Welch's
    t-tests; Tables 2, 3), every run's interventions, figures over runs and sweeps, and the numbers behind them as
    runs.csv and evals.csv."""
    from jepa_tui.evaluation.metrics import FORMULAS
    from jepa_tui.reporting.collect import collect_runs
    from jepa_tui.reporting.publish import report_folder, write_report
    from jepa_tui.reporting.terminal import terminal_figures
    from jepa_tui.runs import RunDirError

    try:
        if formula is not None and formula not in FORMULAS:
            raise ConfigError(f"--formula {formula!r}: allowed: {', '.join(FORMULAS)}.")
        runs, skipped = collect_runs(paths, formula)
    except (FileNotFoundError, ConfigError) as exc:
        raise fail(str(exc)) from None
    folder = report_folder(paths, out)
    try:
        built, figures = write_report(runs, skipped, folder)
    except RunDirError as exc:
        raise fail(f"{exc} Choose another folder with --out.") from None
    print(built.markdown())
    if terminal:
        print(terminal_figures(runs))
    print(f"wrote {folder / 'report.md'}, runs.csv, evals.csv and {len(figures)} figures in {folder / 'figures'}")


def analyze(
    run_dir: Annotated[Path, typer.Argument(help="A run directory with kept weights or checkpoints.")],
    step: Annotated[int | None, typer.Option(help="Analyse the model kept at this step (default: every kept one).")]
    = None,
    device: DeviceOption = None,
) -> None:
    """SVD / effective rank of predictor outputs, buffer attention by age and world, D_shift per horizon and the
    surprisal trace at the base → shift switch, per kept model, beside the run's re-evaluations
    (evaluations/<tag>.jsonl) at the same step; JSON and figures in RUN_DIR/analysis/."""
    import json as json_module

    from jepa_tui.data.worlds import Worlds
    from jepa_tui.evaluation.analysis import age_correlation, analyse, attention_table, evaluations_at
    from jepa_tui.reporting.analysis_figures import analysis_figures
    from jepa_tui.reporting.figures import make_folder
    from jepa_tui.runs import RunDirectory, RunDirError
    from jepa_tui.runs.files import atomic_write_text
    from jepa_tui.training.build import pick_device
    from jepa_tui.training.reevaluate import evaluation_model, load_stored, stored_models

    try:
        directory = RunDirectory.open(run_dir)
        config = load_run_config(directory.path, device=device)
        kept = stored_models(directory)
        if step is not None:
            if step not in kept:
                raise ConfigError(f"--step {step}: no kept model at that step; kept: "
                                  f"{', '.join(map(str, kept)) or 'none'}.")
            kept = {step: kept[step]}
        if not kept:
            raise ConfigError(f"'{run_dir}' keeps no model (no weights/ or checkpoints/) to analyse.")
        torch_device = pick_device(config.train.device)
        model = evaluation_model(config, torch_device)
        worlds = Worlds(config.data, torch_device, seed=config.world_seed)
        evaluations = directory.read_evaluations()
    except bad_input_errors() as exc:
        raise fail(str(exc)) from None
    out = directory.path / "analysis"
    results = []
    print("step   D_shift  sigma_z  eff.rank  top-3 singular values      attention base/shift  age corr  "
          "D_shift per k")
    for s, stored in kept.items():
        try:
            load_stored(model, stored)
        except bad_input_errors() as exc:
            raise fail(str(exc)) from None
        diverged = [name for name, t in model.state_dict().items() if t.is_floating_point() and not t.isfinite().all()]
        if diverged:
            print(f"{s:<6} skipped: non-finite weights ({diverged[0]}{' …' * (len(diverged) > 1)}), a diverged model",
                  flush=True)
            continue
        result = analyse(model, worlds, config, s)
        result.evaluations = evaluations_at(evaluations, s, config.eval.formula)
        results.append(result)
        try:
            make_folder(out)
            atomic_write_text(out / f"step_{s:08d}.json", json_module.dumps(result.to_dict(), indent=1) + "\n")
        except RunDirError as exc:
            raise fail(str(exc)) from None
        top = ", ".join(f"{v:.3g}" for v in result.singular_values[:3])
        mass = result.attention_mass
        attention = f"{mass.get('base', 0):.2f}/{mass.get('shift', 0):.2f}" if mass else "-"
        per_k = " ".join(f"k{k}:{v:.3f}" for k, v in result.d_shift_per_horizon.items())
        corr = f"{age_correlation(result.attention):+.2f}" if len(result.attention) >= 3 else "-"
        print(f"{s:<6} {result.d_shift:.4f}   {result.sigma_z:.4f}   {result.effective_rank:6.2f}    {top:<26} "
              f"{attention:<21} {corr:<9} {per_k}", flush=True)
        for tag, row in result.evaluations.items():
            print(f"       evaluations/{tag}: " + ", ".join(
                f"{name} {value:.4f}" for name, value in row.items() if isinstance(value, float)), flush=True)
    if not results:
        raise fail(f"no model of '{run_dir}' could be analysed: every one chosen has non-finite weights.")
    last = results[-1]
    if last.attention:
        print(f"\nattention during shift-world inference at step {last.step} (uniform = "
              f"{1 / len(last.attention):.5f} per entry):\nentry ages (pushes ago)  world  entries  mean weight  mass")
        for row in attention_table(last.attention):
            print(f"{row['ages']:<24} {row['world']:<6} {row['entries']:>7}  {row['mean_weight']:.5f}      "
                  f"{row['mass']:.3f}")
    try:
        figures = analysis_figures(results, out)
    except RunDirError as exc:
        raise fail(str(exc)) from None
    print(f"wrote {len(results)} JSON files and {len(figures)} figures in {out}")


def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory with kept weights or checkpoints.")],
    step: Annotated[list[int] | None, typer.Option(
        metavar="STEP", help="Evaluate the model kept at this step (repeatable; default: the last kept).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Evaluate every kept step.")] = False,
    set_: SetOption = None,
    tag: Annotated[str | None, typer.Option(help="Name of evaluations/<tag>.jsonl (default: from the --set "
                                                 "overrides, 'default' without any).")] = None,
    device: DeviceOption = None,
) -> None:
    """Re-evaluate a run's kept models under other evaluation or shift settings (eval.*, data.shift.*): adaptation
    curve, memory gain, content effect, pixel-space error, test-time training; written to
    RUN_DIR/evaluations/<tag>.jsonl, the run's own files untouched."""
    from jepa_tui.runs import RunDirectory
    from jepa_tui.training.build import pick_device
    from jepa_tui.training.reevaluate import reevaluate, stored_models

    try:
        if all_ and step:
            raise ConfigError("pass --step N or --all, not both.")
        steps = list(step) if step else None
        if all_:
            steps = list(stored_models(RunDirectory.open(run_dir)))
        torch_device = pick_device(device or "cpu")
        for index, record in enumerate(reevaluate(run_dir, steps, list(set_ or []), tag, torch_device)):
            if index == 0:
                say(f"step      D_shift  d_base   memory gain  content effect  pos RMSE px  TTT D_shift  "
                    f"(formula {record['formula']})")
            say(f"{record['step']:<9} {record['d_shift']:.4f}   {record['d_base']:.4f}   "
                f"{_signed(record['memory_gain'])}      {_signed(record['content_effect'])}         "
                f"{record['pos_rmse_px']:8.3f}     {_plain(record['d_shift_ttt'])}")
            last = record
    except bad_input_errors() as exc:
        raise fail(str(exc)) from None
    say(f"wrote {run_dir}/evaluations/{last['tag']}.jsonl ({last['seconds']:.1f} s for the last step)")


def _signed(value: float | None) -> str:
    return f"{value:+.4f}" if isinstance(value, int | float) else "   -   "


def _plain(value: float | None) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "-"


def export(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH...",
                                                help="Run directories and/or folders of runs (sweep directories).")],
    to: Annotated[str, typer.Option(metavar="tensorboard|mlflow|wandb", help="Where the records go.")]
    = "tensorboard",
    out: Annotated[Path | None, typer.Option(
        metavar="DIR", help="Write <DIR>/<run id>/ for each run (default: RUN_DIR/tensorboard, RUN_DIR/mlflow-export "
        "or RUN_DIR/wandb-export).")] = None,
) -> None:
    """Replay runs made without a logger (the published archives too) into TensorBoard, an MLflow store or W&B
    offline runs: the same names as `--log-to NAME`. Changes nothing in the runs' files."""
    from jepa_tui.reporting.publish import run_figures
    from jepa_tui.runs import RunDirError
    from jepa_tui.runs.catalog import list_runs
    from jepa_tui.training.loggers import EXPORT_FOLDERS, export_run, viewer_command

    try:
        runs = [Path(info.path) for path in paths for info in reversed(list_runs(path))]
        if not runs:
            raise ConfigError(f"no run directory under {', '.join(map(str, paths))}")
        if to not in EXPORT_FOLDERS:
            raise ConfigError(f"--to {to!r}: expected one of {', '.join(EXPORT_FOLDERS)}")
        log_dirs = [(out / run_dir.name) if out is not None else run_dir / EXPORT_FOLDERS[to] for run_dir in runs]
        taken = [str(d) for d in log_dirs if d.exists()] + \
            [str(d) for d in {d for d in log_dirs if log_dirs.count(d) > 1}]  # checked before anything is written
        if taken:
            raise ConfigError(f"{', '.join(taken)}: exists already or is named twice (each step would be there "
                              "twice); give --out another folder")
        for run_dir, log_dir in zip(runs, log_dirs, strict=True):
            count = export_run(run_dir, log_dir, to, run_figures)
            say(f"{run_dir}: {count} records → {log_dir}")
    except (ConfigError, RunDirError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None
    say(f"open them with: {viewer_command(to, log_dirs)}")
