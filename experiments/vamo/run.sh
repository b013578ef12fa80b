#!/usr/bin/env bash
# Reproduces experiments/vamo/README.md: an MLP (784-256-10) on Fashion-MNIST (all 60,000 training
# images, 10,000 test images) trained with plain SGD, ZO-SGD, SVRG, VAMO (α = 1/d) and VAMO
# (adaptive α), all stepping through plain SGD (no momentum, no weight decay), batch 64, 5 epochs,
# seed 0; training-loss curves against steps and against wall time.
# Prerequisite: apt-get install -y dataset-fashion-mnist (files in /usr/share/datasets/fashion-mnist).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ember-target}"
cargo build --release -p ember
ember="$CARGO_TARGET_DIR/release/ember"
out=experiments/vamo
data=(--model mlp --hidden 256 --dataset fashion-mnist --data-dir "${FASHION_DIR:-/usr/share/datasets/fashion-mnist}")
common=(--momentum 0 --weight-decay 0 --epochs 5 --batch-size 64 --seed 0 --log-every 20 --device flex --quiet)

# ZO-SGD's step is d·(finite difference)·u with d = 203,530: its lr was chosen by a 1-epoch sweep
# over {1e-2, 1e-3, 1e-4, 1e-5} (best: 1e-4; 1e-2 and 1e-3 blow the loss up, 1e-5 barely moves).
arms=(
  "sgd|--optimizer sgd --lr 0.05"
  "zo-sgd|--optimizer zo-sgd --lr 1e-4"
  "svrg|--optimizer svrg --lr 0.05"
  "vamo|--optimizer vamo --lr 0.05"
  "vamo-adaptive|--optimizer vamo --vamo-adaptive-alpha --lr 0.05"
)
runs=()
labels=()
for arm in "${arms[@]}"; do
  name="${arm%%|*}"
  flags="${arm#*|}"
  rm -rf "runs/vamo-$name"
  # shellcheck disable=SC2086
  "$ember" train "${data[@]}" $flags "${common[@]}" --run-name "vamo-$name"
  cp "runs/vamo-$name/metrics.jsonl" "$out/$name.metrics.jsonl"
  cp "runs/vamo-$name/summary.json" "$out/$name.summary.json"
  runs+=("$out/$name.metrics.jsonl")
  labels+=("$name")
done
IFS=,
"$ember" plot --runs "${runs[*]}" --labels "${labels[*]}" --x step --y train_loss --log-y \
  --title "Fashion-MNIST MLP: training loss vs steps" --out "$out/train-loss-vs-steps.png"
"$ember" plot --runs "${runs[*]}" --labels "${labels[*]}" --x wall --y train_loss --log-y \
  --title "Fashion-MNIST MLP: training loss vs wall time" --out "$out/train-loss-vs-wall.png"
