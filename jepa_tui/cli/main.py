"""``jepa-tui``: the command line. Its commands live in :mod:`~jepa_tui.cli.training` (train, run, watch) and
:mod:`~jepa_tui.cli.studies` (sweep, report, analyze, evaluate, export) and are registered here with ``runs`` and
``profiles``; their exit codes are :mod:`jepa_tui.exits`'.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from jepa_tui.cli import studies, training
from jepa_tui.cli.options import fail, say
from jepa_tui.config import list_profiles, profile_description

EXAMPLES = """Examples:

\b
  jepa-tui train --profile quick                   a 5,000-step Track C run, headless
  jepa-tui run --profile track_c                   the paper's Track C in the dashboard
  jepa-tui watch runs/RUN_ID                       the dashboard on a headless run
  jepa-tui sweep --profile table1 --jobs 2         Tracks A, B, C x seeds 42, 43, 44
  jepa-tui report runs/SWEEP_ID                    Table 1, the statistics, the figures
  jepa-tui evaluate runs/RUN_ID --set eval.ttt_steps=50 --tag ttt
"""

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Train and study EPM-JEPA world models under distribution shift.", epilog=EXAMPLES)


def _version(value: bool) -> None:
    if value:
        from jepa_tui.provenance import describe_version

        say(describe_version())
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                     help="Print the version, code digest and git commit, then exit.")]
             = False) -> None:
    """Train and study EPM-JEPA world models under distribution shift."""

app.command(short_help="Train one run headless (plain lines; resumable).")(training.train)
app.command(short_help="Train in the live dashboard (keys p b e f, 1-5, q).")(training.run)
app.command(short_help="Attach the dashboard to a headless run or sweep.")(training.watch)
app.command(short_help="Run tracks x seeds (x variants), here or on a cluster.")(studies.sweep)
app.command(short_help="Tables, statistics and figures from runs.")(studies.report)
app.command(short_help="SVD, attention and ΔW analyses of kept models.")(studies.analyze)
app.command(short_help="Re-evaluate kept models under other settings.")(studies.evaluate)
app.command(short_help="Send finished runs' records to TensorBoard.")(studies.export)


@app.command(short_help="List runs: track, seed, status, peak, activity.")
def runs(
    runs_dir: Annotated[Path, typer.Argument(help="A folder of run directories (and sweeps).")] = Path("runs"),
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object per run instead of a table.")]
    = False,
) -> None:
    """List the runs under RUNS_DIR: track, seed, status, step/budget, peak D_shift, σ_z at the peak, last activity,
    interventions; most recently active first."""
    import json as json_module

    from jepa_tui.runs.catalog import list_runs, runs_table

    try:
        infos = list_runs(runs_dir)
    except FileNotFoundError as exc:
        raise fail(str(exc)) from None
    if json_output:
        say(json_module.dumps([info.to_dict() for info in infos], indent=1))
        return
    if not infos:
        say(f"no runs under {runs_dir}")
        return
    for line in runs_table(infos):
        say(line)

@app.command(short_help="List the shipped profiles.")
def profiles() -> None:
    """List the shipped profiles, one line each."""
    known = list_profiles()
    width = max(len(name) for name in known)
    for name, path in known.items():
        print(f"{name:<{width}}  {profile_description(path)}")


MULTI_VALUE_OPTIONS = ("--tracks", "--seeds", "--variants")


def expand_multi_value_options(argv: list[str]) -> list[str]:
    """``--seeds 42 43 44`` → ``--seeds 42 --seeds 43 --seeds 44`` (Click options take one value each)."""
    out: list[str] = []
    current = None
    for arg in argv:
        if arg.startswith("-"):
            current = arg if arg in MULTI_VALUE_OPTIONS else None
            out.append(arg)
        elif current is not None and out[-1] != current:
            out += [current, arg]
        else:
            out.append(arg)
    return out


def _quiet_streams() -> None:
    """Flush stdout and stderr; a stream that can no longer be written (a closed pipe, a hung-up terminal) is
    pointed at /dev/null, so the interpreter's own flush at exit cannot turn a finished run into an error."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


def _threads_argument(argv: list[str]) -> int:
    """The value of ``--threads N`` (or ``--threads=N``) on the command line, 0 when absent or malformed."""
    for i, arg in enumerate(argv):
        value = arg.partition("=")[2] if arg.startswith("--threads=") else (
            argv[i + 1] if arg == "--threads" and i + 1 < len(argv) else None)
        if value is not None:
            try:
                return max(0, int(value))
            except ValueError:
                return 0
    return 0


def main() -> None:
    """Console-script entry point: the command's exit code, whatever happens to the terminal after it."""
    from jepa_tui.threads import prepare_environment

    prepare_environment(_threads_argument(sys.argv[1:]))  # before torch starts OpenMP (jepa_tui.threads)
    code: int | str | None = 0
    try:
        app(args=expand_multi_value_options(sys.argv[1:]))
    except SystemExit as exc:
        code = exc.code
    finally:
        _quiet_streams()
    sys.exit(code)


if __name__ == "__main__":
    main()
