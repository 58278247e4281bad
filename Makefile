# bndrop: build, test and demo. `make test` is the one test command (CI runs it); `make demo` runs the
# article's experiments and writes report/.
SHELL := /bin/bash
CONFIG ?= release
SWIFT ?= swift
# SCRATCH=.build-NAME gives a separate build folder (two builds at once, e.g. sanitizers).
SWIFTPM := $(SWIFT) build -c $(CONFIG) $(if $(SCRATCH),--scratch-path $(SCRATCH))
BUILD_DIR := $(shell $(SWIFTPM) --show-bin-path 2>/dev/null)
LIB := $(BUILD_DIR)/libbndrop.so
# gcc and g++ unless the caller chose a compiler (make predefines CC=cc, so `?=` would never apply).
ifeq ($(origin CC),default)
CC := gcc
endif
ifeq ($(origin CXX),default)
CXX := g++
endif
CFLAGS := -std=c11 -O2 -Wall -Wextra -Werror -pedantic -Iinclude
LDFLAGS := -L$(BUILD_DIR) -Wl,-rpath,$(BUILD_DIR) -lbndrop
GOLDEN_DIR ?= $(abspath ../shared/golden)
# The checkpoints PyTorch wrote (safetensors), read by the checkpoint tests.
SAFETENSORS_DIR ?= $(abspath ../shared/fixtures/safetensors)
OUT := .build/c

# Debian packages the project needs: OpenBLAS (GEMM), zlib (gzip IDX files), cJSON (the C test reads
# a golden network's JSON), Fashion-MNIST (default data), gnuplot (plots).
APT_PACKAGES := libopenblas-dev zlib1g-dev libcjson-dev dataset-fashion-mnist gnuplot-nox
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps build test swift-test c-test header-test checkpoint-test examples run-examples demo clean bench

all: build

# Installs the missing Debian packages (apt-get, with sudo when not root); a no-op when all are there.
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFTPM)

$(OUT):
	mkdir -p $(OUT)

# --disable-testable-imports (the tests use the public API only) builds the library exactly as
# `swift build` does, so `make demo` after `make test` compiles nothing again.
swift-test: build
	BNDROP_GOLDEN_DIR=$(GOLDEN_DIR) BNDROP_SAFETENSORS_DIR=$(SAFETENSORS_DIR) $(SWIFT) test -c $(CONFIG) --disable-testable-imports $(if $(SCRATCH),--scratch-path $(SCRATCH))

# The whole suite: Swift tests (every golden case through the Swift API and through the C ABI, IDX
# files, gradient checks, checkpoints), the C ABI tests, the header compiled as C and C++, the checkpoint
# format against numpy / safetensors, and the examples in their short mode.
test: swift-test c-test header-test checkpoint-test run-examples

# The C ABI: the tests (one golden network, the table of bad calls, threads, allocations, API and data
# checks) linked with plain gcc against include/bndrop.h and libbndrop.so; then the exported symbols
# must be exactly the functions the header declares (bnd_* only). The C programs are relinked every
# time: they are quick to build, and $(OUT) is shared by all SCRATCH folders while each binary's rpath
# names one of them.
C_TEST_SRC := $(wildcard Tests/C/test_*.c)

c-test: build | $(OUT)
	$(CC) $(CFLAGS) -pthread -o $(OUT)/test_capi $(C_TEST_SRC) $(LDFLAGS) -lcjson -lopenblas -lm
	BNDROP_SAFETENSORS_DIR=$(SAFETENSORS_DIR) $(OUT)/test_capi $(GOLDEN_DIR)
	bash Tests/C/check_exports.sh $(LIB) include/bndrop.h

# The header alone, as C11 and as C++ (extern "C"), warnings as errors; the C one is also linked and
# run (one call). That the exports are exactly the declared functions is check_exports.sh's job.
header-test: build | $(OUT)
	$(CC) $(CFLAGS) -o $(OUT)/header_test_c Tests/C/header_test.c $(LDFLAGS)
	$(CXX) -std=c++17 -O2 -Wall -Wextra -Werror -pedantic -Iinclude -c -o $(OUT)/header_test_cpp.o Tests/C/header_test.cpp
	$(CXX) -std=c++11 -Wall -Wextra -Werror -pedantic -Iinclude -fsyntax-only Tests/C/header_test.cpp
	$(OUT)/header_test_c

# bndrop's checkpoints against numpy's reading of the safetensors format, and against the safetensors
# package when it is installed (skipped with a message otherwise); the library through ctypes.
checkpoint-test: build
	$(PYTHON) Tests/checkpoint/check_safetensors.py $(LIB)

EXAMPLES := $(patsubst examples/%.c,%,$(wildcard examples/*.c))
# The article's three experiments (C programs over libbndrop.so); the dropout one also in Swift.
EXPERIMENTS := batchnorm_mlp batchnorm_cnn dropout_regression
DATA ?= /usr/share/datasets/fashion-mnist
DATASET_NAME ?= $(if $(filter /usr/share/datasets/fashion-mnist,$(DATA)),Fashion-MNIST,$(DATA))
REPORT ?= report
SHORT_REPORT := $(OUT)/short-report

# Each example, compiled with plain $(CC) (gcc) against the header and libbndrop.so.
examples: build | $(OUT)
	set -e; for e in $(EXAMPLES); do $(CC) $(CFLAGS) -o $(OUT)/$$e examples/$$e.c $(LDFLAGS) -lm; done

# Each example in its short mode (an example exits non-zero when its loss did not fall); the Swift
# twin of the dropout experiment must write the same figures as the C one; the report is assembled
# from the short runs and its summary.json checked.
run-examples: examples
	$(OUT)/bn_mlp --short
	rm -rf $(SHORT_REPORT) $(OUT)/short-swift
	set -e; for e in $(EXPERIMENTS); do echo "== $$e --short"; $(OUT)/$$e --short --data $(DATA) --out $(SHORT_REPORT)/data; done
	$(BUILD_DIR)/DropoutExperiment --short --out $(OUT)/short-swift
	set -e; for f in dropout.json dropout_loss.csv dropout_fit.csv dropout_points.csv; do \
	  cmp $(SHORT_REPORT)/data/$$f $(OUT)/short-swift/$$f && echo "C and Swift agree on $$f"; done
	bash examples/report/build_report.sh $(SHORT_REPORT) "$(DATASET_NAME) (short run)" 0
	python3 Tests/report/check_summary.py $(SHORT_REPORT)

# The article's experiments on the full data: report/index.html, plots, CSVs and summary.json.
demo: examples
	@mkdir -p $(REPORT)/data
	@start=$$(date +%s.%N); set -e; \
	for e in $(EXPERIMENTS); do $(OUT)/$$e --data $(DATA) --out $(REPORT)/data; done; \
	seconds=$$(awk -v a=$$start -v b=$$(date +%s.%N) 'BEGIN { printf "%.1f", b - a }'); \
	bash examples/report/build_report.sh $(REPORT) "$(DATASET_NAME)" $$seconds
	@echo "open $(REPORT)/index.html"

# Benchmark against PyTorch (bench/bench.c over the C ABI): prints one table, writes
# bench/results.json. Not part of `make test`. The PyTorch column needs `python3 -c "import torch"`.
TORCH_BENCH ?= $(abspath ../shared/bench/torch_seed_bench.py)
PYTHON ?= python3
BENCH_ARGS ?=
bench: build | $(OUT)
	$(CC) $(CFLAGS) -o $(OUT)/bench bench/bench.c $(LDFLAGS) -ldl -lm
	$(OUT)/bench --data $(DATA) --torch-script $(TORCH_BENCH) --python $(PYTHON) --json bench/results.json $(BENCH_ARGS)

clean:
	rm -rf .build report
