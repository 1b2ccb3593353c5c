#!/usr/bin/env bash
# bench/featdb: img_db random read + decode per codec vs UNITER's Python reader
# on the same LMDB in the same run; bytes on disk per codec; pack throughput.
set -euo pipefail
BUILD="${1:-${UNITER_BUILD:-build}}"
"$BUILD/bench/featdb_bench" --records 200 --reads 400 "${@:2}"
