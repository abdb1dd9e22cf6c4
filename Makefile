# rtc-voice developer tasks. On a fresh machine: `make demo` and `make test` do all set-up.
# `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev
LOWEST := .venv-lowest
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.DEFAULT_GOAL := help
.PHONY: help install install-dev check test lowest bench demo format clean config-example

help: ## Show this list
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "rtc-voice needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip

install: $(RUNTIME_STAMP) ## Install rtc-voice (runtime only) into .venv

$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) -e .
	touch $(RUNTIME_STAMP)

install-dev: $(DEV_STAMP) ## Install rtc-voice with the dev tools (pytest, ruff, mypy, openai)

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) -e '.[dev]'
	touch $(DEV_STAMP) $(RUNTIME_STAMP)

check: install-dev ## Lint, format check and strict type check
	$(BIN)/ruff check cli tests bench
	$(BIN)/ruff format --check cli tests bench
	$(BIN)/mypy

format: install-dev ## Fix lint and formatting in place
	$(BIN)/ruff check --fix cli tests bench
	$(BIN)/ruff format cli tests bench

test: install-dev ## Run the tests (they start their own private PulseAudio daemon)
	@bash .ci/audio-setup || echo "make test: could not install PortAudio/PulseAudio (see .ci/audio-setup); device tests will be skipped (in CI they fail)" >&2
	$(BIN)/python -m pytest

lowest: install-dev ## Smoke-test the lowest dependency versions pyproject.toml allows
	$(PIP) uv
	rm -rf $(LOWEST)
	$(BIN)/uv venv --quiet --python $(BIN)/python $(LOWEST)
	$(BIN)/uv pip install --quiet --python $(LOWEST)/bin/python --resolution lowest-direct .
	$(BIN)/python .ci/smoke.py $(LOWEST)/bin/rtc-voice

bench: install-dev ## Run the benchmarks (figures, with a stock baseline)
	@bash .ci/audio-setup || true
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python -m tests.pulse $(BIN)/python $$script || exit 1; done

demo: install ## Talk to the built-in local server, from a recorded question
	@command -v espeak-ng >/dev/null || echo "make demo: install espeak-ng for spoken replies (beeps otherwise)" >&2
	@if $(BIN)/rtc-voice devices --json >/dev/null 2>&1; then out=""; \
	  else out="--output none"; echo "make demo: no speaker found, replies are not played" >&2; fi; \
	  $(BIN)/rtc-voice talk --local --input cli/rtc_voice/data/hello.wav $$out

config-example: install ## Regenerate config.example.toml from the settings registry
	$(BIN)/python -c 'from rtc_voice.config import example_toml; open("config.example.toml", "w").write(example_toml())'

clean: ## Remove the virtual environments and caches
	rm -rf $(VENV) $(LOWEST) .pytest_cache .mypy_cache .ruff_cache build cli/*.egg-info
