#!/usr/bin/env bash
# Regenerates the published part of docs/reproduction/ from the run directories run_all.sh wrote: each sweep's
# report (report.md, figures, runs.csv, evals.csv) under the default D_shift formula and under ratio_of_sums, and
# each sweep's run directories without checkpoints as runs/<sweep>.tar.xz (paths in the manifest made relative).
# To regenerate a table from a published run set: tar xJf runs/table1.tar.xz && jepa-tui report table1
# Usage: bash docs/reproduction/publish.sh [SWEEP_ID ...]   (default: table1 dual_freeze_8000 guesses)
set -eu
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-runs/reproduction}
OUT=docs/reproduction
mkdir -p "$OUT/runs"

report() {  # report OUT_FOLDER PATH...
  local out=$1
  shift
  jepa-tui report "$@" --out "$OUT/$out" > /dev/null
  jepa-tui report "$@" --out "$OUT/$out/ratio_of_sums" --formula ratio_of_sums > /dev/null
}

pack() {  # pack SWEEP_ID
  bash docs/pack_runs.sh "$RUNS" "$1" "$OUT/runs/$1.tar.xz"
}

[ $# -gt 0 ] || set -- table1 dual_freeze_8000 guesses
for id in "$@"; do
  [ -f "$RUNS/$id/manifest.json" ] || { echo "no sweep $RUNS/$id"; continue; }
  pack "$id"
  case $id in
    dual_freeze_8000) report "$id" "$RUNS/table1/C_s42" "$RUNS/$id" ;;  # Table 2: the baseline is Table 1's C s42
    guesses) report "$id" "$RUNS/$id"
             python docs/reproduction/guess_effects.py "$OUT/$id/evals.csv" > "$OUT/$id/effects.md" ;;
    *) report "$id" "$RUNS/$id" ;;
  esac
done
du -sh "$OUT"
