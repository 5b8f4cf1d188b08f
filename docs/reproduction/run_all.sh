#!/usr/bin/env bash
# The reproduction study behind the README's "Reproducing the paper", exactly as it was run. Resumable: run it
# again to continue (finished runs are skipped, stopped ones resume from their checkpoints).
# Each run trains on one CPU thread (OMP_NUM_THREADS=1), two runs at a time; on CPU a run is bitwise reproducible
# at a given thread count, so rerun any single run with OMP_NUM_THREADS=1 as shown in README.md.
set -eu
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-runs/reproduction}
JOBS=${JOBS:-2}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

sweep() {
  local id=$1
  shift
  if [ -f "$RUNS/$id/manifest.json" ]; then
    jepa-tui sweep --resume "$RUNS/$id" --jobs "$JOBS" || true
  else
    jepa-tui sweep "$@" --runs-dir "$RUNS" --sweep-id "$id" --jobs "$JOBS" || true
  fi
}

sweep table1 --profile table1
sweep dual_freeze_8000 --profile dual_freeze_8000 --variants dual_freeze_8000
sweep guesses --profile guesses
