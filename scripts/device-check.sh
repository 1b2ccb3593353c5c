#!/usr/bin/env bash
# The one prepared GPU check (issue #5), run on the lent GPU machine in one
# call: builds the CUDA kernels and the OpenCV-free extractor core against the
# LibTorch inside that machine's Python torch (scripts/device/CMakeLists.txt),
# runs the CUDA op tests, preprocesses the carried photos exactly as BUTD
# (scripts/device/preprocess.py: cv2 + numpy), writes full-size synthetic
# weights and benchmarks the network on cuda:0 (bench/extractor_device_bench.cc):
# images/s for batch 1/4/8 x fp32/fp16/bf16 x channels-last off/on, the stage
# split, and the fp16/bf16 feature error against fp32. Then the trainer's
# device part: its model half (no databases) and tests/trainer/amp_gpu_test.cc
# built against the same torch (trainer_gpu_test): fused attention vs the
# explicit form on the CPU and on cuda:0, fp16 (dynamic loss scaling) and bf16
# autocast train steps vs fp32 on cuda:0, an fp16 overflow skipping its step,
# `uniter infer`'s forward under fp16/bf16 autocast on cuda:0 vs the CPU's fp32.
#
# Here, first (once per session):   scripts/device-check.sh --prepare
#   fills .device/ (git-ignored; < 60 MiB): GoogleTest sources, Debian's
#   libprotobuf-dev unpacked (static library + headers), caffe.pb.{h,cc} from
#   the matching protoc, the BUTD prototxt, the 5 BUTD demo photos and the
#   coco-mini photos. Carry it:
#   run(command="scripts/device-check.sh", carry=[".device"], timeout_s=600).
# There:                            scripts/device-check.sh
#   everything goes to $OUT/device-check.log, the table to $OUT/extractor_device_bench.md.
# Without a GPU (proves the script up to the GPU itself):
#                                   scripts/device-check.sh --cpu
#   the same build against the CUDA LibTorch of ~/.cache/uniter/venv-cuda
#   (else Debian's CPU LibTorch), the benchmark on the CPU with narrow
#   synthetic weights and few images; trainer_gpu_test runs its CPU test (the
#   fused attention of LibTorch >= 2) and skips the CUDA ones. UNITER_DEVICE_PYTHON picks a Python
#   with cv2 (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
DEV="$ROOT/.device"
SHARED="$(cd .. && pwd)/shared/data"

if [ "${1:-}" = "--prepare" ]; then
  rm -rf "$DEV" && mkdir -p "$DEV/gen/extractor" "$DEV/images" "$DEV/protobuf"
  cp -r /usr/src/googletest "$DEV/googletest"
  # nlohmann/json (header-only) for the trainer's model half.
  mkdir -p "$DEV/include" && cp -r /usr/include/nlohmann "$DEV/include/"
  # Debian's static protobuf and its headers, unpacked into a prefix (never /).
  tmp="$(mktemp -d)" && chmod 755 "$tmp"
  (cd "$tmp" && apt-get download libprotobuf-dev >/dev/null)
  dpkg -x "$tmp"/libprotobuf-dev_*.deb "$tmp/x"
  mkdir -p "$DEV/protobuf/usr/lib/x86_64-linux-gnu"
  cp "$tmp/x/usr/lib/x86_64-linux-gnu/libprotobuf.a" "$DEV/protobuf/usr/lib/x86_64-linux-gnu/"
  cp -r "$tmp/x/usr/include" "$DEV/protobuf/usr/include"
  rm -rf "$tmp"
  # The generated code must match those headers: the protoc of the same release.
  pb_dev="$(dpkg-query -W -f='${Version}' libprotobuf-dev)"
  pb_protoc="$(dpkg-query -W -f='${Version}' protobuf-compiler 2>/dev/null || true)"
  if [ "${pb_dev%%-*}" != "${pb_protoc%%-*}" ]; then
    echo "device-check: protoc ($pb_protoc) and libprotobuf-dev ($pb_dev) differ" >&2
    exit 1
  fi
  protoc --proto_path="$ROOT/extractor" --cpp_out="$DEV/gen/extractor" "$ROOT/extractor/caffe.proto"
  cp "$SHARED/butd/test.prototxt" "$DEV/"
  cp "$SHARED"/butd/images/*.jpg "$SHARED"/coco-mini/val2017/*.jpg "$DEV/images/"
  # .gitignore lists /.device/ (in a worktree .git is a file: no info/exclude to add to)
  size_kib="$(du -sk "$DEV" | cut -f1)"
  echo "prepared .device/ ($((size_kib / 1024)) MiB): carry it"
  if [ "$size_kib" -ge $((60 * 1024)) ]; then
    echo "device-check: .device/ is over 60 MiB" >&2
    exit 1
  fi
  exit 0
fi

CPU=0
[ "${1:-}" = "--cpu" ] && CPU=1
[ -d "$DEV/gen" ] || { echo "device-check: run scripts/device-check.sh --prepare here first and carry .device" >&2; exit 1; }
BUILD="${UNITER_DEVICE_BUILD:-/tmp/uniter-device}"
WORK="${UNITER_DEVICE_WORK:-/tmp/uniter-device-work}"
mkdir -p "$WORK"
LOG="${OUT:-$WORK}/device-check.log"
exec > >(tee "$LOG") 2>&1
start=$(date +%s)
stamp() { echo "== $(( $(date +%s) - start )) s: $*"; }

if [ "$CPU" = 1 ]; then
  PY="${UNITER_DEVICE_PYTHON:-python3}"
  CUDA_VENV="${UNITER_CUDA_VENV:-$HOME/.cache/uniter/venv-cuda}"
  if "$CUDA_VENV/bin/python" -c 'import torch' 2>/dev/null; then
    TORCH_PREFIX="$("$CUDA_VENV/bin/python" -c 'import torch; print(torch.utils.cmake_prefix_path)')"
    TORCH_CUDA=ON
  else
    TORCH_PREFIX=/usr/lib/x86_64-linux-gnu/cmake
    TORCH_CUDA=OFF
  fi
  HAVE_NVCC=OFF
  if command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then HAVE_NVCC=ON; fi
  [ "$HAVE_NVCC" = ON ] || TORCH_CUDA=OFF
  JOBS="${JOBS:-2}"
  DEVICE_ARCH=90
  BENCH_ARGS=(--device cpu --make-weights --narrow --weights "$WORK/narrow.caffemodel"
              --batches 1,2 --precisions fp32,bf16 --channels-last 0,1 --images-per-config 2)
  CMAKE_EXTRA=(-DCMAKE_CUDA_COMPILER="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)")
else
  PY=python3
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  TORCH_PREFIX="$($PY -c 'import torch; print(torch.utils.cmake_prefix_path)')"
  TORCH_CUDA=ON
  HAVE_NVCC=ON
  JOBS="$(nproc)"
  # SASS for this machine's GPU only (nvcc time is device time); the CUDA test
  # build (scripts/test-cuda.sh) proves every architecture of the list.
  CAP="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')"
  DEVICE_ARCH="${CAP:-90}"
  BENCH_ARGS=(--device cuda:0 --make-weights --weights "$WORK/full.caffemodel"
              --batches 1,4,8 --precisions fp32,fp16,bf16 --channels-last 0,1 --images-per-config 32)
  CMAKE_EXTRA=(-DCMAKE_CUDA_COMPILER="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)")
fi
echo "torch prefix: $TORCH_PREFIX (CUDA LibTorch: $TORCH_CUDA, nvcc: $HAVE_NVCC)"

stamp configure
cmake -S scripts/device -B "$BUILD" -G Ninja -DCMAKE_PREFIX_PATH="$TORCH_PREFIX" -DDEVICE_DIR="$DEV" \
  -DUNITER_DEVICE_CUDA="$HAVE_NVCC" -DUNITER_DEVICE_TORCH_CUDA="$TORCH_CUDA" -DUNITER_DEVICE_CUDA_ARCH="$DEVICE_ARCH" \
  -DTORCH_CUDA_ARCH_LIST="${DEVICE_ARCH%?}.${DEVICE_ARCH: -1}" \
  "${CMAKE_EXTRA[@]}" >"$WORK/configure.log" 2>&1 || { cat "$WORK/configure.log"; exit 1; }
stamp build
cmake --build "$BUILD" -j "$JOBS"
# A failed CUDA op test fails the check, and so does one skipped for want of a
# CUDA device on the GPU machine; the benchmark still runs so one call gives
# both answers.
status=0
if [ "$HAVE_NVCC" = ON ]; then
  stamp CUDA op tests
  if [ ! -x "$BUILD/extractor_cuda_test" ]; then
    echo "device-check: extractor_cuda_test was not built (GoogleTest sources missing from .device?)"
    status=1
  elif ! "$BUILD/extractor_cuda_test" --gtest_brief=1 2>&1 | tee "$WORK/cuda_test.log"; then
    echo "device-check: CUDA op tests FAILED"
    status=1
  elif [ "$CPU" = 0 ] && grep -qE "no CUDA device|without UNITER_HAVE_CUDA" "$WORK/cuda_test.log"; then
    echo "device-check: CUDA op tests skipped on the GPU machine (no device or no CUDA build)"
    status=1
  fi
fi
stamp trainer device tests
# fp16/bf16 train steps and SDPA vs explicit on cuda:0 (skipped on the CPU run,
# where the fused-attention CPU test still runs against LibTorch >= 2).
if [ ! -x "$BUILD/trainer_gpu_test" ]; then
  echo "device-check: trainer_gpu_test was not built (GoogleTest sources missing from .device?)"
  status=1
elif ! "$BUILD/trainer_gpu_test" 2>&1 | tee "$WORK/trainer_gpu_test.log"; then
  echo "device-check: trainer GPU tests FAILED"
  status=1
elif [ "$CPU" = 0 ] && grep -q "no CUDA device" "$WORK/trainer_gpu_test.log"; then
  echo "device-check: trainer GPU tests skipped on the GPU machine (no device or no CUDA LibTorch)"
  status=1
fi
stamp trainer step benchmark
# UNITER-base NLVR2 paired-attn and VQA steps, ours vs the PyTorch restatement
# under torch.autocast, fp32/fp16/bf16 on cuda:0 (CPU run: one small fp32 pass).
if [ ! -x "$BUILD/trainer_step_bench" ]; then
  echo "device-check: trainer_step_bench was not built"
  status=1
else
  if [ "$CPU" = 1 ]; then step_runs=("none"); step_args=(--device cpu --threads 2 --steps 1 --warmup 0 --task vqa)
  else step_runs=(none fp16 bf16); step_args=(--device cuda --threads 4 --steps 10 --warmup 3); fi
  for amp in "${step_runs[@]}"; do
    if ! "$BUILD/trainer_step_bench" "${step_args[@]}" --amp "$amp" --python "$PY" \
        2>&1 | tee -a "${OUT:-$WORK}/trainer_step_bench.md"; then
      echo "device-check: trainer_step_bench --amp $amp FAILED"
      status=1
    fi
  done
fi
stamp pretrain step benchmark
# UNITER-base pretraining steps (mlm, mrfr, mrc, mrc-kl, itm + OT), ours vs
# pretrain_ref.py's restatement, at pretrain-indomain-base-8gpu.json's per-GPU
# 10,240-token batch under fp16 / bf16 autocast on cuda:0 (CPU run: one small fp32 pass).
if [ ! -x "$BUILD/pretrain_step_bench" ]; then
  echo "device-check: pretrain_step_bench was not built"
  status=1
else
  if [ "$CPU" = 1 ]; then pre_runs=("none"); pre_args=(--device cpu --threads 2 --steps 1 --warmup 0 --tokens 128 --task mlm,itm)
  else pre_runs=(fp16 bf16); pre_args=(--device cuda --threads 4 --steps 5 --warmup 2 --tokens 10240); fi
  for amp in "${pre_runs[@]}"; do
    if ! "$BUILD/pretrain_step_bench" "${pre_args[@]}" --amp "$amp" --python "$PY" --dir "$WORK/pretrain_step" \
        2>&1 | tee -a "${OUT:-$WORK}/pretrain_step_bench.md"; then
      echo "device-check: pretrain_step_bench --amp $amp FAILED"
      status=1
    fi
  done
fi
stamp preprocess
rm -rf "$WORK/blobs"
if [ "$CPU" = 1 ]; then
  # A few photos of one size (coco-mini's 640x480) and one other.
  "$PY" scripts/device/preprocess.py "$WORK/blobs" "$DEV"/images/000456.jpg \
    "$DEV"/images/000000018575.jpg "$DEV"/images/000000073326.jpg "$DEV"/images/000000106235.jpg
else
  "$PY" scripts/device/preprocess.py "$WORK/blobs" "$DEV"/images/*.jpg
fi
stamp benchmark
"$BUILD/extractor_device_bench" --prototxt "$DEV/test.prototxt" --images "$WORK/blobs" "${BENCH_ARGS[@]}" \
  --out "${OUT:-$WORK}/extractor_device_bench.md"
stamp "done (exit $status)"
exit $status
