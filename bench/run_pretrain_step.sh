#!/usr/bin/env bash
# bench/pretrain_step: one UNITER-base pretraining step per task (mlm, mrfr,
# mrc, mrc-kl, itm with OT), ours vs the PyTorch restatement of UNITER's
# model/pretrain.py with the same torch threads, each side in its own process
# (ms/step, peak RSS, ratios). Extra flags go to the bench, e.g.
# `--device cuda --amp fp16 --tokens 10240` (pretrain-indomain-base-8gpu.json's per-GPU batch).
set -euo pipefail
BUILD="${1:-${UNITER_BUILD:-build}}"
"$BUILD/bench/pretrain_step_bench" --threads 1,2 --steps 5 --warmup 2 --tokens 1024 "${@:2}"
