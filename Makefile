# The two Quickstart commands: `make demo` (set up, index data/ with the offline model, search it) and
# `make test` (set up, run the whole test suite). Both need only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_INDEX := .lookalike/demo

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet -e ".[server,test,ray]"
	touch $(STAMP)

demo: install
	$(BIN)/lookalike index data --index $(DEMO_INDEX) --model efficientnet-lite2
	$(BIN)/lookalike search data/cat.jpg --index $(DEMO_INDEX) -k 3
	$(BIN)/lookalike find espresso --index $(DEMO_INDEX)
	$(BIN)/lookalike info --index $(DEMO_INDEX)

test: install
	$(BIN)/ruff check lookalike tests bench
	$(BIN)/pytest -q

# Every benchmark, by hand (about an hour on 2 cores); each rewrites its own section of docs/benchmarks.md.
bench: install
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python bench/embed.py
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/calibrate.py
	$(BIN)/python bench/everyday.py
	$(BIN)/python bench/serve.py
	$(BIN)/python bench/search.py
	$(BIN)/python bench/duplicates.py

clean:
	rm -rf $(VENV) .lookalike
