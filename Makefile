# bndrop: build, test and demo. `make test` is the one test command (CI runs it); `make demo` runs the
# article's experiments and writes report/.
SHELL := /bin/bash
CONFIG ?= release
SWIFT ?= swift
# SCRATCH=.build-NAME gives a separate build folder (two builds at once, e.g. sanitizers).
SWIFTPM := $(SWIFT) build -c $(CONFIG) $(if $(SCRATCH),--scratch-path $(SCRATCH))
# Without a toolchain on PATH (e.g. `sudo make install`, whose PATH rarely has it), the folder SwiftPM
# builds into by default.
HAVE_SWIFT := $(shell command -v $(SWIFT) 2>/dev/null)
BUILD_DIR := $(or $(shell $(SWIFTPM) --show-bin-path 2>/dev/null),$(CURDIR)/$(or $(SCRATCH),.build)/$(CONFIG))
LIB := $(BUILD_DIR)/libbndrop.so
# The version is written once, in include/bndrop.h (BND_VERSION_MAJOR/MINOR/PATCH); the soname carries
# the major version (Package.swift's -soname flag; `make install-test` checks that the two agree).
version_part = $(shell awk '$$2 == "BND_VERSION_$(1)" { print $$3 }' include/bndrop.h)
VERSION_MAJOR := $(call version_part,MAJOR)
VERSION := $(VERSION_MAJOR).$(call version_part,MINOR).$(call version_part,PATCH)
SONAME := libbndrop.so.$(VERSION_MAJOR)
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
# a golden network's JSON), Fashion-MNIST (default data), gnuplot (plots); numpy, pytest and pip (with
# setuptools and wheel, to test `pip install` offline) for Debian's python3, which runs the Python
# binding's tests (python-test); SIMDe (header-only AVX-512 emulation: kernel-isa-test runs the
# AVX-512 kernels with it on CPUs without AVX-512).
APT_PACKAGES := libopenblas-dev zlib1g-dev libcjson-dev dataset-fashion-mnist gnuplot-nox \
                python3-numpy python3-pytest python3-pip python3-venv libsimde-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps build test swift-test c-test header-test checkpoint-test kernel-isa-test python-test examples run-examples demo \
	clean bench bench-program bench-test bench-pixel-cost install uninstall install-test

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

# Programs linked against the build folder's libbndrop.so record its soname, libbndrop.so.0: the
# link beside it lets them find the library at run time (SwiftPM names the file libbndrop.so).
build: deps
	$(SWIFTPM)
	ln -sfn libbndrop.so $(BUILD_DIR)/$(SONAME)

$(OUT):
	mkdir -p $(OUT)

# --disable-testable-imports (the tests use the public API only) builds the library exactly as
# `swift build` does, so `make demo` after `make test` compiles nothing again.
swift-test: build
	BNDROP_GOLDEN_DIR=$(GOLDEN_DIR) BNDROP_SAFETENSORS_DIR=$(SAFETENSORS_DIR) $(SWIFT) test -c $(CONFIG) --disable-testable-imports $(if $(SCRATCH),--scratch-path $(SCRATCH))

# The whole suite: Swift tests (every golden case through the Swift API and through the C ABI, IDX
# files, gradient checks, checkpoints), the C ABI tests, the header compiled as C and C++, the checkpoint
# format against numpy / safetensors, the kernels built for each instruction set, the examples in their
# short mode, the Python binding's tests, and an install into a temporary prefix, used without the
# toolchain.
test: swift-test c-test header-test checkpoint-test kernel-isa-test run-examples bench-test python-test install-test

# The C ABI: the tests (one golden network, the table of bad calls, threads, allocations, API and data
# checks) linked with plain gcc against include/bndrop.h and libbndrop.so; then the exported symbols
# must be exactly the functions the header declares (bnd_* only). The C programs are relinked every
# time: they are quick to build, and $(OUT) is shared by all SCRATCH folders while each binary's rpath
# names one of them. Last, the program checks the statuses the header documents against those its tests
# produced (Tests/C/test_status_table.c): BNDROP_HEADER_PATH names the header it reads.
C_TEST_SRC := $(wildcard Tests/C/test_*.c)

c-test: build | $(OUT)
	$(CC) $(CFLAGS) -pthread -DBNDROP_HEADER_PATH='"$(abspath include/bndrop.h)"' -o $(OUT)/test_capi $(C_TEST_SRC) \
	  $(LDFLAGS) -lcjson -lopenblas -lm
	BNDROP_SAFETENSORS_DIR=$(SAFETENSORS_DIR) $(OUT)/test_capi $(GOLDEN_DIR)
	bash Tests/C/check_exports.sh $(LIB) include/bndrop.h

# The header alone, as C11 and as C++ (extern "C"), warnings as errors; the C one is also linked and
# run (one call). That the exports are exactly the declared functions is check_exports.sh's job.
header-test: build | $(OUT)
	$(CC) $(CFLAGS) -o $(OUT)/header_test_c Tests/C/header_test.c $(LDFLAGS)
	$(CXX) -std=c++17 -O2 -Wall -Wextra -Werror -pedantic -Iinclude -c -o $(OUT)/header_test_cpp.o Tests/C/header_test.cpp
	$(CXX) -std=c++11 -Wall -Wextra -Werror -pedantic -Iinclude -fsyntax-only Tests/C/header_test.cpp
	$(OUT)/header_test_c

# The kernels (Sources/BNDropKernels) built as the library builds them and once per instruction set
# (baseline x86-64, AVX2, AVX-512, and AVX-512 emulated on AVX2 through SIMDe, which runs on any
# x86-64 CPU with AVX2), each run on fixed inputs against scalar references, and their
# results compared bit for bit (Tests/kernels/isa_check.sh): the library ships all those clones, but a
# machine loads one. With the toolchain's clang, as SwiftPM compiles them.
KERNEL_CC ?= $(TOOLCHAIN_BIN)/clang
# The C flags of a build whose kernels take the AVX-512 code paths on AVX2, the AVX-512 intrinsics
# emulated (isa_check.sh's avx512_emulated build, and the whole library in test-avx512-emulated below).
EMULATED_AVX512_CFLAGS := -DBNDK_NO_CLONES -DBNDK_EMULATED_AVX512 -march=x86-64-v3 \
                          -I$(abspath Tests/kernels/emulated_avx512) -Wno-psabi

kernel-isa-test: | $(OUT)
	bash Tests/kernels/isa_check.sh $(KERNEL_CC) $(OUT)/isa "$(EMULATED_AVX512_CFLAGS)"

# The Python binding (bindings/python: ctypes over libbndrop.so) and its pytest suite: every golden case
# through Python, the error classes, training, datasets, state_dict, pip install into a venv. It runs
# with Debian's python3, whose numpy and pytest `make deps` installs (python3-numpy, python3-pytest), so a
# fresh machine needs nothing else; PYTHON_TEST=... picks another interpreter that has numpy and pytest.
# BNDROP_LIBRARY makes it test this build, never an installed libbndrop.
PYTHON_TEST ?= /usr/bin/python3

python-test: build
	BNDROP_LIBRARY=$(LIB) BNDROP_GOLDEN_DIR=$(GOLDEN_DIR) BNDROP_SAFETENSORS_DIR=$(SAFETENSORS_DIR) $(PYTHON_TEST) -m pytest -p no:cacheprovider -rs bindings/python/tests

# bndrop's checkpoints against numpy's reading of the safetensors format, and against the safetensors
# package when it is installed (skipped with a message otherwise); the library through ctypes, with the
# same interpreter as python-test.
checkpoint-test: build
	$(PYTHON_TEST) Tests/checkpoint/check_safetensors.py $(LIB)

EXAMPLES := $(patsubst examples/%.c,%,$(wildcard examples/*.c))
# The article's three experiments (C programs over libbndrop.so); the dropout one also in Swift.
EXPERIMENTS := batchnorm_mlp batchnorm_cnn dropout_regression
DATA ?= /usr/share/datasets/fashion-mnist
DATASET_NAME ?= $(if $(filter /usr/share/datasets/fashion-mnist,$(DATA)),Fashion-MNIST,$(DATA))
REPORT ?= report
SHORT_REPORT := $(OUT)/short-report
# `make demo EPOCHS=N BATCH=N`: the epochs and batch size of the two BatchNorm experiments, the ones
# on DATA (default: the article's 2 and 512), e.g. more, smaller steps for a small dataset.
# DROPOUT_EPOCHS / DROPOUT_BATCH: the same for the dropout experiment on its 50 generated points
# (default: 1000 epochs, all 50 points per step). Each program validates its values.
EPOCHS ?=
BATCH ?=
DROPOUT_EPOCHS ?=
DROPOUT_BATCH ?=
count_flags = $(if $(1),--epochs $(1)) $(if $(2),--batch-size $(2))

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
	$(BUILD_DIR)/DropoutExperiment --short --data $(DATA) --out $(OUT)/short-swift
	set -e; for f in dropout.json dropout_loss.csv dropout_fit.csv dropout_uncertainty.csv dropout_points.csv dropout_settings.csv; do \
	  cmp $(SHORT_REPORT)/data/$$f $(OUT)/short-swift/$$f && echo "C and Swift agree on $$f"; done
	$(OUT)/dropout_regression --epochs 120 --batch-size 16 --seed 3 --out $(OUT)/flags-c
	$(BUILD_DIR)/DropoutExperiment --epochs 120 --batch-size 16 --seed 3 --out $(OUT)/flags-swift
	set -e; for f in dropout.json dropout_loss.csv dropout_fit.csv dropout_uncertainty.csv dropout_settings.csv; do \
	  cmp $(OUT)/flags-c/$$f $(OUT)/flags-swift/$$f; done; echo "C and Swift agree with --epochs 120 --batch-size 16"
	@# Bad --epochs / --batch-size / --seed values: exit status 2 and a message naming the flag, in C and Swift.
	@set -e; for p in $(OUT)/batchnorm_mlp $(OUT)/batchnorm_cnn $(OUT)/dropout_regression $(BUILD_DIR)/DropoutExperiment; do \
	  for bad in "--epochs 0" "--epochs -2" "--batch-size 1.5" "--batch-size x" "--epochs 1000001" "--epochs" \
	    "--seed -1" "--seed 1x" "--seed 18446744073709551616" "--seed"; do \
	    status=0; $$p --out $(OUT)/bad-flags $$bad 2>$(OUT)/bad-flags.err || status=$$?; \
	    if [ $$status != 2 ] || ! grep -q -- "$${bad%% *}" $(OUT)/bad-flags.err; then \
	      echo "$$p $$bad: status $$status, expected 2 and a message:"; cat $(OUT)/bad-flags.err; exit 1; fi; \
	  done; done; echo "bad --epochs / --batch-size / --seed values refused (status 2) by the 3 experiments and the Swift twin"
	@# A loss that did not fall (one epoch logs one row only): exit 1 with --short, a warning and exit 0
	@# otherwise, in C and Swift.
	@set -e; for p in $(OUT)/dropout_regression $(BUILD_DIR)/DropoutExperiment; do \
	  status=0; $$p --short --epochs 1 --out $(OUT)/one-epoch >/dev/null 2>$(OUT)/one-epoch.err || status=$$?; \
	  if [ $$status != 1 ] || ! grep -q "did not fall" $(OUT)/one-epoch.err; then echo "$$p --short --epochs 1: status $$status, expected 1"; exit 1; fi; \
	  status=0; $$p --epochs 1 --out $(OUT)/one-epoch >/dev/null 2>$(OUT)/one-epoch.err || status=$$?; \
	  if [ $$status != 0 ] || ! grep -q "warning: a training loss did not fall" $(OUT)/one-epoch.err; then \
	    echo "$$p --epochs 1: status $$status, expected 0 and a warning"; cat $(OUT)/one-epoch.err; exit 1; fi; \
	done; echo "a loss that did not fall: an error with --short, a warning otherwise (C and Swift)"
	@# make demo is all or nothing: a run whose last experiment fails (a bad --epochs) after the others
	@# wrote their files leaves the last report as it was.
	@rm -rf $(OUT)/kept-report $(OUT)/kept-report.partial && mkdir -p $(OUT)/kept-report/data && echo kept > $(OUT)/kept-report/index.html
	@if $(MAKE) --no-print-directory demo REPORT=$(OUT)/kept-report EPOCHS=1 DROPOUT_EPOCHS=0 >$(OUT)/kept-report.log 2>&1; then \
	  echo "make demo succeeded with DROPOUT_EPOCHS=0"; exit 1; fi
	@grep -qx kept $(OUT)/kept-report/index.html && [ -z "$$(ls $(OUT)/kept-report/data)" ] \
	  && echo "a failed make demo left the last report untouched" || { echo "a failed make demo changed the last report"; exit 1; }
	bash examples/report/build_report.sh $(SHORT_REPORT) "$(DATASET_NAME) (short run)" 0
	python3 Tests/report/check_summary.py $(SHORT_REPORT)

# The article's experiments on the full data: report/index.html, plots, CSVs and summary.json.
# All or nothing: the run writes into $(REPORT).partial and replaces $(REPORT) only once every
# experiment and the report succeeded, so a failed run leaves the last report whole.
demo: examples
	@rm -rf $(REPORT).partial && mkdir -p $(REPORT).partial/data
	@start=$$(date +%s.%N); set -e; \
	for e in $(EXPERIMENTS); do \
	  case $$e in dropout_*) flags="$(call count_flags,$(DROPOUT_EPOCHS),$(DROPOUT_BATCH))";; \
	    *) flags="$(call count_flags,$(EPOCHS),$(BATCH))";; esac; \
	  $(OUT)/$$e --data $(DATA) --out $(REPORT).partial/data $$flags; done; \
	seconds=$$(awk -v a=$$start -v b=$$(date +%s.%N) 'BEGIN { printf "%.1f", b - a }'); \
	bash examples/report/build_report.sh $(REPORT).partial "$(DATASET_NAME)" $$seconds > /dev/null
	@rm -rf $(REPORT).old; if [ -e $(REPORT) ]; then mv $(REPORT) $(REPORT).old; fi
	@mv $(REPORT).partial $(REPORT) && rm -rf $(REPORT).old
	@echo "open $(REPORT)/index.html"

# Benchmark against PyTorch (bench/bench.c over the C ABI): prints one table, writes
# bench/results.json. Not part of `make test`. The PyTorch column needs `python3 -c "import torch"`.
TORCH_BENCH ?= $(abspath ../shared/bench/torch_seed_bench.py)
PYTHON ?= python3
BENCH_ARGS ?=
bench: bench-program
	$(OUT)/bench --data $(DATA) --torch-script $(TORCH_BENCH) --python $(PYTHON) --json bench/results.json $(BENCH_ARGS)

# The bench program, for both targets below (relinked every time, as the C tests are).
bench-program: build | $(OUT)
	$(CC) $(CFLAGS) -o $(OUT)/bench bench/bench.c $(LDFLAGS) -ldl -lm

# The cost of one nonzero pixel in a zero-skipping 784 -> 48 layer (bench/pixel_cost.c, AVX2 CPUs):
# the measurement behind PERFORMANCE.md's "The target out of reach". Prints, asserts nothing.
bench-pixel-cost: | $(OUT)
	$(CC) $(CFLAGS) -mavx2 -mfma -o $(OUT)/pixel_cost bench/pixel_cost.c
	$(OUT)/pixel_cost

# The bench builds and runs (part of `make test`): two quick workloads once each, without PyTorch; its
# table, the MLP-BN inference floor under it and its JSON must come out. Times are printed, never
# checked.
BENCH_SMOKE := $(OUT)/bench-smoke
bench-test: bench-program
	$(OUT)/bench --data $(DATA) --no-torch --reps 1 --only bn1d,mlp_bn_eval --json $(BENCH_SMOKE).json > $(BENCH_SMOKE).log
	grep -q '^MLP-BN inference 10k' $(BENCH_SMOKE).log && grep -q 'zero-skipping floor: [0-9]' $(BENCH_SMOKE).log \
	  && grep -q '"fma_peak_gflops": [0-9]' $(BENCH_SMOKE).json && grep -q '"bn1d"' $(BENCH_SMOKE).json \
	  && grep -q '"bndrop_slow_phase_rounds": [0-9]' $(BENCH_SMOKE).json \
	  || { cat $(BENCH_SMOKE).log; echo "bench-test: the bench's table, floor, JSON or slow-phase count is missing"; exit 1; }
	@echo "bench-test: the bench built and ran ($(BENCH_SMOKE).log)"

# Install: the library as libbndrop.so.X.Y.Z with the links libbndrop.so.X (its soname, what programs
# load) and libbndrop.so (what `-lbndrop` finds), the header, and bndrop.pc for pkg-config.
# `make install PREFIX=...`; DESTDIR=... stages the files under another root. The library has the Swift
# runtime linked in: at run time it needs libc, libstdc++, libgcc_s, libm, zlib and, loaded at its first
# matrix product, OpenBLAS (Debian's libopenblas0). `make uninstall` with the same variables removes
# those files again (directories stay: they may hold other files).
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
INSTALL ?= install
LDCONFIG ?= ldconfig
# A real install by root (no DESTDIR) also refreshes the loader's cache; LDCONFIG= skips that.
run_ldconfig = $(if $(LDCONFIG),$(if $(DESTDIR),,@if [ "$$(id -u)" = 0 ]; then $(LDCONFIG); fi))
INSTALLED := $(addprefix $(DESTDIR)$(LIBDIR)/,libbndrop.so.$(VERSION) $(SONAME) libbndrop.so) \
	$(DESTDIR)$(INCLUDEDIR)/bndrop.h $(DESTDIR)$(PKGCONFIGDIR)/bndrop.pc

# `make && sudo make install`: install builds first when the toolchain is on PATH, else it installs what
# `make` built (and says so when nothing was).
install: $(if $(HAVE_SWIFT),build) | $(OUT)
	@test -f $(LIB) || { echo "install: no $(LIB); run make (with the Swift toolchain on PATH) first" >&2; exit 1; }
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))' \
	  'includedir=$(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))' '' 'Name: bndrop' \
	  'Description: Neural networks with batch normalization and dropout, numerically interchangeable with PyTorch (C API)' \
	  'Version: $(VERSION)' 'Libs: -L$${libdir} -lbndrop' 'Cflags: -I$${includedir}' > $(OUT)/bndrop.pc
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR)
	$(INSTALL) -m 0755 $(LIB) $(DESTDIR)$(LIBDIR)/libbndrop.so.$(VERSION)
	ln -sfn libbndrop.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sfn $(SONAME) $(DESTDIR)$(LIBDIR)/libbndrop.so
	$(INSTALL) -m 0644 include/bndrop.h $(DESTDIR)$(INCLUDEDIR)/bndrop.h
	$(INSTALL) -m 0644 $(OUT)/bndrop.pc $(DESTDIR)$(PKGCONFIGDIR)/bndrop.pc
	$(run_ldconfig)

uninstall:
	rm -f $(INSTALLED)
	$(run_ldconfig)

# Installs into a temporary DESTDIR, builds a C program there with pkg-config, runs it with a clean
# environment and the Swift toolchain's runtime folder hidden, then uninstalls (Tests/install/).
install-test: build
	bash Tests/install/install_test.sh "$(MAKE)" "$(SWIFT)" $(VERSION)

clean:
	rm -rf .build report

# ============================== Sanitizers, valgrind, fuzzing (issue 10) ==============================
# Not part of `make test` (see `check-all` and TESTING.md, "Sanitizers and fuzzing"): each builds its own
# instrumented debug library in its own scratch folder (.build-asan, .build-tsan; a cold build takes
# minutes) and programs compiled with the Swift toolchain's clang, whose sanitizer runtimes are the
# ones swiftc links against (gcc's libasan would be a second, conflicting runtime).
TOOLCHAIN_BIN ?= $(patsubst %/,%,$(dir $(realpath $(shell command -v $(SWIFT)))))
SAN_CC ?= $(TOOLCHAIN_BIN)/clang
SAN_OUT := .build/c-san
ASAN_SCRATCH ?= .build-asan
TSAN_SCRATCH ?= .build-tsan
ASAN_BUILD := $(ASAN_SCRATCH)/debug
TSAN_BUILD := $(TSAN_SCRATCH)/debug
# The library's own product flags (-static-stdlib, lld, the version script) link with both sanitizers.
SWIFT_SAN_BUILD = $(SWIFT) build -c debug --product bndrop --sanitize=$(1) --scratch-path $(2) $(3)
SAN_CFLAGS := -std=c11 -O1 -g -fno-omit-frame-pointer -Wall -Wextra -Werror -Iinclude
ASAN_CFLAGS := $(SAN_CFLAGS) -fsanitize=address,undefined -fno-sanitize-recover=undefined
asan_ldflags = -fuse-ld=lld -L$(ASAN_BUILD) -Wl,-rpath,$(abspath $(ASAN_BUILD)) -lbndrop
# Any report fails the run: ASan and UBSan abort, LeakSanitizer (on by default with ASan) exits non-zero.
# Set only for the sanitizer targets (target-specific exports), so `make test` is unaffected.
SAN_TARGETS := test-asan test-tsan test-tsan-pool fuzz-smoke
# allocator_may_return_null: a malloc that cannot be served returns NULL, as glibc's does, so the C
# tests' out-of-memory rows (Tests/C/test_oom.c) check the same statuses under ASan.
$(SAN_TARGETS): export ASAN_OPTIONS ?= detect_leaks=1:abort_on_error=1:strict_string_checks=1:check_initialization_order=1:allocator_may_return_null=1
$(SAN_TARGETS): export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1
$(SAN_TARGETS): export TSAN_OPTIONS ?= halt_on_error=1:second_deadlock_stack=1
$(SAN_TARGETS): export ASAN_SYMBOLIZER_PATH ?= $(TOOLCHAIN_BIN)/llvm-symbolizer
# The C test program without test_alloc.c (it interposes malloc, as ASan does): a stub takes its place.
SAN_TEST_SRC := $(filter-out Tests/C/test_alloc.c,$(C_TEST_SRC)) $(SAN_OUT)/no_alloc_tests.c

.PHONY: asan-build tsan-build test-asan test-tsan test-tsan-pool test-valgrind fuzz-build fuzz-smoke check-all

$(SAN_OUT):
	mkdir -p $(SAN_OUT)

$(SAN_OUT)/no_alloc_tests.c: | $(SAN_OUT)
	echo '/* test_alloc.c left out of sanitizer runs: it interposes malloc. */ void run_alloc_tests(void) {}' > $@

# The ASan library also carries SanitizerCoverage (edge counters, PC table, comparison tracing), so that
# the fuzzers see coverage inside the Swift code; without a fuzzer the ASan runtime's no-op hooks apply.
ASAN_SWIFTFLAGS ?= -Xswiftc -sanitize-coverage=edge,pc-table,inline-8bit-counters,trace-cmp
asan-build:
	$(call SWIFT_SAN_BUILD,address,$(ASAN_SCRATCH),$(ASAN_SWIFTFLAGS))
	ln -sfn libbndrop.so $(ASAN_BUILD)/$(SONAME)

# The C ABI tests and the C examples' short runs, all under ASan + UBSan (C code) on an ASan library,
# and the Swift dropout experiment's short run built with ASan (the Swift API without the C layer).
test-asan: asan-build $(SAN_OUT)/no_alloc_tests.c
	$(SAN_CC) $(ASAN_CFLAGS) -pthread -o $(SAN_OUT)/test_capi_asan $(SAN_TEST_SRC) $(asan_ldflags) -lcjson -lopenblas -lm
	BNDROP_SAFETENSORS_DIR=$(SAFETENSORS_DIR) $(SAN_OUT)/test_capi_asan $(GOLDEN_DIR)
	set -e; for e in $(EXAMPLES); do $(SAN_CC) $(ASAN_CFLAGS) -o $(SAN_OUT)/$$e-asan examples/$$e.c $(asan_ldflags) -lm; done
	$(SAN_OUT)/bn_mlp-asan --short
	set -e; for e in $(EXPERIMENTS); do echo "== $$e --short (ASan)"; \
	  $(SAN_OUT)/$$e-asan --short --data $(DATA) --out $(SAN_OUT)/asan-report/data; done
	$(SWIFT) build -c debug --product DropoutExperiment --sanitize=address --scratch-path $(ASAN_SCRATCH) $(ASAN_SWIFTFLAGS)
	echo "== DropoutExperiment --short (Swift API, ASan)"; \
	  $(ASAN_BUILD)/DropoutExperiment --short --out $(SAN_OUT)/asan-report/swift
	@echo "test-asan: no ASan, UBSan or leak report"

tsan-build:
	$(call SWIFT_SAN_BUILD,thread,$(TSAN_SCRATCH),)
	ln -sfn libbndrop.so $(TSAN_BUILD)/$(SONAME)

# Tests/C/stress_threads.c (worker threads training, saving and loading their own nets; one thread on
# error paths; one changing the thread count) under ThreadSanitizer, on a TSan library. The program
# needs the toolchain's libdispatch and BlocksRuntime (the TSan Swift runtime's dependencies).
# fuzz/tsan.supp suppresses one class of false report, swift_once's (the file says why); any other
# report fails.
TSAN_ROUNDS ?= 10
test-tsan: tsan-build | $(SAN_OUT)
	$(SAN_CC) $(SAN_CFLAGS) -pedantic -fsanitize=thread -pthread -o $(SAN_OUT)/stress_threads_tsan Tests/C/stress_threads.c \
	  -fuse-ld=lld -L$(TSAN_BUILD) -Wl,-rpath,$(abspath $(TSAN_BUILD)) -lbndrop \
	  -L$(TOOLCHAIN_BIN)/../lib/swift/linux -Wl,-rpath,$(abspath $(TOOLCHAIN_BIN)/../lib/swift/linux) -ldispatch -lBlocksRuntime
	TSAN_OPTIONS="$$TSAN_OPTIONS:suppressions=$(abspath fuzz/tsan.supp)" $(SAN_OUT)/stress_threads_tsan $(TSAN_ROUNDS)
	@echo "test-tsan: no ThreadSanitizer report"

# The regression run for the thread-pool race TSan found (fuzz/findings/tsan-threadpool-taskcount.txt:
# a worker finishing a region read the next region's task count from a plain variable; fixed by keeping
# the count in the atomic claim word). Timing decides whether TSan can see such a race, so it runs
# TSAN_POOL_TRIES times the 30-round stress and --pool-regions (back-to-back pool regions).
TSAN_POOL_TRIES ?= 5
test-tsan-pool: test-tsan
	set -e; for i in $$(seq $(TSAN_POOL_TRIES)); do echo "== try $$i"; \
	  TSAN_OPTIONS="$$TSAN_OPTIONS:suppressions=$(abspath fuzz/tsan.supp)" $(SAN_OUT)/stress_threads_tsan 30; \
	  TSAN_OPTIONS="$$TSAN_OPTIONS:suppressions=$(abspath fuzz/tsan.supp)" $(SAN_OUT)/stress_threads_tsan --pool-regions 500; done

# libFuzzer targets (fuzz/fuzz_*.c), linked with the toolchain's clang and lld against the ASan library.
FUZZ_TARGETS := $(patsubst fuzz/fuzz_%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_OUT := .build/fuzz
FUZZ_SECONDS ?= 20
fuzz-build: asan-build
	mkdir -p $(FUZZ_OUT)
	set -e; for t in $(FUZZ_TARGETS); do \
	  $(SAN_CC) $(SAN_CFLAGS) -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -o $(FUZZ_OUT)/fuzz_$$t \
	    fuzz/fuzz_$$t.c $(asan_ldflags) -lz -lm; done

# Each fuzz target FUZZ_SECONDS (20) seconds from its committed corpus (fuzz/run.sh); a crash fails.
fuzz-smoke: fuzz-build
	set -e; for t in $(FUZZ_TARGETS); do FUZZ_NO_BUILD=1 bash fuzz/run.sh $$t $(FUZZ_SECONDS); done

# valgrind memcheck on the C ABI test program (minus test_alloc.c: its malloc would bypass valgrind's),
# linked against a copy of the release library without debug info: valgrind 3.19 cannot read the
# DWARF 5 of the lld-linked library. Any error fails (--error-exitcode); leaks are listed, "definitely
# lost" ones fail. The out-of-memory group is skipped (BNDROP_TEST_SKIP_OOM=1): each of its rows is a child
# process filling hundreds of MiB, for minutes under valgrind; make test and make test-asan run it. The
# fork group is skipped too (BNDROP_TEST_FORK_ROUNDS=0): valgrind runs one thread at a time, and the
# forking thread's wait for the other threads' region starved them (no progress in 15 minutes).
VALGRIND ?= valgrind
VALGRIND_DIR := $(SAN_OUT)/valgrind-lib
test-valgrind: build $(SAN_OUT)/no_alloc_tests.c
	mkdir -p $(VALGRIND_DIR)
	objcopy --strip-debug $(LIB) $(VALGRIND_DIR)/libbndrop.so
	ln -sfn libbndrop.so $(VALGRIND_DIR)/$(SONAME)
	$(CC) $(CFLAGS) -g -pthread -o $(SAN_OUT)/test_capi_valgrind $(SAN_TEST_SRC) -L$(VALGRIND_DIR) \
	  -Wl,-rpath,$(abspath $(VALGRIND_DIR)) -lbndrop -lcjson -lopenblas -lm
	BNDROP_TEST_SKIP_OOM=1 BNDROP_TEST_FORK_ROUNDS=0 BNDROP_SAFETENSORS_DIR=$(SAFETENSORS_DIR) $(VALGRIND) --tool=memcheck --error-exitcode=99 \
	  --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
	  $(SAN_OUT)/test_capi_valgrind $(GOLDEN_DIR)
	@echo "test-valgrind: no memcheck error"

# ============================== The AVX-512 code paths on a CPU without AVX-512 ==============================
# The whole library built with its kernels for AVX2 and linear.c's AVX-512 code on emulated intrinsics
# (Tests/kernels/emulated_avx512, as kernel-isa-test's avx512_emulated build), in its own scratch folder,
# then the C ABI suite (every golden case included) and the Swift tests (determinism across thread
# counts included) against it: the Swift code's AVX-512 choices (the sparse product through a ReLU in
# blocks, groups of 128 rows) run here too, on a CPU without AVX-512. Not part of `make test` (a second
# release build and test build take about 5 minutes cold); check-all runs it.
EMULATED_SCRATCH ?= .build-avx512-emulated
EMULATED_BUILD := $(EMULATED_SCRATCH)/release
EMULATED_AVX512_FLAGS := $(addprefix -Xcc ,$(EMULATED_AVX512_CFLAGS))

.PHONY: test-avx512-emulated
test-avx512-emulated: deps | $(OUT)
	$(SWIFT) build -c release --product bndrop --scratch-path $(EMULATED_SCRATCH) $(EMULATED_AVX512_FLAGS)
	ln -sfn libbndrop.so $(EMULATED_BUILD)/$(SONAME)
	@grep -q avx512-emulated $(EMULATED_BUILD)/libbndrop.so || { echo "test-avx512-emulated: the library was not built with the emulation"; exit 1; }
	$(CC) $(CFLAGS) -pthread -DBNDROP_HEADER_PATH='"$(abspath include/bndrop.h)"' -o $(OUT)/test_capi_avx512_emulated \
	  $(C_TEST_SRC) -L$(EMULATED_BUILD) -Wl,-rpath,$(abspath $(EMULATED_BUILD)) -lbndrop -lcjson -lopenblas -lm
	BNDROP_SAFETENSORS_DIR=$(SAFETENSORS_DIR) $(OUT)/test_capi_avx512_emulated $(GOLDEN_DIR)
	BNDROP_GOLDEN_DIR=$(GOLDEN_DIR) BNDROP_SAFETENSORS_DIR=$(SAFETENSORS_DIR) $(SWIFT) test -c release \
	  --disable-testable-imports --scratch-path $(EMULATED_SCRATCH) $(EMULATED_AVX512_FLAGS)
	@echo "test-avx512-emulated: the C ABI and Swift suites passed on the AVX-512 code paths (emulated)"

# Everything: `make test`, then the sanitizer, valgrind and fuzzing runs and the emulated AVX-512 paths.
# Not in `make test` (CI): the two instrumented library builds take minutes when cold, the ASan runs of
# the examples and valgrind a few minutes more, the fuzzers' 20 s each add a minute, and the emulated
# build about 5 minutes; together several times make test's few minutes.
check-all: test test-asan test-tsan test-tsan-pool test-valgrind fuzz-smoke test-avx512-emulated
	@echo "check-all: make test, ASan+UBSan, TSan (with the pool regression runs), valgrind, the fuzz smoke runs and the emulated AVX-512 paths all passed"
