"""Continue a run from its last checkpoint (``--resume RUN_DIR``), exactly as if it had never stopped (spec §8).

Preparing a resume checks before it changes anything: the run directory, its configuration (``config.toml`` plus
any command-line overrides) against the checkpoint's, and the code version against the checkpoint's. Only when
they agree (or ``--force``) does it repair what a kill can leave behind: temporary files, a torn last JSONL line,
and records written after the checkpoint, which move to ``metrics.rolled_back.jsonl`` to be recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jepa_tui.config import Config, ConfigError, flat_keys, load_run_config, read_toml, with_legacy_values
from jepa_tui.provenance import code_version
from jepa_tui.runs import CheckpointError, RunDirectory, load_checkpoint
from jepa_tui.runs.checkpoint import check_trainer_state
from jepa_tui.runs.records import of_kind
from jepa_tui.training.control import Command

# Keys that change how a run is shown or where it runs, not what it computes.
# (train.threads changes only the order of floating-point sums: a run resumes exactly with the same count.)
PRESENTATION_KEYS = frozenset({"train.device", "train.print_every_seconds", "train.threads", "train.loggers"})
# Commands that change what is computed; pause, save and stop do not, and are not replayed.
REPLAYED = frozenset({Command.FREEZE_BUFFER, Command.UNFREEZE_BUFFER, Command.FREEZE_EMA, Command.UNFREEZE_EMA})


class ResumeRefused(ConfigError):
    """The run's code or configuration differs from its checkpoint's; the message lists every difference."""


@dataclass
class ResumePoint:
    """Where a resumed run starts.

    Attributes:
        config: the configuration to continue with.
        directory: the run directory (opened, repaired).
        state: the checkpoint's contents, or None when the run has none yet (it restarts from step 0).
        step: the checkpoint's step (0 without one).
        notices: one line for each thing worth telling the user (repairs, forced differences).
        replay: freezes applied after the checkpoint (from ``events.jsonl``), to apply again at their steps.
    """

    config: Config
    directory: RunDirectory
    state: dict | None
    step: int
    notices: list[str] = field(default_factory=list)
    replay: list[tuple[int, Command]] = field(default_factory=list)


def config_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``"section.key: saved → current"`` for each computing key whose value differs. A key the checkpoint's version
    did not write yet counts as its default (keys whose default changed behaviour are in LEGACY_VALUES)."""
    before, after, defaults = flat_keys(saved), flat_keys(current), flat_keys(Config().to_dict())
    lines = []
    for key in sorted(before.keys() | after.keys()):
        if key in PRESENTATION_KEYS:
            continue
        old, new = before.get(key, defaults.get(key, "(unset)")), after.get(key, "(unset)")
        if old != new:
            lines.append(f"{key}: {old!r} in the checkpoint, {new!r} now")
    return lines


def prepare_resume(run_dir: Path, overrides: list[str] | None = None, force: bool = False,
                   **train_overrides: Any) -> ResumePoint:
    """Open ``run_dir`` for resuming, check it, then repair it.

    Args:
        run_dir: a run directory written by ``jepa-tui train`` or ``run``.
        overrides, train_overrides: as for :func:`~jepa_tui.config.load_config`, applied to its ``config.toml``.
        force: resume even when the code version or the configuration differs (each difference becomes a notice).

    Raises:
        RunDirError: ``run_dir`` is not a run directory.
        ConfigError: its ``config.toml`` or an override is invalid.
        CheckpointError: the last checkpoint is corrupt (the message says how to fall back to an earlier one).
        ResumeRefused: the code or the configuration differs and ``force`` is False. Nothing has been changed.
    """
    directory = RunDirectory.open(run_dir)
    config = load_run_config(directory.path, overrides, **train_overrides)  # a foreign folder fails here, untouched
    directory.lock()  # one writer at a time, before any checkpoint is read or anything repaired
    try:
        return _prepare(directory, config, run_dir, force)
    except BaseException:
        directory.close()  # refused or failed: the next try must not find the directory held by this process
        raise


def _check_fits(config: Config, state: dict, path: Path) -> None:
    """Load the checkpoint's model weights into a model of ``config`` (on the CPU) before the run directory is
    repaired or its ``config.toml`` rewritten, so a forced resume that changed the model is refused untouched.

    Raises:
        CheckpointError: naming the file and the first mismatch.
    """
    from jepa_tui.model.jepa import JEPAWorldModel

    weights = state["trainer"].get("model")
    try:
        JEPAWorldModel(config).load_state_dict(weights)
    except (RuntimeError, KeyError, TypeError, AttributeError) as exc:
        first = str(exc).splitlines()[1 if str(exc).count("\n") else 0].strip()[:200]
        raise CheckpointError(f"checkpoint '{path}' does not fit the configuration ({first}).") from None


def _prepare(directory: RunDirectory, config: Config, run_dir: Path, force: bool) -> ResumePoint:
    config_path = directory.path / "config.toml"
    checkpoints = directory.checkpoint_paths()
    state, step = None, 0
    if checkpoints:
        step, path = next(reversed(checkpoints.items()))
        try:
            state = load_checkpoint(path)
            check_trainer_state(state, path, step)
        except ValueError as exc:
            earlier = [p.name for s, p in checkpoints.items() if s != step]
            hint = f"; delete it to resume from {earlier[-1]}." if earlier else ""
            raise type(exc)(f"{str(exc).rstrip('.') if hint else exc}{hint}") from None
        saved_config, saved_version = state["config"], state["version"]
        if not isinstance(saved_config, dict) or not isinstance(state["trainer"], dict):
            raise CheckpointError(f"checkpoint '{path}' is not a jepa-tui checkpoint (config or trainer state of the "
                                  "wrong kind).")
        _check_fits(config, state, path)
    else:
        saved_config = {k: v for k, v in read_toml(config_path).items() if k != "description"}
        saved_version = None
    differences = config_differences(with_legacy_values(saved_config), config.to_dict())
    if saved_version is not None and saved_version != code_version():
        differences.insert(0, f"code: the checkpoint was written by jepa-tui {saved_version}, this is "
                              f"{code_version()}")
    if differences and not force:
        raise ResumeRefused(f"{run_dir}: cannot resume exactly; the run differs from its checkpoint at step {step}:\n"
                            + "\n".join(f"  - {d}" for d in differences)
                            + "\nPass --force to resume anyway (the differences are recorded in events.jsonl).")
    notices = [f"forced: {d}" for d in differences]
    if differences:
        directory.write_config(config, f"resolved configuration of run {directory.run_id}, changed by a forced "
                                       f"resume at step {step}")
    notices += [f"removed {name}, left by a kill mid-write" for name in directory.remove_partial_files()]
    for name in ("metrics", "events"):
        torn = directory.drop_torn_line(name)
        if torn:
            notices.append(f"dropped a torn last line of {name}.jsonl ({len(torn)} bytes: {torn[:60]!r})")
        malformed = directory.malformed_lines(name)
        if malformed:
            notices.append(f"skipped {malformed} malformed line(s) of {name}.jsonl (not a record with a kind and a "
                           "step)")
    moved = directory.roll_back_metrics(step)
    if moved:
        notices.append(f"moved {moved} records after step {step} to metrics.rolled_back.jsonl; they are recomputed")
    if state is None:
        notices.append("no checkpoint yet: the run restarts from step 0")
    replay = [(int(e["step"]), Command(e["command"])) for e in of_kind(directory.read_records("events"), "command")
              if e.get("step", -1) >= step and e.get("command") in REPLAYED
              and e.get("source") != "profile"]  # the profile's scheduled freezes recur by themselves
    if replay:
        notices.append("replaying " + ", ".join(f"{c.value} at step {s}" for s, c in replay)
                       + ", applied after the checkpoint before the run stopped")
    return ResumePoint(config, directory, state, step, notices, replay)
