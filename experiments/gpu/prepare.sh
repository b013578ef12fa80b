#!/usr/bin/env bash
# Assembles, on a build machine with the Rust toolchain, what experiments/gpu/run.sh needs on a GPU
# machine that has none (and no network): KIT (default .gpu-kit, git-ignored) gets
#   ember.xz               the release `ember` binary, stripped and xz-compressed (about 20 MB)
#   gl/*.deb               the Vulkan/EGL loader packages (amd64), unpacked there if missing
#   cifar10-jpeg.tar.gz    CIFAR-10 as JPEG (../shared/datasets, or CIFAR10_JPEG=PATH)
#   make_cifar10_bin.py    its converter to the official binary layout
# The kit plus the working tree must stay under the device tool's 64 MiB; the script says the total.
# Then, with the device tool: run `bash experiments/gpu/run.sh .gpu-kit` with carry [".gpu-kit"].
set -euo pipefail
cd "$(dirname "$0")/../.."
kit=${1:-.gpu-kit}
shared=${SHARED_DATASETS:-../shared/datasets}
target=${CARGO_TARGET_DIR:-$HOME/.cache/ember-target}
mkdir -p "$kit/gl"

CARGO_TARGET_DIR="$target" cargo build --release -p ember
strip -o "$kit/ember" "$target/release/ember"
xz -9 -T2 -f "$kit/ember"

cp "${CIFAR10_JPEG:-$shared/cifar10-jpeg.tar.gz}" "$kit/cifar10-jpeg.tar.gz"
cp "$shared/make_cifar10_bin.py" "$kit/"

lists=$(mktemp -d)
mkdir -p "$lists/partial"
apt_options=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists")
apt-get "${apt_options[@]}" update > /dev/null
(cd "$kit/gl" && apt-get "${apt_options[@]}" download libvulkan1 libegl1 libglvnd0 > /dev/null)

du -sh "$kit"/* "$kit/gl"
echo "kit $(du -sb "$kit" | cut -f1) bytes; tracked tree $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) bytes; limit 67108864"
