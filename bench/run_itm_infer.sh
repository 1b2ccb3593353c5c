#!/usr/bin/env bash
# bench/itm_infer: ITM inference pairs/s, ours (`uniter infer itm`'s scoring)
# vs the PyTorch restatement of inf_itm.py's loop, UNITER-base, same threads,
# same run. Extra flags go to the bench, e.g. `--texts 8 --threads 1`.
set -euo pipefail
BUILD="${1:-${UNITER_BUILD:-build}}"
"$BUILD/bench/itm_infer_bench" "${@:2}"
