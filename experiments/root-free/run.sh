#!/usr/bin/env bash
# Reproduces experiments/root-free/README.md: SmallCnn on a CIFAR-10 subset (first 10,000 training
# images class-balanced, 2,000 test images) on flex: SGD, AdamW, RF-RMSProp and IF-Shampoo at equal
# epochs and seed; then the optimizer-step benchmark (time relative to burn's Adam, state size).
# Prerequisite: datasets/local/cifar-10-batches-bin/ (see datasets/README.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ember-target}"
cargo build --release -p ember
ember="$CARGO_TARGET_DIR/release/ember"
out=experiments/root-free
export EMBER_COMMIT="$(git rev-parse --short HEAD)"

"$ember" bench optimizers --device flex --batch-size 128 --steps 20 --warmup 3 --out "$out/bench-optimizers-flex.json"

common=(--dataset cifar10 --data-dir datasets/local --train-subset 10000 --test-subset 2000
        --epochs 4 --batch-size 128 --eval-batch-size 500 --seed 0 --log-every 20 --device flex --quiet)
arms=(
  "sgd|--optimizer sgd --lr 0.05 --momentum 0.9 --weight-decay 5e-4"
  "adamw|--optimizer adamw --lr 1e-3 --weight-decay 0.01"
  "rf-rmsprop|--optimizer rf-rmsprop --lr LR_RF --beta2 0.01 --damping 1e-4 --momentum 0.9 --weight-decay 5e-4"
  "if-shampoo|--optimizer if-shampoo --lr LR_IF --beta2 0.01 --damping 1e-3 --momentum 0.9 --weight-decay 5e-4"
)
for arm in "${arms[@]}"; do
  name="${arm%%|*}"
  flags="${arm#*|}"
  flags="${flags/LR_RF/${LR_RF:-0.01}}"
  flags="${flags/LR_IF/${LR_IF:-0.01}}"
  rm -rf "runs/rootfree-$name"
  # shellcheck disable=SC2086
  "$ember" train $flags --run-name "rootfree-$name" "${common[@]}"
  cp "runs/rootfree-$name/metrics.jsonl" "$out/$name.metrics.jsonl"
  cp "runs/rootfree-$name/summary.json" "$out/$name.summary.json"
done
