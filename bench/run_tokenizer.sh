#!/usr/bin/env bash
# bench/tokenizer: ours vs HF tokenizers, flash-tokenizer and pytorch-pretrained-bert
# on English captions and CJK-heavy text, 1 and 2 threads.
set -euo pipefail
BUILD="${1:-${UNITER_BUILD:-build}}"
"$BUILD/bench/tokenizer_bench" "${@:2}"
