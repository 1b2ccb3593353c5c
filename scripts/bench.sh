#!/usr/bin/env bash
# `make bench`: every benchmark, each running its peer on the same input in the
# same run and printing the ratio. Results go to bench/RESULTS.md by hand, with
# the date and the machine.
set -euo pipefail
BUILD="${1:-build}"
export UNITER_BUILD="$BUILD"
for b in bench/run_*.sh; do
  [ -e "$b" ] || continue
  echo "== $b"
  bash "$b" "$BUILD"
done
