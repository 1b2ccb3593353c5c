#!/usr/bin/env bash
# Installs everything uniter-cpp needs to build and test on Debian 12, and is
# cheap to run again: apt-get only when a package is missing, pip only when the
# venv lacks a pinned reference. Nothing is downloaded from anywhere but
# Debian's archive and PyPI.
#
#   scripts/install-deps.sh            # build + test dependencies
#   UNITER_VENV=DIR scripts/install-deps.sh
set -euo pipefail

APT_PACKAGES=(
  # build
  build-essential cmake ninja-build ccache pkg-config git
  # tokenizer
  libicu-dev libtbb-dev libsentencepiece-dev sentencepiece
  # featdb
  liblmdb-dev lmdb-utils liblz4-dev libmsgpack-cxx-dev libzip-dev zlib1g-dev libzstd-dev libdeflate-dev
  libprotobuf-dev protobuf-compiler
  # converters, CLI
  libcli11-dev nlohmann-json3-dev libsimdjson-dev
  # extractor, trainer (CPU LibTorch; the CUDA one comes from a Python torch)
  libtorch-dev libopencv-dev
  # an optimized BLAS: libtorch1.13 links libblas.so.3, which is netlib's reference
  # BLAS (20x slower matmuls) unless an optimized one provides the alternative
  libopenblas0-pthread
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-14-dev
  # the Python side of the references: UNITER's loaders use these
  python3 python3-venv python3-lmdb python3-msgpack python3-msgpack-numpy python3-lz4 python3-numpy
  python3-torch python3-torchvision python3-pil
  python3-zstandard  # python/uniter_featdb reads zstd payloads of native img_dbs
)

# Pinned reference packages for the tests and benchmarks (PyPI).
PIP_PACKAGES=(
  "pytorch-pretrained-bert==0.6.2"  # the tokenizer UNITER pins
  "tokenizers==0.22.1"              # HF tokenizers (Rust core): the speed peer
  "flash-tokenizer==1.2.0"          # C++ LinMaxMatch: the other speed peer
  "boto3" "requests" "tqdm" "regex" # pytorch-pretrained-bert's imports
)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The venv sees Debian's python3-lmdb/msgpack/lz4/numpy/torch (system site
# packages) and adds the pinned PyPI references.
VENV="${UNITER_VENV:-$HOME/.cache/uniter/venv}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "install-deps: creating venv $VENV"
  mkdir -p "$(dirname "$VENV")"
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
stamp="$VENV/.uniter-pip-stamp"
want="$(printf '%s\n' "${PIP_PACKAGES[@]}")"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "install-deps: pip install into $VENV"
  "$VENV/bin/python" -m pip install -q "${PIP_PACKAGES[@]}"
  printf '%s' "$want" > "$stamp"
fi

# The CUDA LibTorch for the second build tree (make test's build-cuda): PyPI's
# torch wheel, in a venv of its own without system site packages so Debian's
# torch 1.13 cannot shadow it. Skipped where nvcc is missing (nothing to build
# the kernels with); UNITER_CUDA_TORCH=0 skips it too.
CUDA_VENV="${UNITER_CUDA_VENV:-$HOME/.cache/uniter/venv-cuda}"
CUDA_TORCH_VERSION="2.11.0"
if [ "${UNITER_CUDA_TORCH:-1}" = 0 ]; then
  echo "install-deps: UNITER_CUDA_TORCH=0: no CUDA LibTorch venv"
elif ! command -v nvcc >/dev/null && [ ! -x /usr/local/cuda/bin/nvcc ]; then
  echo "install-deps: no nvcc (PATH, /usr/local/cuda/bin): no CUDA LibTorch venv"
elif "$CUDA_VENV/bin/python" -c "import sys, importlib.metadata as m
sys.exit(m.version('torch').split('+')[0] != '$CUDA_TORCH_VERSION')" 2>/dev/null &&
     ls "$CUDA_VENV"/lib/python3*/site-packages/torch/share/cmake/Torch/TorchConfig.cmake \
        "$CUDA_VENV"/lib/python3*/site-packages/torch/lib/libtorch_cuda.so >/dev/null 2>&1; then
  # The installed version from its metadata: importing torch takes seconds.
  echo "install-deps: ok (CUDA LibTorch venv $CUDA_VENV)"
else
  echo "install-deps: pip install torch==$CUDA_TORCH_VERSION into $CUDA_VENV (about 3.5 GB)"
  mkdir -p "$(dirname "$CUDA_VENV")"
  [ -x "$CUDA_VENV/bin/python" ] || /usr/bin/python3 -m venv "$CUDA_VENV"
  "$CUDA_VENV/bin/python" -m pip install -q --disable-pip-version-check "torch==$CUDA_TORCH_VERSION"
fi
echo "install-deps: ok (venv $VENV)"
