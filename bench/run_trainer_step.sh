#!/usr/bin/env bash
# bench/trainer_step: one UNITER-base training step (NLVR2 paired-attn and VQA
# batches), ours vs the PyTorch restatement of UNITER's model with the same
# torch threads, each side in its own process (ms/step, peak RSS, ratios).
# Extra flags go to the bench, e.g. `--device cuda --amp bf16 --threads 4`.
set -euo pipefail
BUILD="${1:-${UNITER_BUILD:-build}}"
"$BUILD/bench/trainer_step_bench" --threads 1,2 --steps 5 --warmup 2 "${@:2}"
