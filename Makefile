# The two commands the README starts with, and what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: example test lint bench chromium

# Run a real example workflow end to end on this machine.
example: $(VENV)/.installed
	$(BIN)/stq run workflows/examples/build-and-test.yaml

# The whole test suite: lint, format check, then every test.
test: chromium $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,postgres]'
	touch $@

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The dashboard tests drive Debian's chromium (no browser downloads); install it once.
chromium:
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
