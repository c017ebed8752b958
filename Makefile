# Streamline: `make run` and `make test` set everything up on a fresh Debian/Ubuntu machine.
SHELL := /bin/bash
SWIFT ?= swift
THREADS ?= $(shell nproc)
APT_PACKAGES := libhdf5-dev libopenblas-dev hdf5-tools pkg-config libyaml-dev python3 python3-venv python3-jsonschema python3-yaml
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN := .build/release/streamline

PYENV := .build/pyenv

.PHONY: deps pyenv build test run bench bench-peers torch clean slurm-deps slurm-test models testdata corpora fetch reference

## deps: install the system packages Streamline needs (quick no-op when they are there).
deps:
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
		echo "make deps: installing $(APT_PACKAGES)"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES); \
	fi
	@command -v $(SWIFT) >/dev/null || { echo "make deps: swift not found; install Swift 6 (https://swift.org/install)"; exit 1; }

## pyenv: the Python packages the export tests read our files with (gguf; numpy, safetensors and
## tokenizers for the HF consumer), in a venv under .build (quick no-op when there).
PY_PACKAGES := gguf numpy safetensors tokenizers
pyenv: deps
	@[ -x $(PYENV)/bin/python ] || python3 -m venv $(PYENV)
	@$(PYENV)/bin/python -c "import gguf, numpy, safetensors, tokenizers" 2>/dev/null || $(PYENV)/bin/pip install --quiet $(PY_PACKAGES)

## slurm-deps: install Debian's slurm-wlm and munge for the Slurm tests (quick no-op when there).
slurm-deps:
	scripts/slurm-local.sh install

## slurm-test: the Slurm suites; they start and stop one private two-node cluster themselves, and the
## executor tests submit jobs that run the debug `streamline` binary, so build it first.
slurm-test: deps slurm-deps
	$(SWIFT) build --product streamline
	$(SWIFT) test --filter Slurm

## build: release build of the streamline executable.
build: deps
	$(SWIFT) build -c release --product streamline

## test: every test suite. The CLI tests run the debug `streamline` binary and the SmolLM2 reference
## test runs the release one (a full 512-token window is too slow unoptimised), so build both first.
test: deps pyenv slurm-deps fetch build
	$(SWIFT) build --product streamline
	@# The tests' temporary folders go to one scratch folder, removed afterwards, so runs leave no trace in /tmp.
	@scratch=$$(mktemp -d "$${TMPDIR:-/tmp}/streamline-tests.XXXXXX") && \
	  TMPDIR="$$scratch" $(SWIFT) test; status=$$?; rm -rf "$$scratch"; exit $$status

## bench: engine benchmarks (tokens/s, GFLOP/s against raw cblas_sgemm and the FMA peak, per-op
## breakdown, KD step, peak memory).
bench: build models corpora
	$(BIN) bench engine --threads $(THREADS) --breakdown
	$(BIN) bench store --threads $(THREADS)
	$(BIN) bench pipeline
	$(BIN) bench tokenizer

## torch: Debian's python3-torch for /usr/bin/python3, the peer `bench peers` measures against
## (quick no-op when there).
torch:
	@if ! /usr/bin/python3 -c "import torch" >/dev/null 2>&1; then \
		echo "make torch: installing python3-torch"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-torch; \
	fi

## bench-peers: the engine shapes side by side with a minimal PyTorch LLaMA (same B, T, fp32 and
## threads), interleaved in one run; prints Streamline/PyTorch ratios per shape.
bench-peers: build torch
	$(BIN) bench peers --threads $(THREADS)

## run: the default job: the quickstart pipeline on SmolLM2-135M and Shakespeare (cached after the first run).
run: build models corpora
	$(BIN) run --spec Pipelines/quickstart.yaml --threads $(THREADS)

## models: SmolLM2-135M-Instruct (Q4_1 GGUF) into models/smollm2/, sha256-checked (quick when present).
models:
	@bash scripts/fetch-models.sh

## testdata: GPT-2 tokenizer reference vectors into third_party/llama.cpp/models/ (quick when present).
testdata:
	@bash scripts/fetch-testdata.sh

## corpora: Shakespeare, the King James Bible, the Python docs, the Debian Administrator's Handbook and
## 98 Wikipedia articles into data/ (quick when present).
corpora:
	@bash scripts/fetch-corpora.sh

## fetch: everything the tests need that is not in git.
fetch: models testdata corpora

## reference: re-run the independent Python SmolLM2 reference (numpy, gguf, tokenizers; ~6 min).
reference: models corpora
	python3 -m pip install --quiet numpy gguf tokenizers
	python3 scripts/reference/smollm2_perplexity.py --model models/smollm2/SmolLM2-135M-Instruct-Q4_1.gguf \
		--text data/shakespeare/tragedies/hamlet.md --windows 8 --window 512 \
		--out Tests/DataTests/Fixtures/smollm2-hamlet-reference.json

clean:
	rm -rf .build
