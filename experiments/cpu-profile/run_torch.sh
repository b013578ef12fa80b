#!/usr/bin/env bash
# Installs torch and numpy into a virtual environment (PyPI) and profiles SmallCnn's CPU training
# step part by part (see torch_profile.py).
# Usage: run_torch.sh [VENV_DIR] [torch_profile.py args]  (VENV_DIR "" for the default)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-${TMPDIR:-/tmp}/ember-torch-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q torch numpy
"$venv/bin/python" "$here/torch_profile.py" "${@:2}"
