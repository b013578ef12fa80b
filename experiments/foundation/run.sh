#!/usr/bin/env bash
# Reproduces experiments/foundation/README.md: SmallCnn on the full CIFAR-10 training set (the
# shared JPEG copy), read once through the image-folder reader and once through the binary reader,
# on the flex CPU backend; then the flex-vs-ndarray training-step benchmark.
# Prerequisites (see datasets/README.md): datasets/local/cifar10-jpeg/{train,test} and
# datasets/local/cifar-10-batches-bin/ made from ../shared/datasets/cifar10-jpeg.tar.gz.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ember-target}"
cargo build --release -p ember
ember="$CARGO_TARGET_DIR/release/ember"
out=experiments/foundation

"$ember" bench devices --devices flex,ndarray --batch-size 32 --steps 5 --warmup 1 --out "$out/bench-flex-ndarray.json"

common=(--epochs 2 --batch-size 128 --eval-batch-size 500 --seed 0 --log-every 50 --device flex --quiet)
"$ember" train --dataset image-folder:datasets/local/cifar10-jpeg --optimizer sgd --lr 0.05 \
  --momentum 0.9 --weight-decay 5e-4 --run-name cifar10-folder-sgd "${common[@]}"
"$ember" train --dataset cifar10 --data-dir datasets/local --optimizer adam --lr 1e-3 \
  --run-name cifar10-bin-adam "${common[@]}"
"$ember" train --dataset cifar10 --data-dir datasets/local --optimizer sgd --lr 0.05 \
  --momentum 0.9 --weight-decay 5e-4 --run-name cifar10-bin-sgd "${common[@]}"
for run in cifar10-folder-sgd cifar10-bin-adam cifar10-bin-sgd; do
  cp "runs/$run/metrics.jsonl" "$out/$run.metrics.jsonl"
  cp "runs/$run/summary.json" "$out/$run.summary.json"
done
