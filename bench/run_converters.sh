#!/usr/bin/env bash
# bench/converters: NLVR2 dev+test1 end to end vs tokenizing alone, 1 and 2 threads.
set -euo pipefail
BUILD="${1:-${UNITER_BUILD:-build}}"
"$BUILD/bench/converters_bench" "${@:2}"
