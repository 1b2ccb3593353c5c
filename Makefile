# The two commands of the README, and a few more.
#   make demo   install deps, build, run the main job on generated data
#   make test   install deps, build, run every test (ctest)
BUILD ?= build
# The CUDA build (scripts/test-cuda.sh): a second tree against PyPI torch's
# CUDA LibTorch, compiled, linked and tested (on the CPU) wherever nvcc is.
CUDA_BUILD ?= build-cuda
CMAKE_FLAGS ?=
CTEST_FLAGS ?=
JOBS ?= $(shell nproc)
# Paths relative to the checkout in ccache's hashes: every clone (CI's fresh
# ones too) shares one cache.
export CCACHE_BASEDIR ?= $(CURDIR)

.PHONY: all deps configure build test test-cuda demo bench clean

all: build

deps:
	scripts/install-deps.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

configure: $(BUILD)/build.ninja

build: deps configure
	cmake --build $(BUILD) -j $(JOBS)

# GPU tests carry the label `gpu` and run only where a GPU is (scripts/device-check.sh).
test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE gpu $(CTEST_FLAGS)
	JOBS=$(JOBS) CMAKE_FLAGS='$(CMAKE_FLAGS)' CTEST_FLAGS='$(CTEST_FLAGS)' scripts/test-cuda.sh $(CUDA_BUILD)

# The CUDA build alone (says why and skips without nvcc or the torch venv).
test-cuda: deps
	JOBS=$(JOBS) CMAKE_FLAGS='$(CMAKE_FLAGS)' CTEST_FLAGS='$(CTEST_FLAGS)' scripts/test-cuda.sh $(CUDA_BUILD)

demo: build
	scripts/demo.sh $(BUILD)

bench: build
	scripts/bench.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(CUDA_BUILD)
