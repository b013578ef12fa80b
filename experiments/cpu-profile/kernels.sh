#!/usr/bin/env bash
# Ember's CPU kernels (crates/ember-kernels) measured side by side, on one machine, in one run:
# - `ember bench profile` of SmallCnn and the transformer at batch 64 and 128, three ways back to
#   back: this commit with its kernels, the same binary with EMBER_KERNELS=burn (burn's ops,
#   everything else equal), and PyTorch (torch_profile.py, its own virtual environment); two rounds;
# - `ember bench devices` (the training step as `ember train` runs it, both models), alternating
#   this commit, the same with EMBER_KERNELS=burn, and the BEFORE commit (built in a worktree with
#   the same target folder: only Ember's crates are rebuilt), three rounds;
# - the README's quick start (`ember train`), this commit and BEFORE, twice each, alternating.
# Usage: experiments/cpu-profile/kernels.sh [BEFORE_COMMIT] [VENV_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
before=${1:-d9e16fd}
venv=${2:-${TMPDIR:-/tmp}/ember-torch-venv}
out=experiments/cpu-profile/results
work=${KERNELS_WORK:-/tmp/ember-kernels-bench}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/ember-target}
mkdir -p "$out" "$work"

rm -rf "$work/before" && git worktree prune && git worktree add -f -q "$work/before" "$before"
(cd "$work/before" && cargo build --release -p ember)
cp "$CARGO_TARGET_DIR/release/ember" "$work/ember-before"
git worktree remove --force "$work/before"
cargo build --release -p ember
cp "$CARGO_TARGET_DIR/release/ember" "$work/ember"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q torch numpy

lscpu > "$out/lscpu.txt"
rm -f "$out"/profile-*.md "$out"/ember-*.json "$out"/burn-*.json "$out"/torch-*.json
for round in 1 2; do
  for batch in 64 128; do
    for model in small-cnn transformer; do
      name="$model-$batch-$round"
      "$work/ember" bench profile --model "$model" --batch-size "$batch" --json "$out/ember-$name.json" >/dev/null
      EMBER_KERNELS=burn "$work/ember" bench profile --model "$model" --batch-size "$batch" \
        --json "$out/burn-$name.json" >/dev/null
      "$venv/bin/python" experiments/cpu-profile/torch_profile.py --model "$model" --batch-size "$batch" \
        --json "$out/torch-$name.json" >/dev/null 2>&1
      "$work/ember" bench profile --from "$out/ember-$name.json" --torch "$out/torch-$name.json" \
        --markdown "$out/profile-$name.md" >/dev/null
      "$work/ember" bench profile --from "$out/burn-$name.json" --torch "$out/torch-$name.json" \
        --markdown "$out/profile-$name-burn-ops.md" >/dev/null
    done
  done
done

for round in 1 2 3; do
  for who in ember burn before; do
    case $who in
      ember) cmd=("$work/ember") ;;
      burn) cmd=(env EMBER_KERNELS=burn "$work/ember") ;;
      before) cmd=("$work/ember-before") ;;
    esac
    "${cmd[@]}" bench devices --devices flex --models small-cnn,transformer \
      --json "$out/devices-$who-$round.json" >/dev/null
  done
done

for round in 1 2; do
  for who in ember before; do
    binary="$work/ember"; [ "$who" = before ] && binary="$work/ember-before"
    "$binary" train --runs-dir "$work/runs" 2>&1 | tail -1 > "$out/quick-start-$who-$round.txt"
  done
done
