#!/usr/bin/env bash
# Reproduces experiments/plrs/README.md: SmallCnn on a CIFAR-10 subset (5,000 class-balanced
# training images, 2,000 test images) with plain SGD (no momentum, no weight decay, as in the PLRS
# paper) on flex. First an LR range test picks the PLRS bounds; then PLRS, cosine (from the PLRS
# upper bound to 0) and a constant lr (the midpoint of the PLRS bounds, so the mean lr matches) are
# trained for the same epochs with seeds 0 and 1; finally the plots.
# Prerequisite: datasets/local/cifar-10-batches-bin/ (see datasets/README.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ember-target}"
cargo build --release -p ember
# A private copy, so that rebuilding the tree while this runs (about half an hour) cannot change
# the binary between runs.
bin_dir=$(mktemp -d)
trap 'rm -rf "$bin_dir"' EXIT
cp "$CARGO_TARGET_DIR/release/ember" "$bin_dir/ember"
ember="$bin_dir/ember"
out=experiments/plrs
epochs="${EPOCHS:-4}"
seeds=(0 1)

common=(--dataset cifar10 --data-dir datasets/local --train-subset 5000 --test-subset 2000
        --optimizer sgd --momentum 0 --weight-decay 0 --batch-size 64 --eval-batch-size 500
        --device flex --quiet)

# 1. LR range test on the same subset, model, optimizer and batch size; its last line is the
#    suggested `ember train --scheduler plrs --min-lr A --max-lr B` command.
start=$SECONDS
nice -n 5 "$ember" lr-find "${common[@]}" --seed 0 --out "$out" | tee "$out/lr_find.txt"
echo "lr-find: $((SECONDS - start))s" | tee -a "$out/lr_find.txt"
suggested=$(grep -- "--max-lr" "$out/lr_find.txt" | tail -n 1)
lr_min=$(sed -E 's/.*--min-lr ([^ ]+).*/\1/' <<<"$suggested")
lr_max=$(sed -E 's/.*--max-lr ([^ ]+).*/\1/' <<<"$suggested")
lr_mid=$(awk -v a="$lr_min" -v b="$lr_max" 'BEGIN { printf "%.4g", (a + b) / 2 }')
echo "PLRS bounds [$lr_min, $lr_max]; constant lr $lr_mid; cosine $lr_max -> 0"

# 2. Three schedules × two seeds, equal epochs.
arms=(
  "plrs|--scheduler plrs --min-lr $lr_min --max-lr $lr_max"
  "cosine|--scheduler cosine --lr $lr_max --min-lr 0"
  "constant|--scheduler constant --lr $lr_mid"
)
for seed in "${seeds[@]}"; do
  for arm in "${arms[@]}"; do
    name="${arm%%|*}-s$seed"
    flags="${arm#*|}"
    rm -rf "runs/plrs-$name"
    start=$SECONDS
    # shellcheck disable=SC2086
    nice -n 5 "$ember" train $flags "${common[@]}" --epochs "$epochs" --seed "$seed" \
      --log-every 13 --run-name "plrs-$name"
    echo "$name: $((SECONDS - start))s"
    cp "runs/plrs-$name/metrics.jsonl" "$out/$name.metrics.jsonl"
    cp "runs/plrs-$name/summary.json" "$out/$name.summary.json"
  done
done

# 3. Plots of every run.
runs=() labels=()
for arm in "${arms[@]}"; do
  for seed in "${seeds[@]}"; do
    runs+=("$out/${arm%%|*}-s$seed.metrics.jsonl")
    labels+=("${arm%%|*} seed $seed")
  done
done
join() { local IFS=,; echo "$*"; }
"$ember" plot --runs "$(join "${runs[@]}")" --labels "$(join "${labels[@]}")" \
  --x epoch --y test_accuracy --title "SmallCnn, CIFAR-10 subset: test accuracy" \
  --out "$out/test-accuracy.png"
"$ember" plot --runs "$(join "${runs[@]}")" --labels "$(join "${labels[@]}")" \
  --x step --y train_loss --title "SmallCnn, CIFAR-10 subset: training loss" \
  --out "$out/train-loss.png"
"$ember" plot --runs "$out/plrs-s0.metrics.jsonl,$out/cosine-s0.metrics.jsonl,$out/constant-s0.metrics.jsonl" \
  --labels "plrs,cosine,constant" --x step --y lr --title "learning rate (seed 0, last step of every 13)" \
  --out "$out/lr.png"
