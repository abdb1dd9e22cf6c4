# rtc-voice developer tasks. On a fresh machine: `make demo` and `make test` do all set-up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install check test bench demo format clean config-example

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "rtc-voice needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

check: install
	$(BIN)/ruff check cli tests bench
	$(BIN)/ruff format --check cli tests bench
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix cli tests bench
	$(BIN)/ruff format cli tests bench

test: install
	@bash .ci/audio-setup || echo "make test: could not install virtual audio; device tests will be skipped (in CI they fail)" >&2
	$(BIN)/python -m pytest

bench: install
	@bash .ci/audio-setup || true
	@for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python -m tests.pulse $(BIN)/python $$script || exit 1; done

demo: install
	@command -v espeak-ng >/dev/null || echo "make demo: install espeak-ng for spoken replies (beeps otherwise)" >&2
	@if $(BIN)/rtc-voice devices --json >/dev/null 2>&1; then out=""; \
	  else out="--output none"; echo "make demo: no speaker found, replies are not played" >&2; fi; \
	  $(BIN)/rtc-voice talk --local --input cli/rtc_voice/data/hello.wav $$out

config-example: install
	$(BIN)/python -c 'from rtc_voice.config import example_toml; open("config.example.toml", "w").write(example_toml())'

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build cli/*.egg-info
