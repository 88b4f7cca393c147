# The two commands: `make run` and `make test`. Both install missing Debian
# packages first (installer/debian-deps.sh), then configure and build with the
# CMake preset named by PRESET (release by default).
PRESET ?= release
# ccache hits across clones in other folders (CI builds a fresh clone).
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := true
# The tests' precompiled header (tests/support/test_pch.h) is cacheable only so.
export CCACHE_SLOPPINESS := pch_defines,time_macros
BUILD  := build/$(PRESET)
JOBS   ?= $(shell nproc)

.PHONY: all deps configure build apps run test test-package package bench clean fleet-demo soak fuzz

all: build

deps:
	@installer/debian-deps.sh

$(BUILD)/build.ninja: | deps
	cmake --preset $(PRESET)

configure: deps
	cmake --preset $(PRESET)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

# Just the programs (no test executables): what `make run` needs.
APPS := spillwayd spillctl spillway-bench spillway
apps: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS) --target $(APPS)

# The console when a display is available, else the headless engine.
run: apps
	@installer/run.sh $(BUILD)

# Three replicas, one Redis, simulated backends and nginx in front, on this
# machine (docs/fleet.md).
fleet-demo: apps
	@deploy/fleet-demo/fleet-demo.sh $(BUILD)

# The soak (docs/reliability.md): SOAK_MINUTES of the busy fleet at 70 %
# of capacity, RSS / open files / threads / queue / p99 sampled every 10 s
# into bench-results/soak.json and soak.png; fails on a leak or a drift.
SOAK_MINUTES ?= 60
soak: apps
	python3 tests/bench/soak.py --build $(BUILD) --minutes $(SOAK_MINUTES) --check --check-latency

# CI runs this: every suite, then TEST_FUZZ_SECONDS (15) of fuzzing per
# target. One CTest slot more than cores: the short soak (3 minutes of a
# fleet at 70 % of its capacity) mostly waits, and the slowest suites start
# first (their COST in tests/CMakeLists.txt).
TEST_FUZZ_SECONDS ?= 15
test: build
	@installer/sdk-deps.sh
	cd $(BUILD) && ctest --output-on-failure -j $$(( $(JOBS) + 1 )) --timeout 900
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(TEST_FUZZ_SECONDS)

# The fuzz targets (tests/fuzz, docs/reliability.md): a clang build with
# libFuzzer, ASan and UBSan in build/fuzz, then FUZZ_SECONDS of fuzzing per
# target; fails on any crash, leak, sanitizer report or broken property.
FUZZ_SECONDS ?= 30
fuzz: deps
	cmake --preset fuzz
	cmake --build --preset fuzz -j $(JOBS)
	cd build/fuzz && FUZZ_SECONDS=$(FUZZ_SECONDS) ctest --output-on-failure -L fuzz -j $(JOBS) \
	  --timeout $$(( $(FUZZ_SECONDS) + 600 ))

# The Debian packages (spillwayd, spillway-console) into $(BUILD)/packages.
package: build
	cd $(BUILD) && cpack -G DEB
	@ls -l $(BUILD)/packages/*.deb

# Only the package tests: the .debs' checks, the systemd unit, and the
# install into a fresh Debian 12 root plus the OCI image (installer/test-package.sh).
test-package: build
	cd $(BUILD) && ctest --output-on-failure -L package --timeout 900

# The benchmark suite (docs/benchmarks.md): direct vs spillwayd vs nginx on
# loopback; JSON and a markdown summary land in bench-results/.
bench: build
	python3 tests/bench/run_bench.py --build $(BUILD) --out bench-results

clean:
	rm -rf build
