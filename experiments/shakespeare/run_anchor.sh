#!/bin/bash
# The PyTorch anchor of Ember's language modelling (experiments/shakespeare/README.md, "Anchor"):
# `ember train --text` on the Shakespeare plays with AdamW at the shakespeare-lm spec's chosen
# setting, writing its replay kit, then torch_anchor.py trains the same decoder in PyTorch from the
# same initial weights on the same windows with the same learning rates, and prints both runs'
# losses and train tokens/s side by side. Both use the same number of threads. Run from the
# repository root after experiments/shakespeare/fetch.sh:
#
#   experiments/shakespeare/run_anchor.sh [OUT_JSON]
#
# THREADS (default: all cores) sets both sides' threads; TORCH_VENV the virtual environment
# PyTorch is installed into (default $TMPDIR/ember-torch-venv); STEPS the step budget (1200);
# ANCHOR_WORK a folder to keep the kit and Ember's run in (default: a temporary one, removed).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out=${1:-}
threads=${THREADS:-$(nproc)}
steps=${STEPS:-1200}
venv=${TORCH_VENV:-${TMPDIR:-/tmp}/ember-torch-venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q torch numpy

work=${ANCHOR_WORK:-}
if [ -z "$work" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
cargo build --release -q -p ember
ember="${CARGO_TARGET_DIR:-target}/release/ember"
RAYON_NUM_THREADS=$threads "$ember" train --text datasets/local/shakespeare \
  --optimizer adamw --lr 5e-3 --weight-decay 0.01 --scheduler cosine --warmup-steps 100 \
  --steps "$steps" --eval-every 100 --context 64 --dim 64 --heads 4 --mlp-dim 128 --blocks 2 \
  --batch-size 32 --eval-batch-size 64 --eval-windows 64 --log-every 20 --seed 0 --quiet \
  --replay-kit "$work/kit" --runs-dir "$work/runs" --run-name ember
"$venv/bin/python" "$here/torch_anchor.py" --kit "$work/kit" --ember-run "$work/runs/ember" \
  --threads "$threads" ${out:+--out "$out"}
