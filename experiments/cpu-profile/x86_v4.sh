#!/usr/bin/env bash
# burn's `x86-v4` feature (gemm's AVX-512 kernels compiled in) on and off, measured side by side:
# builds the current commit a second time with the feature (in a clone whose workspace-hack asks
# for it; its own target folder, a cold ~25-minute build), then alternates the two binaries:
# `ember bench devices` three rounds, `ember bench profile` two, and runs both binaries under
# qemu-user with a CPU model without AVX-512 (Haswell) to check that the feature build still runs
# and computes the same numbers there (gemm picks its AVX-512 kernels only when the CPU reports
# avx512f at run time).
# Usage: experiments/cpu-profile/x86_v4.sh [OUT_DIR]   (needs `apt-get install qemu-user` for the last part)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-experiments/cpu-profile/x86-v4}
work=${X86V4_WORK:-/tmp/ember-x86-v4}
mkdir -p "$out" "$work"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/ember-target}
cargo build --release -p ember
cp "$CARGO_TARGET_DIR/release/ember" "$work/base"

rm -rf "$work/clone" && git clone -q . "$work/clone"
sed -i -E 's/^(burn = \{ version = "0.22.1", features = \[[^]]*)\]/\1, "x86-v4"]/' "$work/clone/workspace-hack/Cargo.toml"
grep -q '"x86-v4"' "$work/clone/workspace-hack/Cargo.toml"
(cd "$work/clone" && CARGO_TARGET_DIR="$work/target" cargo build --release -p ember)
cp "$work/target/release/ember" "$work/v4"

for round in 1 2 3; do
  order="base v4"; [ $((round % 2)) -eq 0 ] && order="v4 base"
  for b in $order; do
    "$work/$b" bench devices --devices flex --models small-cnn,transformer --json "$out/devices-$b-$round.json"
  done
done
for round in 1 2; do
  order="base v4"; [ $((round % 2)) -eq 0 ] && order="v4 base"
  for b in $order; do
    "$work/$b" bench profile --json "$out/profile-$b-$round.json"
  done
done

if command -v qemu-x86_64 >/dev/null; then
  run=(train --model cnn --widths 16,32 --train-subset 256 --test-subset 128 --epochs 1 --batch-size 64 --quiet)
  for b in base v4; do
    qemu-x86_64 -cpu Haswell "$work/$b" "${run[@]}" --runs-dir "$work/qemu" --run-name "$b" 2>/dev/null | tail -n 1
  done
  numbers='.summary | {final_train_loss, final_eval, best_value}'
  cmp <(jq -c "$numbers" "$work/qemu/base/summary.json") <(jq -c "$numbers" "$work/qemu/v4/summary.json") \
    && echo "under qemu -cpu Haswell (no AVX-512) the x86-v4 build trains and computes what the base build does"
fi
