#!/usr/bin/env bash
# Installs torch, numpy and the authors' sirfshampoo into a virtual environment (PyPI) and times
# their updates on SmallCnn next to torch's Adam (see anchor.py).
# Usage: run_anchor.sh [VENV_DIR] [anchor.py args, e.g. --json PATH]  (VENV_DIR "" for the default)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-${TMPDIR:-/tmp}/ember-anchor-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q torch numpy sirfshampoo==0.0.1
"$venv/bin/python" "$here/anchor.py" "${@:2}"
