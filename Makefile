# frameflow quick start (Debian 12, as root): ./quickstart demo | test, which
# installs make when it is missing, then runs one of these:
#   make demo   install missing Debian packages, build, run the demo site
#   make test   install missing Debian packages, build, run every test
#               (and a short run of every fuzz target, built with clang)
# fresh: the two quick-start commands on a new minimal Debian 12 root made by
#   debootstrap (downloads a whole root; not part of test; tests/machine/fresh.sh).
# Other targets: build, deps, unit, sanitize, format, clean, chaos (RELIABILITY.md),
#   bench (run every benchmark, regenerate BENCHMARKS.md), bench-quick (smoke run, < 2 min),
#   fuzz (every fuzz target for FUZZ_SECONDS each, default 600; tests/fuzz/README.md).

BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CTEST_ARGS ?=
# The libFuzzer targets (tests/fuzz): clang-14 with ASan and UBSan.
FUZZ_DIR ?= build-fuzz
FUZZ_SECONDS ?= 600
FUZZ_TEST_SECONDS ?= 10

# Debian 12 packages frameflow builds and runs with.
DEB_PACKAGES := build-essential cmake pkg-config git \
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
  libsqlite3-dev sqlite3 libtomlplusplus-dev libspdlog-dev libfmt-dev libcli11-dev \
  nlohmann-json3-dev libcpp-httplib-dev libpng-dev libssl-dev libgtest-dev libgmock-dev \
  libseccomp-dev povray povray-includes blender clang-format clang-14 libclang-rt-14-dev \
  iproute2 nftables openssl

.PHONY: all deps build demo test unit sanitize format clean bench bench-quick chaos fuzz fuzz-build fresh

all: build

# Installs only what is missing; a no-op (no apt at all) when everything is there.
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root (or install: $$missing)"; exit 1; fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: deps $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j $(JOBS)

demo: build
	./$(BUILD_DIR)/frameflow demo

test: build fuzz-build
	cd $(BUILD_DIR) && ctest --output-on-failure --timeout 900 $(CTEST_ARGS)
	cd $(FUZZ_DIR) && FRAMEFLOW_FUZZ_SECONDS=$(FUZZ_TEST_SECONDS) ctest --output-on-failure -j $(JOBS) -L fuzz

unit: build
	cd $(BUILD_DIR) && ctest --output-on-failure -L unit $(CTEST_ARGS)

sanitize: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DFRAMEFLOW_SANITIZE=ON
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure --timeout 900 $(CTEST_ARGS)

# Chaos: rounds of real work on two sites while daemons are killed at random
# (tests/chaos/chaos_main.cc; RELIABILITY.md). CHAOS_SEED replays a run;
# a failing round prints its own --round-seed.
CHAOS_ROUNDS ?= 100
CHAOS_SEED ?= $(shell date +%s)
chaos: build
	./$(BUILD_DIR)/tests/chaos/frameflow-chaos --rounds $(CHAOS_ROUNDS) --seed $(CHAOS_SEED)

# Fuzzing (tests/fuzz/README.md): only the libraries the targets need, in
# their own build directory.
$(FUZZ_DIR)/CMakeCache.txt:
	CC=clang-14 CXX=clang++-14 cmake -S . -B $(FUZZ_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFRAMEFLOW_FUZZ=ON

fuzz-build: deps $(FUZZ_DIR)/CMakeCache.txt
	cmake --build $(FUZZ_DIR) -j $(JOBS)

fuzz: fuzz-build
	tests/fuzz/fuzz.sh $(FUZZ_DIR) $(FUZZ_SECONDS)

# Benchmarks: see bench/README.md. bench-quick prints only; it never rewrites BENCHMARKS.md.
bench: build
	bench/run.sh $(BUILD_DIR)

bench-quick: build
	bench/run.sh --quick $(BUILD_DIR)

# The README's quick start on a fresh minimal Debian 12 (debootstrap), in a chroot.
fresh:
	tests/machine/fresh.sh .

format:
	find src tests bench -name '*.cc' -o -name '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR) build-asan $(FUZZ_DIR)
