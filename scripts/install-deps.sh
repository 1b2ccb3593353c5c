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
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-14-dev
  # the Python side of the references: UNITER's loaders use these
  python3 python3-venv python3-lmdb python3-msgpack python3-msgpack-numpy python3-lz4 python3-numpy
  python3-torch python3-torchvision
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
echo "install-deps: ok (venv $VENV)"
