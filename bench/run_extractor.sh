#!/usr/bin/env bash
# Extractor benchmark on the CPU: full-size synthetic BUTD weights (real layer
# names and shapes), the real photos in ../shared/data/butd/images.
#   bench/run_extractor.sh [BUILD_DIR] [REPEAT]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
REPEAT="${2:-1}"
SHARED="$(cd .. && pwd)/shared/data"
WORK="${TMPDIR:-/tmp}/uniter-extractor-bench"
mkdir -p "$WORK"
if [ ! -f "$WORK/full.caffemodel" ]; then
  "$BUILD/tools/uniter" extract-tools make-caffemodel --prototxt "$SHARED/butd/test.prototxt" \
    --out "$WORK/full.caffemodel"
fi
nproc | sed 's/^/cores: /'
"$BUILD/bench/extractor_bench" "$SHARED/butd/test.prototxt" "$WORK/full.caffemodel" "$SHARED/butd/images" "$REPEAT"
