#!/usr/bin/env bash
# Reproduces experiments/gam/README.md: SmallCnn on a CIFAR-10 subset (first 5,000 training images,
# first 2,000 test images) on flex: SGD vs SAM(SGD) vs GAM(SGD) at equal epochs (3) and seeds (0, 1);
# test accuracy, time per epoch and passes per step.
# Prerequisite: datasets/local/cifar-10-batches-bin/ (see datasets/README.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ember-target}"
cargo build --release -p ember
ember="$CARGO_TARGET_DIR/release/ember"
out=experiments/gam

common=(--dataset cifar10 --data-dir datasets/local --train-subset 5000 --test-subset 2000
        --epochs 3 --batch-size 64 --eval-batch-size 500 --log-every 20 --device flex --quiet
        --lr 0.05 --momentum 0.9 --weight-decay 5e-4)
# GAM's knobs are the paper's CIFAR-10 ResNet column (ρ = 0.2, ρ' = 0.03, α = 0.1, β = 0.1,
# γ = 0.05), the defaults of `ember train --optimizer gam`; SAM uses ρ = 0.05.
arms=(
  "sgd|--optimizer sgd"
  "sam|--optimizer sam --base-optimizer sgd --sam-rho 0.05"
  "gam|--optimizer gam --base-optimizer sgd"
)
for seed in 0 1; do
  for arm in "${arms[@]}"; do
    name="${arm%%|*}"
    flags="${arm#*|}"
    run="gam-$name-s$seed"
    rm -rf "runs/$run"
    # shellcheck disable=SC2086
    "$ember" train $flags "${common[@]}" --seed "$seed" --run-name "$run"
    cp "runs/$run/metrics.jsonl" "$out/$name-s$seed.metrics.jsonl"
    cp "runs/$run/summary.json" "$out/$name-s$seed.summary.json"
  done
done
runs=() labels=()
for seed in 0 1; do
  for name in sgd sam gam; do
    runs+=("$out/$name-s$seed.metrics.jsonl")
    labels+=("$name seed $seed")
  done
done
IFS=,
"$ember" plot --runs "${runs[*]}" --labels "${labels[*]}" --x epoch --y test_accuracy \
  --title "SmallCnn, CIFAR-10 subset: test accuracy" --out "$out/test-accuracy.png"
