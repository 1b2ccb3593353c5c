#!/usr/bin/env bash
# Extractor benchmark on the CPU: full-size synthetic BUTD weights (real layer
# names and shapes), real photos: the coco-mini photos of one input size
# (640x480 -> 600x800), a few of them, no warm-up (an image takes minutes
# on 2 cores). Batch 1 (with OpenCV's Caffe importer as the peer, same run) vs 4, fp32 vs bf16, channels-last off/on
# (bench/extractor_bench.cc).
#   bench/run_extractor.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
SHARED="$(cd .. && pwd)/shared/data"
WORK="${TMPDIR:-/tmp}/uniter-extractor-bench"
mkdir -p "$WORK"
if [ ! -f "$WORK/full.caffemodel" ]; then
  "$BUILD/tools/uniter" extract-tools make-caffemodel --prototxt "$SHARED/butd/test.prototxt" \
    --out "$WORK/full.caffemodel"
fi
nproc | sed 's/^/cores: /'
for args in "--max-images 2 --opencv" "--max-images 4 --batch 4" "--max-images 1 --channels-last" \
            "--max-images 1 --precision bf16"; do
  # shellcheck disable=SC2086
  "$BUILD/bench/extractor_bench" "$SHARED/butd/test.prototxt" "$WORK/full.caffemodel" \
    "$SHARED/coco-mini/val2017" 1 --warmup 0 $args
  echo
done
