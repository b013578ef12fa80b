#!/bin/bash
# N workers on one machine (or on several, each running this against a shared RUNS_DIR):
#
#   experiments/cluster/local-workers.sh experiments/fashion-mnist-mlp.toml 2
#
# The same with GNU parallel or xargs, which is all this script does:
#   seq 2 | xargs -P 2 -I{} target/release/ember compare SPEC --worker --runs-dir runs
#   parallel -j 2 target/release/ember compare SPEC --worker --runs-dir runs ::: 1 2
# With N workers on a machine of C cores, give each C/N threads (RAYON_NUM_THREADS): see
# experiments/cluster/README.md for what that buys on 2 cores.
set -euo pipefail
SPEC=${1:?usage: local-workers.sh SPEC.toml [WORKERS] [RUNS_DIR]}
WORKERS=${2:-2}
RUNS_DIR=${3:-runs}
EMBER=${EMBER:-target/release/ember}
CORES=$(nproc)
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-$(( CORES / WORKERS > 0 ? CORES / WORKERS : 1 ))}
seq "$WORKERS" | xargs -P "$WORKERS" -I{} "$EMBER" compare "$SPEC" --worker --runs-dir "$RUNS_DIR"
