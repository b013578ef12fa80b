#!/usr/bin/env bash
# The GPU side-by-side of issue 14, run from the repository root on a machine with a GPU:
#
#   experiments/gpu/run.sh [KIT] [OUT]
#
# KIT (default .gpu-kit) is what experiments/gpu/prepare.sh assembled on a build machine: the
# stripped `ember` binary (xz), the Vulkan loader packages, CIFAR-10 as JPEG and its converter.
# Nothing is built or downloaded here. In OUT (default $OUT, else experiments/gpu/out) it leaves:
#   summary.md       one full-CIFAR-10 SmallCnn epoch per optimizer on wgpu (images/s, epoch time,
#                    test accuracy) beside PyTorch CUDA's epoch of the same model and data path
#   bench-wgpu.md    `ember bench report` on wgpu (and .json)
#   log.txt          what ran, with times
#   results.tar.gz   every run folder and JSON behind the tables
# Sized to finish in under 8 minutes: every step has its own time limit, and the epochs stop being
# started once BUDGET_S (default 270) seconds have passed (worst case: 270 + 90 + 2 × 60 s).
#
# EMBER_GPU_SMOKE=1 rehearses the whole script on any machine in a few minutes: 512 training and
# 256 test images, batches of 32, the end-to-end bench only, three optimizers, PyTorch on the CPU,
# the default wgpu adapter (lavapipe where there is no GPU).
set -euo pipefail
kit=$(realpath "${1:-.gpu-kit}")
out=${2:-${OUT:-experiments/gpu/out}}
mkdir -p "$out"
out=$(realpath "$out")
here=$(cd "$(dirname "$0")" && pwd)
smoke=${EMBER_GPU_SMOKE:-0}
budget_s=${BUDGET_S:-270}
work=$(mktemp -d)
results="$work/results"
mkdir -p "$results/runs"
started=$(date +%s)
log() { echo "[$(( $(date +%s) - started ))s] $*" | tee -a "$out/log.txt"; }

# The Vulkan loader: the GPU machine has NVIDIA's driver but not always libvulkan.
if ! ldconfig -p | grep -q 'libvulkan.so.1'; then
    for deb in "$kit"/gl/*.deb; do dpkg -x "$deb" /; done
    ldconfig
fi
nvidia_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$nvidia_icd" ] && export VK_DRIVER_FILES="$nvidia_icd"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$work}"
(nvidia-smi || true) > "$results/nvidia-smi.txt" 2>&1

ember="$work/ember"
xz -dc "$kit/ember.xz" > "$ember"
chmod +x "$ember"
log "ember $("$ember" --version)"

if [ "$smoke" = 1 ]; then
    sizes=(--train 512 --test 256)
    optimizers=(sgd adam rf-rmsprop)
    bench=(bench devices --devices wgpu --models small-cnn --batch-size 8 --steps 2 --warmup 1)
    batch=32
    log_every=2
    torch_device=cpu
else
    sizes=()
    optimizers=(sgd adam adamw rf-rmsprop if-shampoo shampoo signum gam sam vamo)
    bench=(bench report --devices wgpu --steps 10 --warmup 3)
    batch=128
    log_every=20
    torch_device=cuda
fi
python3 "$kit/make_cifar10_bin.py" "$work/data" --archive "$kit/cifar10-jpeg.tar.gz" "${sizes[@]}" \
    | tee -a "$out/log.txt"

log "${bench[*]}"
timeout 150 "$ember" "${bench[@]}" \
    --json "$out/bench-wgpu.json" --markdown "$out/bench-wgpu.md" > "$results/bench.log" 2>&1 \
    || log "bench report failed or timed out (exit $?); see results/bench.log"

for optimizer in "${optimizers[@]}"; do
    if (( $(date +%s) - started > budget_s )); then
        log "time budget spent: $optimizer and the optimizers after it not run"
        break
    fi
    log "one CIFAR-10 epoch of SmallCnn on wgpu with $optimizer"
    timeout 90 "$ember" train --device wgpu --dataset cifar10 --data-dir "$work/data" \
        --model cnn --optimizer "$optimizer" --epochs 1 --batch-size "$batch" \
        --eval-batch-size 1000 --log-every "$log_every" --quiet --runs-dir "$results/runs" --run-name "$optimizer" \
        > "$results/runs/$optimizer.log" 2>&1 \
        || log "$optimizer failed or timed out (exit $?); see results/runs/$optimizer.log"
done

for optimizer in sgd adam; do
    log "one CIFAR-10 epoch of SmallCnn in PyTorch ($torch_device) with $optimizer"
    timeout 60 python3 "$here/torch_smallcnn_epoch.py" --data "$work/data/cifar-10-batches-bin" \
        --device "$torch_device" --optimizer "$optimizer" --batch-size "$batch" \
        --json "$results/torch-$optimizer.json" > "$results/torch-$optimizer.log" 2>&1 \
        || log "torch $optimizer failed or timed out (exit $?)"
done

tar czf "$out/results.tar.gz" -C "$work" results
python3 "$here/summarise.py" "$results" > "$out/summary.md" || log "summarise.py failed"
cat "$out/summary.md"
log "done"
