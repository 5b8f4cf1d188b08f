#!/usr/bin/env bash
# Packs a folder of run directories (a sweep, or runs side by side) for publication: no checkpoints, kept weights,
# logs (they name this machine's paths) or writer locks; a sweep manifest's base profile named by its shipped name,
# not this machine's path.
# To read a published archive: tar xJf ARCHIVE && jepa-tui report FOLDER (or jepa-tui runs FOLDER).
# Usage: bash docs/pack_runs.sh RUNS_PARENT FOLDER OUT.tar.xz
set -eu
parent=$1 folder=$2 out=$3
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
tar cf - --exclude checkpoints --exclude weights --exclude logs --exclude '*.lock' --exclude '*.log' \
  -C "$parent" "$folder" | tar xf - -C "$stage"
if [ -f "$stage/$folder/manifest.json" ]; then
  python - "$stage/$folder/manifest.json" <<'PY'
import json, sys
from pathlib import Path
path = sys.argv[1]
manifest = json.load(open(path))
spec = manifest.get("spec", {})
if isinstance(spec.get("base"), str) and "/" in spec["base"]:  # the shipped profile, not this machine's path
    spec["base"] = "profiles/" + Path(spec["base"]).name
json.dump(manifest, open(path, "w"), indent=2)
PY
fi
mkdir -p "$(dirname "$out")"
XZ_OPT=-9e tar cJf "$out" -C "$stage" "$folder"
