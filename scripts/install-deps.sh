#!/usr/bin/env bash
# Installs what uniter-cpp needs on Debian 12, and is cheap to run again:
# apt-get only when a package is missing, pip only when the venv lacks a
# pinned package. Nothing is downloaded from anywhere but Debian's archive and
# PyPI. Two profiles:
#
#   scripts/install-deps.sh demo   # build + what `make demo` runs (~1 GB of
#                                  # Debian packages; nothing from PyPI: the demo
#                                  # generates its data in C++, `uniter pipeline demo`)
#   scripts/install-deps.sh test   # (default) + the test references: Python
#                                  # packages, clang for the fuzzers, and where
#                                  # nvcc is, PyPI's CUDA torch (about 3.5 GB)
#                                  # for the CUDA build tree
#   UNITER_VENV=DIR UNITER_CUDA_VENV=DIR UNITER_CUDA_TORCH=0 (no CUDA torch)
set -euo pipefail
PROFILE="${1:-test}"
case "$PROFILE" in
  demo|test) ;;
  *) echo "usage: scripts/install-deps.sh [demo|test]" >&2; exit 2 ;;
esac

APT_PACKAGES=(
  # build (gtest: the configure step finds it; the tests are part of the tree)
  build-essential cmake ninja-build ccache pkg-config git libgtest-dev
  # tokenizer
  libicu-dev libtbb-dev libsentencepiece-dev
  # featdb
  liblmdb-dev liblz4-dev libmsgpack-cxx-dev libzip-dev zlib1g-dev libzstd-dev libdeflate-dev
  libprotobuf-dev protobuf-compiler
  # converters, CLI
  libcli11-dev nlohmann-json3-dev libsimdjson-dev
  # extractor, trainer (CPU LibTorch; the CUDA one comes from a Python torch)
  libtorch-dev libopencv-dev
  # gloo's headers for LibTorch's ProcessGroupGloo (multi-process training on the CPU)
  libgloo-dev
  # an optimized BLAS: libtorch1.13 links libblas.so.3, which is netlib's reference
  # BLAS (20x slower matmuls) unless an optimized one provides the alternative
  libopenblas0-pthread
)
APT_TEST_PACKAGES=(
  # the Python references' venv and the pure-Python dependencies of the PyPI
  # tokenizers (Debian's, so pinned by the release)
  python3 python3-venv python3-numpy python3-yaml python3-certifi python3-idna
  # the fuzzers (libFuzzer), spm_train/spm_encode, mdb_dump
  clang libclang-rt-14-dev sentencepiece lmdb-utils
  # the reference BLAS: `uniter --version` must name it when it is the one loaded
  libblas3
  # the Python side of the references: UNITER's loaders use these; the
  # pure-Python dependencies of the PyPI references come from Debian too
  python3-lmdb python3-msgpack python3-msgpack-numpy python3-lz4
  python3-torch python3-torchvision python3-pil
  python3-requests python3-urllib3 python3-dateutil
  python3-zstandard  # python/uniter_featdb reads zstd payloads of native img_dbs
  chromium  # the pipeline test opens report.html headless (--dump-dom, --screenshot)
)

# PyPI packages (test profile), each pinned to an exact version, with their
# dependencies that Debian does not provide (pinned too: nothing floats).
PIP_PACKAGES=()  # the demo profile's: none
PIP_TEST_PACKAGES=(
  "tokenizers==0.22.1"              # HF tokenizers (Rust core): a speed peer and reference
  "huggingface_hub==1.33.0" "hf-xet==1.8.0" "httpx==0.28.1" "httpcore==1.0.9" "h11==0.16.0"
  "anyio==4.16.0" "click==8.5.1" "filelock==4.3.1" "fsspec==2026.9.0" "packaging==26.4"
  "tqdm==4.70.1" "typing_extensions==4.16.0"
  "pytorch-pretrained-bert==0.6.2"  # the tokenizer UNITER pins
  "flash-tokenizer==1.2.0"          # C++ LinMaxMatch: the other speed peer
  # pytorch-pretrained-bert's imports
  "boto3==1.44.8" "botocore==1.44.8" "s3transfer==0.19.3" "jmespath==1.1.0" "regex==2026.11.19"
  # TensorBoard's own event reader checks the trainer's event files
  "tensorboard==2.21.0" "tensorboard-data-server==0.7.2" "protobuf==7.36.2" "grpcio==1.85.3"
  "absl-py==2.5.1" "Markdown==3.11.3" "MarkupSafe==3.0.4" "Werkzeug==3.1.9"
)
if [ "$PROFILE" = test ]; then
  APT_PACKAGES+=("${APT_TEST_PACKAGES[@]}")
  PIP_PACKAGES+=("${PIP_TEST_PACKAGES[@]}")
fi

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
if [ "$PROFILE" = demo ]; then
  echo "install-deps: demo profile: no Python venv (scripts/install-deps.sh test adds it)"
else
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
fi

# The CUDA LibTorch for the second build tree (make test's build-cuda): PyPI's
# torch wheel, in a venv of its own without system site packages so Debian's
# torch 1.13 cannot shadow it. Test profile only; skipped where nvcc is
# missing (nothing to build the kernels with); UNITER_CUDA_TORCH=0 skips it too.
# torch pins its CUDA wheels (nvidia-*, triton) to exact versions itself.
CUDA_VENV="${UNITER_CUDA_VENV:-$HOME/.cache/uniter/venv-cuda}"
CUDA_TORCH_VERSION="2.11.0"
# cuobjdump for the test that the kernels hold every architecture's cubin
# (minimal CUDA installs lack it; the oldest CUDA 13 one on PyPI).
CUDA_CUOBJDUMP="nvidia-cuda-cuobjdump==13.2.51"
if [ "$PROFILE" = demo ]; then
  echo "install-deps: demo profile: no CUDA LibTorch venv (scripts/install-deps.sh test adds it)"
elif [ "${UNITER_CUDA_TORCH:-1}" = 0 ]; then
  echo "install-deps: UNITER_CUDA_TORCH=0: no CUDA LibTorch venv"
elif ! command -v nvcc >/dev/null && [ ! -x /usr/local/cuda/bin/nvcc ]; then
  echo "install-deps: no nvcc (PATH, /usr/local/cuda/bin): no CUDA LibTorch venv"
elif "$CUDA_VENV/bin/python" -c "import sys, importlib.metadata as m
sys.exit(m.version('torch').split('+')[0] != '$CUDA_TORCH_VERSION' or
         m.version('nvidia-cuda-cuobjdump') != '${CUDA_CUOBJDUMP#*==}')" 2>/dev/null &&
     ls "$CUDA_VENV"/lib/python3*/site-packages/torch/share/cmake/Torch/TorchConfig.cmake \
        "$CUDA_VENV"/lib/python3*/site-packages/torch/lib/libtorch_cuda.so >/dev/null 2>&1; then
  # The installed version from its metadata: importing torch takes seconds.
  echo "install-deps: ok (CUDA LibTorch venv $CUDA_VENV)"
else
  echo "install-deps: pip install torch==$CUDA_TORCH_VERSION $CUDA_CUOBJDUMP into $CUDA_VENV (about 3.5 GB)"
  mkdir -p "$(dirname "$CUDA_VENV")"
  [ -x "$CUDA_VENV/bin/python" ] || /usr/bin/python3 -m venv "$CUDA_VENV"
  "$CUDA_VENV/bin/python" -m pip install -q --disable-pip-version-check "torch==$CUDA_TORCH_VERSION" \
    "$CUDA_CUOBJDUMP"
fi
# transformers, the reference for the trainer's BertModel parity test
# (tests/trainer; test profile only), in a venv of its own: it sees Debian's
# torch 1.13 and numpy (system site packages), and its pinned tokenizers cannot
# move the main venv's. transformers 4.30.2 is the last line that still accepts
# torch 1.13.
HF_VENV="${UNITER_HF_VENV:-$HOME/.cache/uniter/venv-hf}"
HF_TRANSFORMERS_VERSION="4.30.2"
if [ "$PROFILE" != test ]; then
  :
elif "$HF_VENV/bin/python" -c "import sys, importlib.metadata as m
sys.exit(m.version('transformers') != '$HF_TRANSFORMERS_VERSION')" 2>/dev/null; then
  echo "install-deps: ok (transformers venv $HF_VENV)"
else
  echo "install-deps: pip install transformers==$HF_TRANSFORMERS_VERSION into $HF_VENV"
  [ -x "$HF_VENV/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$HF_VENV"
  "$HF_VENV/bin/python" -m pip install -q --disable-pip-version-check "transformers==$HF_TRANSFORMERS_VERSION"
fi
echo "install-deps: ok ($PROFILE profile, venv $VENV)"
