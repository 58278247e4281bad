# bndrop: build, test and demo. `make test` is the one test command (CI runs it); `make demo` runs the
# article's experiments and writes report/.
SHELL := /bin/bash
CONFIG ?= release
SWIFT ?= swift
# SCRATCH=.build-NAME gives a separate build folder (two builds at once, e.g. sanitizers).
SWIFTPM := $(SWIFT) build -c $(CONFIG) $(if $(SCRATCH),--scratch-path $(SCRATCH))
BUILD_DIR := $(shell $(SWIFTPM) --show-bin-path 2>/dev/null)
LIB := $(BUILD_DIR)/libbndrop.so
CC ?= gcc
CXX ?= g++
CFLAGS := -std=c11 -O2 -Wall -Wextra -Werror -pedantic -Iinclude
LDFLAGS := -L$(BUILD_DIR) -Wl,-rpath,$(BUILD_DIR) -lbndrop
GOLDEN_DIR ?= $(abspath ../shared/golden)
OUT := .build/c

# Debian packages the project needs: OpenBLAS (GEMM), zlib (gzip IDX files), cJSON (the C golden
# tests read JSON), Fashion-MNIST (default data), gnuplot (plots).
APT_PACKAGES := libopenblas-dev zlib1g-dev libcjson-dev dataset-fashion-mnist gnuplot-nox
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps build test swift-test c-test header-test examples run-examples demo clean

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

swift-test: build
	BNDROP_GOLDEN_DIR=$(GOLDEN_DIR) $(SWIFT) test -c $(CONFIG) $(if $(SCRATCH),--scratch-path $(SCRATCH))

# The whole suite: Swift tests (golden cases, gradient checks), the C ABI tests, the header compiled as
# C and C++, and the examples in their short mode.
test: swift-test c-test header-test run-examples

clean:
	rm -rf .build report
