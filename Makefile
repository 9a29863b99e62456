# Sfumato: every entry point a user or CI needs. `make help` lists them.
SHELL := /bin/bash
SWIFT ?= swift
CONFIG ?= release
SWIFT_BUILD_FLAGS := -c $(CONFIG)
BIN = $(shell $(SWIFT) build $(SWIFT_BUILD_FLAGS) --show-bin-path)/sfumato
VENV := .venv
PYTHON := $(VENV)/bin/python
APT_PACKAGES := libopenblas-dev liblapacke-dev libpng-dev pkg-config cmake

.PHONY: help deps check-deps build run test fixtures venv doctor bench clean vocab train-default-model evaluate-default-model

help:
	@echo "make run       build and generate an image (first README command)"
	@echo "make test      build and run the test suite (second README command; CI runs it)"
	@echo "make deps      install the Debian packages the build needs (as root)"
	@echo "make doctor    libraries found, OpenBLAS core and threads, measured sgemm GFLOP/s"
	@echo "make bench     operator benchmarks (not a test)"
	@echo "make fixtures  regenerate the PyTorch reference fixtures (creates $(VENV))"

# Installs the Debian packages that are missing; a clear message when that needs root.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "error: missing Debian packages:$$missing; run as root: apt-get install$$missing" >&2; exit 1; fi; \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

check-deps: deps
	@cmake -S CMakeHelpers -B .build/cmake-deps -Wno-dev >.build-deps.log 2>&1 || { cat .build-deps.log >&2; rm -f .build-deps.log; exit 1; }; \
	grep -E -- '-- (BLAS|cblas|LAPACKE|PNG)' .build-deps.log; rm -f .build-deps.log

build: check-deps
	$(SWIFT) build $(SWIFT_BUILD_FLAGS)

run: build
	$(BIN) --help

test: check-deps vocab
	$(SWIFT) test $(SWIFT_BUILD_FLAGS)

doctor: build
	$(BIN) doctor

# The real CLIP BPE vocabulary (not committed): derived from the open-clip-torch wheel.
CLIP_VOCAB := .cache/clip-vocab
vocab: $(CLIP_VOCAB)/vocab.json
$(CLIP_VOCAB)/vocab.json:
	python3 -m pip download -q --no-deps open-clip-torch==3.3.0 -d .cache/wheels
	python3 Tests/Reference/make_clip_vocab.py .cache/wheels/open_clip_torch-3.3.0-py3-none-any.whl $(CLIP_VOCAB)

venv: $(VENV)/.installed
$(VENV)/.installed: Tests/Reference/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r Tests/Reference/requirements.txt
	touch $@

fixtures: venv
	@set -e; for script in Tests/Reference/fixtures_*.py; do echo "== $$script"; $(PYTHON) $$script; done

clean:
	rm -rf .build

# The embedded default model Models/sfumato-shapes: trained from scratch on synthetic shapes (about
# 90 minutes on 2 cores). Resumable: run it again after an interruption. Also writes docs/default-model-loss.png.
train-default-model:
	@test -x $(PYTHON) || $(MAKE) venv
	$(PYTHON) Models/train_shapes.py --minutes 90 --resume

# Pass rate of the default model on the colour rule of Models/evaluate_shapes.py.
evaluate-default-model:
	@test -x $(PYTHON) || $(MAKE) venv
	$(PYTHON) Models/evaluate_shapes.py
