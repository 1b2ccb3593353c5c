# The two commands of the README, and a few more.
#   make demo   install the demo's deps, build `uniter`, run the main job on generated data
#   make test   install every dep, build, run every test but `gpu` and `fuzz` (ctest),
#               then the CUDA build's tests (scripts/test-cuda.sh); time per label last
#   make fuzz   the libFuzzer targets, bounded time (ctest label fuzz)
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

.PHONY: all deps deps-demo deps-test configure build test test-cuda fuzz demo bench install clean

all: build

deps: deps-test
deps-demo:
	scripts/install-deps.sh demo
deps-test:
	scripts/install-deps.sh test

# The tree is configured with exactly CMAKE_FLAGS: when they differ from the
# last configure's (kept in $(BUILD)/.cmake-flags), cmake runs again on a fresh
# cache (the objects stay; ninja rebuilds only what the new flags change).
FLAGS_STAMP = $(BUILD)/.cmake-flags
define configure
	@if [ ! -f $(BUILD)/build.ninja ] || [ "$$(cat $(FLAGS_STAMP) 2>/dev/null)" != '$(CMAKE_FLAGS)' ]; then \
	  echo "configure: CMAKE_FLAGS='$(CMAKE_FLAGS)'"; \
	  rm -f $(BUILD)/CMakeCache.txt $(FLAGS_STAMP); \
	  cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS) && printf '%s' '$(CMAKE_FLAGS)' > $(FLAGS_STAMP); \
	fi
endef

configure:
	$(configure)

build: deps-test
	$(configure)
	cmake --build $(BUILD) -j $(JOBS)

# GPU tests carry the label `gpu` and run only where a GPU is (scripts/device-check.sh).
test: build
	rm -f $(BUILD)/ctest.log $(CUDA_BUILD)/ctest.log
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE '^(gpu|fuzz)$$' -O ctest.log $(CTEST_FLAGS)
	JOBS=$(JOBS) CMAKE_FLAGS='$(CMAKE_FLAGS)' CTEST_FLAGS='$(CTEST_FLAGS)' scripts/test-cuda.sh $(CUDA_BUILD)
	@for log in $(BUILD)/ctest.log $(CUDA_BUILD)/ctest.log; do \
	  [ -f $$log ] && { echo "== time per label: $$log"; sed -n '/^Label Time Summary:/,/^$$/p' $$log | sed 1d; }; \
	done; true

# The CUDA build alone (says why and skips without nvcc or the torch venv;
# fails instead under CI=true).
test-cuda: deps-test
	JOBS=$(JOBS) CMAKE_FLAGS='$(CMAKE_FLAGS)' CTEST_FLAGS='$(CTEST_FLAGS)' scripts/test-cuda.sh $(CUDA_BUILD)

fuzz: build
	cmake --build $(BUILD) --target fuzz

# The demo builds the `uniter` binary and its LibTorch plugin (the pipeline
# command): no test references, no CUDA torch.
demo: deps-demo
	$(configure)
	cmake --build $(BUILD) -j $(JOBS) --target uniter uniter_torch_commands
	scripts/demo.sh $(BUILD)

bench: build
	scripts/bench.sh $(BUILD)

# PREFIX=/usr/local: headers, libraries, the `uniter` binary and the CMake
# package (find_package(uniter)).
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(CUDA_BUILD)
