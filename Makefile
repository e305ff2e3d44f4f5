# The two Quickstart commands: `make demo` (set up; copy data/'s photos the way life does, index them
# with the originals, find each original from a copy, group the duplicates) and `make test` (set up,
# run the whole test suite). Both need only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_INDEX := .lookalike/demo
DEMO_PHOTOS := .lookalike/demo-photos
LOOKALIKE := $(BIN)/lookalike

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet -e ".[server,test,ray]"
	touch $(STAMP)

# Both scratch folders are made again on every run; data/ is only read.
demo: install
	@echo "# 1. Copies of data/'s photos as life makes them: smaller, cropped, turned, screenshotted"
	$(BIN)/python -m lookalike.demo data $(DEMO_PHOTOS)
	@echo "# 2. Index the originals and the copies (the offline model: no download)"
	rm -rf $(DEMO_INDEX)
	$(LOOKALIKE) index data $(DEMO_PHOTOS) --index $(DEMO_INDEX) --model efficientnet-lite2 --quiet
	@echo "# 3. Search with a screenshot of the cat: its original comes first"
	$(LOOKALIKE) search $(DEMO_PHOTOS)/cat-screenshot.jpg --index $(DEMO_INDEX) -k 3
	@echo "# 4. Find by what is in the picture: the labels came with the embeddings"
	$(LOOKALIKE) find espresso --index $(DEMO_INDEX)
	@echo "# 5. Duplicates: each original kept, its copies grouped with it"
	$(LOOKALIKE) duplicates --index $(DEMO_INDEX)

test: install
	$(BIN)/ruff check lookalike tests bench
	$(BIN)/pytest -q

# The main benchmarks, by hand (about an hour and a half on 2 cores); each rewrites its own section of
# docs/benchmarks.md. The duplicate probes after calibrate.py use the set it builds.
bench: install
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python bench/embed.py
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/calibrate.py
	$(BIN)/python bench/colour_variants.py
	$(BIN)/python bench/colour_variants.py --near-hues
	$(BIN)/python bench/distinct.py
	$(BIN)/python bench/unseen.py
	$(BIN)/python bench/series.py
	$(BIN)/python bench/originals_only.py
	$(BIN)/python bench/tiny_search.py
	$(BIN)/python bench/looks_cost.py
	$(BIN)/python bench/remembered.py
	$(BIN)/python bench/colour_checks.py
	$(BIN)/python bench/versions.py
	$(BIN)/python bench/backups.py
	$(BIN)/python bench/everyday.py
	$(BIN)/python bench/serve.py
	$(BIN)/python bench/search.py
	$(BIN)/python bench/duplicates.py

clean:
	rm -rf $(VENV) .lookalike
