# Sfumato: every entry point a user or CI needs. `make help` lists them.
SHELL := /bin/bash
SWIFT ?= swift
CONFIG ?= release
SWIFT_BUILD_FLAGS := -c $(CONFIG)
BIN = $(shell $(SWIFT) build $(SWIFT_BUILD_FLAGS) --show-bin-path)/sfumato
VENV := .venv
PYTHON := $(VENV)/bin/python
APT_PACKAGES := libopenblas-dev liblapacke-dev libpng-dev pkg-config cmake

.PHONY: help deps check-deps build run test serve-check example fixtures venv doctor bench bench-compare verify-full verify-full-sd2 verify-full-sdxl clean vocab train-default-model evaluate-default-model install install-files uninstall fuzz fuzz-build soak

help:
	@echo "make run       build and draw sfumato.png with the embedded default model (first README command)"
	@echo "make test      build and run the test suite (second README command; CI runs it)"
	@echo "make serve-check  two sfumato serve behind a real nginx (deploy/nginx.conf) on loopback; needs nginx"
	@echo "make deps      install the Debian packages the build needs (as root)"
	@echo "make doctor    libraries found, OpenBLAS core and threads, measured sgemm GFLOP/s"
	@echo "make bench     operator benchmarks (not a test)"
	@echo "make fixtures  regenerate the PyTorch reference fixtures (creates $(VENV))"
	@echo "make verify-full  full-size SD 1.5 and SD 2.1 768-v (random weights): our networks and images vs PyTorch"
	@echo "make verify-full-sd2  only the SD 2.1 768-v part"
	@echo "make verify-full-sdxl  full-size SDXL (random weights, ~28 GB: folder and single file): networks, a 2-step 512x512 image, peak RSS (SDXL_ARGS=--reduced: small widths)"
	@echo "make bench-compare  full-size SD 1.5 speed and peak RSS: ours vs PyTorch and OpenVINO (BENCH_ARGS=...)"
	@echo "make install [PREFIX=/usr/local]  the binary, the default model and shell completions (make uninstall removes them)"
	@echo "make soak      200 generations in one process; resident memory must stay flat (not in CI)"
	@echo "make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS=...]  libFuzzer + AddressSanitizer on every input parser (not in CI)"

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

# The first README command: the embedded default model draws the README's picture offline.
run: build
	$(BIN) generate "a red circle on a blue background" --seed 0 --guidance-scale 5 --output sfumato.png

# Tests run optimised (the network fixtures are slow in debug builds); -enable-testing lets
# suites reach internal modules. One build serves the command-line smoke test and the suites.
TEST_FLAGS := -c $(CONFIG) -Xswiftc -enable-testing
test: check-deps vocab
	$(SWIFT) build $(TEST_FLAGS) --build-tests
	Tests/cli-smoke.sh $$($(SWIFT) build $(TEST_FLAGS) --show-bin-path)/sfumato
	Tests/install-check.sh $$($(SWIFT) build $(TEST_FLAGS) --show-bin-path)/sfumato
	$(SWIFT) test $(TEST_FLAGS) --skip-build
	@$(MAKE) --no-print-directory example

# Examples/LibraryExample links Sfumato by path as a user's package would: built and run so docs/library.md cannot rot.
example:
	rm -rf .build/example-output && mkdir -p .build/example-output
	$(SWIFT) run -c $(CONFIG) --package-path Examples/LibraryExample LibraryExample Models/sfumato-shapes .build/example-output
	test -s .build/example-output/example-0.png && test -s .build/example-output/example-1.png

# Two `sfumato serve` behind nginx on loopback (docs/deploy.md); CI installs nginx and runs it after make test.
serve-check: check-deps
	$(SWIFT) build $(TEST_FLAGS) --product sfumato
	Tests/serve-check.sh $$($(SWIFT) build $(TEST_FLAGS) --show-bin-path)/sfumato

# The installed binary finds its default model in PREFIX/share/sfumato (no source tree needed).
PREFIX ?= /usr/local
install: build
	@$(MAKE) --no-print-directory install-files PREFIX="$(PREFIX)" BIN="$(BIN)"
install-files:
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/sfumato \
	    $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions \
	    $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/sfumato
	rm -rf $(DESTDIR)$(PREFIX)/share/sfumato/sfumato-shapes
	cp -R Models/sfumato-shapes $(DESTDIR)$(PREFIX)/share/sfumato/sfumato-shapes
	$(BIN) --generate-completion-script bash >$(DESTDIR)$(PREFIX)/share/bash-completion/completions/sfumato
	$(BIN) --generate-completion-script zsh >$(DESTDIR)$(PREFIX)/share/zsh/site-functions/_sfumato
	$(BIN) --generate-completion-script fish >$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/sfumato.fish

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/bin/sfumato $(DESTDIR)$(PREFIX)/share/sfumato \
	    $(DESTDIR)$(PREFIX)/share/bash-completion/completions/sfumato $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_sfumato \
	    $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/sfumato.fish

doctor: build
	$(BIN) doctor

# Measured with OPENBLAS_CORETYPE unset (it can force slower kernels); PyTorch's rows come from
# the same shapes and threads when the reference venv exists (make venv).
bench: build
	env -u OPENBLAS_CORETYPE $(BIN) bench-ops
	@if [ -x $(PYTHON) ]; then $(PYTHON) Tests/Reference/bench_ops.py; else echo "(make venv for PyTorch's rows)"; fi

# Full-size SD 1.5 shapes with random weights (git-ignored .cache/sd15-random, ~9 GB): our
# networks against PyTorch, from the diffusers folder and from the single-file checkpoint.
verify-full: venv vocab build
	cd Tests/Reference && ../../$(PYTHON) verify_full.py
	$(BIN) verify --model .cache/sd15-random/diffusers --reference .cache/sd15-random/reference.safetensors
	$(BIN) verify --model .cache/sd15-random/sd15-random.safetensors --tokenizer .cache/sd15-random/diffusers/tokenizer \
	    --reference .cache/sd15-random/reference.safetensors
	for s in pndm euler-a; do $(BIN) generate "a photograph of an astronaut riding a horse" --negative-prompt blurry \
	    --model .cache/sd15-random/diffusers --scheduler $$s --steps 8 --seed 42 --width 256 --height 256 \
	    --output .cache/sd15-random/ours-$$s.png || exit 1; done
	$(BIN) img2img "a photograph of an astronaut riding a horse" --negative-prompt blurry --model .cache/sd15-random/diffusers \
	    --init-image .cache/sd15-random/init-256.png --strength 0.6 --scheduler euler-a --steps 8 --seed 42 \
	    --output .cache/sd15-random/ours-img2img.png
	cd Tests/Reference && ../../$(PYTHON) verify_full.py --compare
	@$(MAKE) --no-print-directory verify-full-sd2

# Full-size SD 2.1 768-v shapes with random weights (git-ignored .cache/sd21-random, ~11 GB): the text
# encoder, the UNet and the VAE against PyTorch, and a 3-step v-prediction image at 256x256, from the
# diffusers folder and from the single-file checkpoint (OpenCLIP names, fused in_proj).
SD21 := .cache/sd21-random
SD21_PROMPT := "a photograph of an astronaut riding a horse" --negative-prompt blurry --steps 3 --guidance-scale 7.5 \
    --seed 42 --width 256 --height 256
verify-full-sd2: venv vocab build
	cd Tests/Reference && ../../$(PYTHON) verify_full_sd2.py
	$(BIN) verify --model $(SD21)/diffusers --reference $(SD21)/reference.safetensors
	$(BIN) verify --model $(SD21)/sd21-random.safetensors --model-type sd2-768 --tokenizer $(SD21)/diffusers/tokenizer \
	    --reference $(SD21)/reference.safetensors
	$(BIN) generate $(SD21_PROMPT) --model $(SD21)/diffusers --output $(SD21)/ours-folder.png
	$(BIN) generate $(SD21_PROMPT) --model $(SD21)/sd21-random.safetensors --model-type sd2-768 \
	    --tokenizer $(SD21)/diffusers/tokenizer --output $(SD21)/ours-single.png
	cd Tests/Reference && ../../$(PYTHON) verify_full_sd2.py --compare

# Full-size SDXL base shapes with random weights (git-ignored .cache/sdxl-random, ~28 GB: folder and single file; not part of verify-full): both
# text encoders, one UNet step at 64x64 latents and the VAE against PyTorch, and a 2-step 512x512 image, from the diffusers
# folder and from the single-file (SGM) checkpoint read with the sdxl preset; peak resident memory of each run.
# SDXL_ARGS=--reduced runs the same on small widths (.cache/sdxl-reduced, the single file read with the folder's configs).
SDXL_ARGS ?=
ifeq ($(SDXL_ARGS),--reduced)
SDXL := .cache/sdxl-reduced
SDXL_SINGLE := --model-config $(SDXL)/diffusers
else
SDXL := .cache/sdxl-random
SDXL_SINGLE := --model-type sdxl
endif
SDXL_PROMPT := "a photograph of an astronaut riding a horse" --negative-prompt blurry --steps 2 --guidance-scale 5 \
    --seed 42 --width 512 --height 512
PEAK = /usr/bin/time -f "peak resident memory: %M KB"
verify-full-sdxl: venv vocab build
	cd Tests/Reference && ../../$(PYTHON) verify_full_sdxl.py $(SDXL_ARGS)
	$(PEAK) $(BIN) verify --model $(SDXL)/diffusers --reference $(SDXL)/reference.safetensors
	$(PEAK) $(BIN) verify --model $(SDXL)/sdxl-random.safetensors $(SDXL_SINGLE) --tokenizer $(SDXL)/diffusers/tokenizer \
	    --reference $(SDXL)/reference.safetensors
	$(PEAK) $(BIN) generate $(SDXL_PROMPT) --model $(SDXL)/diffusers --output $(SDXL)/ours-folder.png
	$(PEAK) $(BIN) generate $(SDXL_PROMPT) --model $(SDXL)/sdxl-random.safetensors $(SDXL_SINGLE) \
	    --tokenizer $(SDXL)/diffusers/tokenizer --output $(SDXL)/ours-single.png
	cd Tests/Reference && ../../$(PYTHON) verify_full_sdxl.py --compare $(SDXL_ARGS)

# Full-size SD 1.5 (random weights) timed side by side: ours, PyTorch/diffusers fp32, OpenVINO f32 and
# OpenVINO's default precision, one process each, interleaved rounds. ~9 min at 512x512 on 2 cores
# (+5 min the first time: OpenVINO conversion, cached in .cache/openvino);
# quick look: make bench-compare BENCH_ARGS="--width 256 --height 256". Options: bench_compare.py --help.
SD15_RANDOM := .cache/sd15-random/diffusers
BENCH_ARGS ?=
bench-compare: venv vocab build $(SD15_RANDOM)/model_index.json
	$(PYTHON) Tests/Reference/bench_compare.py --sfumato $(BIN) $(BENCH_ARGS)

# Only the random-weight diffusers folder of verify-full (model_index.json is written last).
$(SD15_RANDOM)/model_index.json: | venv vocab
	cd Tests/Reference && ../../$(PYTHON) verify_full.py --model-only

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

fixtures: venv vocab
	@set -e; cd Tests/Reference; for script in fixtures_*.py; do echo "== $$script"; ../../$(PYTHON) $$script; done

clean:
	rm -rf .build

# The embedded default model Models/sfumato-shapes: trained from scratch on synthetic shapes, the
# step counts of the shipped export (55 minutes on 2 cores). Resumable: run it again after an interruption. Also writes docs/default-model-loss.png.
train-default-model:
	@test -x $(PYTHON) || $(MAKE) venv
	$(PYTHON) Models/train_shapes.py --vae-steps 1311 --unet-steps 2950 --minutes 120 --threads 2 --resume

# The default model's pass rate on the colour rule of Models/evaluate_shapes.py, swept over every
# colour/shape/background combination (make test checks a 48-case subset through Sfumato).
evaluate-default-model:
	@test -x $(PYTHON) || $(MAKE) venv
	$(PYTHON) Models/evaluate_shapes.py --all

# Tests/SfumatoTests/SoakTests.swift: 200 generations with the embedded model, resident memory after the
# 20th and the 200th within 5% (skipped by make test; a few minutes on 2 cores).
soak: check-deps
	$(SWIFT) build $(TEST_FLAGS) --build-tests
	SFUMATO_SOAK=1 $(SWIFT) test $(TEST_FLAGS) --skip-build --filter SoakTests

# libFuzzer with AddressSanitizer over everything that reads untrusted bytes (Tests/Fuzz/Targets), each
# target for FUZZ_SECONDS from its seeds in Tests/Fuzz/Corpus. Built apart in .build/fuzz (only our modules
# instrumented); what the fuzzer learns stays in .build/fuzz/corpus, crashes go to .build/fuzz/artifacts.
# A crash stops the run: keep the input as Tests/Fuzz/Corpus/TARGET/crash-NAME and add a test for the fix.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= safetensors json unet-config vae-config text-config scheduler-config taesd-config png tokenizer prompt \
    a1111-request openai-request
FUZZ_FLAGS ?= -timeout=20 -rss_limit_mb=3072 -print_final_stats=1
FUZZER_LIBRARY = $(firstword $(wildcard $(dir $(realpath $(shell command -v $(SWIFT))))../lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a))
FUZZ_BIN := .build/fuzz/release/sfumato-fuzz
fuzz-build: check-deps
	@test -n "$(FUZZER_LIBRARY)" || { echo "error: this Swift toolchain has no libclang_rt.fuzzer_no_main (libFuzzer)" >&2; exit 1; }
	SFUMATO_FUZZ=$(FUZZER_LIBRARY) $(SWIFT) build -c release --scratch-path .build/fuzz --product sfumato-fuzz
fuzz: fuzz-build
	@for target in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$target for $(FUZZ_SECONDS) s"; \
	  mkdir -p .build/fuzz/corpus/$$target .build/fuzz/artifacts/$$target; \
	  SFUMATO_FUZZ_TARGET=$$target $(FUZZ_BIN) $(FUZZ_FLAGS) -max_total_time=$(FUZZ_SECONDS) \
	      -artifact_prefix=.build/fuzz/artifacts/$$target/ .build/fuzz/corpus/$$target Tests/Fuzz/Corpus/$$target \
	      2>.build/fuzz/$$target.log || { tail -60 .build/fuzz/$$target.log; exit 1; }; \
	  grep -E "^stat::number_of_executed_units|^#[0-9]+ *DONE" .build/fuzz/$$target.log | tail -2; \
	done
