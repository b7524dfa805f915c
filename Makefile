# Convenience entry points; the build itself is CMake (see CMakeLists.txt).
#   make demo   installs what is missing, builds, generates the demo assets, renders demo.mp4
#   make test   installs what is missing, builds, runs the whole test suite (what CI runs)
#   make test-sanitize  the test suite under AddressSanitizer + UBSan
#   make bench  builds with optimisation and runs the benchmarks (not part of the tests)
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: all deps build demo test test-sanitize bench clean

all: build

deps:
	scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j$(JOBS)

demo: build
	$(BUILD)/lipsync render --avatar $(BUILD)/avatars/demo --audio $(BUILD)/demo/sentence.wav --out demo.mp4
	@echo "wrote demo.mp4"

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# The same suite built with AddressSanitizer + UndefinedBehaviorSanitizer (CI runs it after `test`).
test-sanitize: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLS_SANITIZE=ON
	cmake --build build-asan -j$(JOBS)
	cd build-asan && ctest --output-on-failure -j$(JOBS)

bench: deps
	cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release
	cmake --build build-bench -j$(JOBS) --target lipsync_core lipsync lipsyncd models demo_avatar bench_all
	bench/run.sh build-bench

clean:
	rm -rf $(BUILD) build-asan build-bench
