#!/usr/bin/env bash
# Regenerates experiments/bench.{json,md} in one run: PyTorch's anchor (torch Adam and the
# authors' sirfshampoo on SmallCnn, in their own virtual environment from PyPI), then
# `ember bench report` on the CPU with that anchor beside its own figures.
# Usage: experiments/bench.sh [VENV_DIR] [extra `ember bench report` args, e.g. --devices flex,wgpu]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/ember-target}
experiments/kronecker-speed/run_anchor.sh "${1:-}" --json experiments/bench-anchor.json
EMBER_COMMIT=$(git rev-parse --short HEAD) cargo run --release -p ember -- bench report \
    --anchor experiments/bench-anchor.json \
    --json experiments/bench.json --markdown experiments/bench.md "${@:2}"
