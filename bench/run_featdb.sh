#!/usr/bin/env bash
# bench/featdb: img_db random read + decode per codec vs UNITER's Python reader
# on the same LMDB in the same run; bytes on disk per codec; pack throughput.
# Extra flags go to the bench, e.g. `--codecs npz --repeat 5 --no-pack`: five back-to-back
# C++/Python pairs on the npz db and their median ratio (the machine is shared and noisy).
set -euo pipefail
BUILD="${1:-${UNITER_BUILD:-build}}"
"$BUILD/bench/featdb_bench" --records 200 --reads 400 "${@:2}"
