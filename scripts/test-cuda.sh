#!/usr/bin/env bash
# The CUDA build of `make test` (issue #5): a second tree configured against the
# CUDA LibTorch inside PyPI's torch wheel (scripts/install-deps.sh puts it in
# ~/.cache/uniter/venv-cuda) with UNITER_WITH_CUDA=ON, so the CUDA kernels and
# the code that dispatches to them compile and link on every machine with
# nvcc. Only the LibTorch parts are built: the extractor and its CUDA kernels,
# the torch plugin with the `uniter` binary, and the extractor tests, which then
# run on the CPU (the CUDA tests skip: no CUDA device); and the trainer's device
# tests (trainer_amp_test's FusedAttention/CudaTrain: the fused attention of
# LibTorch >= 2 against the explicit form on the CPU; CUDA ones skip).
#
#   scripts/test-cuda.sh [BUILD_DIR]      # default build-cuda
#   UNITER_CUDA_BUILD=auto|require|off    # auto (default): say why and skip
#                                         # when nvcc or the venv is missing;
#                                         # require: fail instead (the default
#                                         # under CI=true or UNITER_STRICT=1);
#                                         # off: skip
#   JOBS=N CMAKE_FLAGS=... CTEST_FLAGS=... (CUDA_CTEST_FLAGS, when set, replaces
#                                         # the default selection and CTEST_FLAGS)
#   UNITER_CUDA_ARCHITECTURES="75;80;90"  # GPU architectures (default: CMake's
#                                         # 70;75;80;86;89;90, less what nvcc lacks)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build-cuda}"
if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ] || [ "${UNITER_STRICT:-}" = 1 ]; then
  MODE="${UNITER_CUDA_BUILD:-require}"
else
  MODE="${UNITER_CUDA_BUILD:-auto}"
fi
CUDA_VENV="${UNITER_CUDA_VENV:-$HOME/.cache/uniter/venv-cuda}"
JOBS="${JOBS:-$(nproc)}"

skip() {
  if [ "$MODE" = require ]; then
    echo "test-cuda: $1, and UNITER_CUDA_BUILD=require" >&2
    exit 1
  fi
  echo "test-cuda: skipping the CUDA build: $1"
  exit 0
}

[ "$MODE" = off ] && { echo "test-cuda: UNITER_CUDA_BUILD=off: no CUDA build"; exit 0; }
NVCC="$(command -v nvcc || true)"
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
[ -n "$NVCC" ] || skip "no nvcc (not on PATH, not in /usr/local/cuda/bin)"
[ -x "$CUDA_VENV/bin/python" ] || skip "no CUDA LibTorch venv $CUDA_VENV (scripts/install-deps.sh creates it)"
TORCH_DIR="$(ls -d "$CUDA_VENV"/lib/python3*/site-packages/torch/share/cmake/Torch 2>/dev/null | head -1)"
[ -n "$TORCH_DIR" ] || skip "no torch in $CUDA_VENV (scripts/install-deps.sh installs it)"

# The architectures, as CMake's UNITER_CUDA_ARCHITECTURES and as LibTorch's
# TORCH_CUDA_ARCH_LIST (which would otherwise add code for every architecture
# when no GPU is present): the default list less what this nvcc cannot build.
ARCHS="${UNITER_CUDA_ARCHITECTURES:-70;75;80;86;89;90}"
LISTED="$("$NVCC" --list-gpu-arch 2>/dev/null || true)"
KEPT=()
for a in ${ARCHS//;/ }; do
  if [ -z "$LISTED" ] || grep -qx "compute_$a" <<<"$LISTED"; then KEPT+=("$a"); fi
done
[ ${#KEPT[@]} -gt 0 ] || skip "nvcc builds none of $ARCHS"
CMAKE_ARCHS="$(IFS=';'; echo "${KEPT[*]}")"
TORCH_ARCHS="$(printf '%s;' "${KEPT[@]}" | sed -E 's/([0-9]+)([0-9]);/\1.\2;/g; s/;$/+PTX/')"

start=$(date +%s)
# Configured with exactly these flags: when they change, cmake runs again on a
# fresh cache (the objects stay).
FLAGS="-DTorch_DIR=$TORCH_DIR -DUNITER_WITH_CUDA=ON -DCMAKE_CUDA_COMPILER=$NVCC -DUNITER_CUDA_ARCHITECTURES=$CMAKE_ARCHS -DTORCH_CUDA_ARCH_LIST=$TORCH_ARCHS ${CMAKE_FLAGS:-}"
if [ ! -f "$BUILD/build.ninja" ] || [ "$(cat "$BUILD/.cmake-flags" 2>/dev/null)" != "$FLAGS" ]; then
  rm -f "$BUILD/CMakeCache.txt" "$BUILD/.cmake-flags"
  # shellcheck disable=SC2086
  cmake -S . -B "$BUILD" -G Ninja -DTorch_DIR="$TORCH_DIR" -DUNITER_WITH_CUDA=ON \
    -DCMAKE_CUDA_COMPILER="$NVCC" "-DUNITER_CUDA_ARCHITECTURES=$CMAKE_ARCHS" \
    "-DTORCH_CUDA_ARCH_LIST=$TORCH_ARCHS" ${CMAKE_FLAGS:-}
  printf '%s' "$FLAGS" > "$BUILD/.cmake-flags"
fi
cmake --build "$BUILD" -j "$JOBS" --target uniter uniter_torch_commands uniter_extractor uniter_extractor_cuda \
  extractor_test extractor_cuda_test trainer_amp_test
built=$(date +%s)
# The extractor's tests only (other modules are not built in this tree); the
# `gpu`-labelled ones too: they skip with the reason where no device is. The
# CLI output-format tests exercise no LibTorch code the CPU tree's run has not
# (one end-to-end CLI test stays): left out by default to keep CI short.
DEFAULT_FLAGS='-E ExtractCli\.(NpzFolder|TsvIs|BatchesAnd|ShardsMerge)'
# shellcheck disable=SC2086
LOG="$(cd "$BUILD" && pwd)/ctest.log"
(cd "$BUILD/tests/extractor" && ctest --output-on-failure -j "$JOBS" -O "$LOG" \
  ${CUDA_CTEST_FLAGS-$DEFAULT_FLAGS ${CTEST_FLAGS:-}})
# The trainer's device tests: the fused attention of LibTorch >= 2 against the
# explicit form on the CPU (CUDA ones skip without a device).
# shellcheck disable=SC2086
(cd "$BUILD/tests/trainer" && ctest --output-on-failure -j "$JOBS" -O "$(dirname "$LOG")/ctest-trainer.log" \
  -R 'FusedAttention|CudaTrain|CudaInfer')
echo "test-cuda: ok (configure+build $((built - start)) s, tests $(($(date +%s) - built)) s)"
