# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint install clean browser report-screenshot

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the package metadata changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[local,test,metrics]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/recommender demo --yes

# Most tests wait on wall-clock load stages, so four processes share the two cores well
# (pytest-xdist; whole files per process, so a module's costly fixture is set up once).
# The `serial` tests measure capacity against a known truth and run alone afterwards:
# next to other load tests the server they measure is starved of CPU. Each part prints its
# ten slowest tests: where the suite's time goes, on the machine that ran it.
PYTEST_WORKERS ?= 4

test: $(STAMP) browser
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not serial" --durations=10
	$(BIN)/python -m pytest -q -m serial --durations=10
	$(BIN)/python -m mypy
	$(BIN)/python -m ruff check recommender tests bench

lint: $(STAMP)
	$(BIN)/python -m ruff check recommender tests bench
	$(BIN)/python -m mypy

# The report's browser test opens report.html in Debian's Chromium: install it where it is
# missing and apt-get can (CI runs as root on a clean machine); elsewhere that test skips.
CHROMIUM := /usr/bin/chromium
CHROMIUM_FLAGS := --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
	--disable-background-networking --disable-component-update --disable-sync --hide-scrollbars

browser:
	@if [ ! -x $(CHROMIUM) ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "Installing chromium for the report's browser test..."; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	    >/dev/null; } || echo "warning: could not install chromium; its test will be skipped"; \
	fi

# A picture of the newest run's HTML report (run directories sort by their UTC stamp).
report-screenshot: $(STAMP) browser
	@run=$$(ls -d reports/*/run.json 2>/dev/null | sort | tail -1); \
	if [ -z "$$run" ]; then $(MAKE) demo && run=$$(ls -d reports/*/run.json | sort | tail -1); fi; \
	dir=$$(dirname "$$run"); profile=$$(mktemp -d); \
	$(BIN)/recommender report "$$dir" --format html; \
	test -f "$$dir/report.html" && $(CHROMIUM) $(CHROMIUM_FLAGS) --user-data-dir="$$profile" --window-size=1200,5000 \
	  --screenshot="$(CURDIR)/reports/report-screenshot.png" "file://$(CURDIR)/$$dir/report.html" \
	  2>/dev/null; status=$$?; rm -rf "$$profile"; \
	test $$status -eq 0 && echo "Wrote reports/report-screenshot.png ($$dir)"

clean:
	rm -rf $(VENV) build *.egg-info
