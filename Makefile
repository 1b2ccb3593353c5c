# The two commands of the README, and a few more.
#   make demo   install deps, build, run the main job on generated data
#   make test   install deps, build, run every test (ctest)
BUILD ?= build
CMAKE_FLAGS ?=
CTEST_FLAGS ?=
JOBS ?= $(shell nproc)
# Paths relative to the checkout in ccache's hashes: every clone (CI's fresh
# ones too) shares one cache.
export CCACHE_BASEDIR ?= $(CURDIR)

.PHONY: all deps configure build test demo bench clean

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

demo: build
	scripts/demo.sh $(BUILD)

bench: build
	scripts/bench.sh $(BUILD)

clean:
	rm -rf $(BUILD)
