#!/usr/bin/env bash
# The one prepared GPU check, run on the lent GPU machine (see the device tool):
# builds the CUDA kernels against the LibTorch inside that machine's Python torch,
# runs the CUDA tests and times the kernels, all in one call.
#
# Here, first (once per session):   scripts/device-check.sh --prepare
#   copies Debian's GoogleTest sources into .device/ (git-ignored), which the
#   call must carry: run(command="scripts/device-check.sh", carry=[".device"]).
# There:                            scripts/device-check.sh
#   logs go to $OUT/device-check.log when $OUT is set.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--prepare" ]; then
  rm -rf .device && mkdir -p .device
  cp -r /usr/src/googletest .device/googletest
  grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
  echo "prepared .device/ ($(du -sh .device | cut -f1)); carry it"
  exit 0
fi
LOG="${OUT:-/tmp}/device-check.log"
exec > >(tee "$LOG") 2>&1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
TORCH_PREFIX=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
cmake -S scripts/device -B /tmp/uniter-device -G Ninja -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" \
  -DGTEST_SOURCE_DIR="$PWD/.device/googletest" -DCMAKE_CUDA_ARCHITECTURES=90
cmake --build /tmp/uniter-device -j "$(nproc)"
/tmp/uniter-device/extractor_cuda_test --gtest_brief=0
