# The two commands the README starts with, and what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The dashboard tests drive Debian's chromium through Playwright (no browser downloads).
CHROMIUM ?= /usr/bin/chromium
# Why the dashboard tests cannot run here, when `make chromium` could not install it.
NO_CHROMIUM_FILE := $(VENV)/no-chromium

.PHONY: example test chromium

# Run a real example workflow end to end on this machine.
example: $(VENV)/.installed
	$(BIN)/stq run workflows/examples/build-and-test.yaml

# The whole test suite: lint, format check, then every test. Without chromium
# the dashboard tests are skipped, naming the reason `make chromium` printed.
test: chromium $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	NO_CHROMIUM="$$(cat $(NO_CHROMIUM_FILE) 2>/dev/null)" $(BIN)/pytest

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,postgres]'
	touch $@

# Install chromium when it is missing and this user may (root, or sudo without a
# password). apt's output is shown only when it fails. When it cannot be installed,
# one line says why, and the reason is left in $(NO_CHROMIUM_FILE) for `make test`.
chromium:
	@mkdir -p $(VENV); rm -f $(NO_CHROMIUM_FILE); \
	test -x $(CHROMIUM) && exit 0; \
	if [ "$$(id -u)" = 0 ]; then sudo=; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else why="chromium is missing and only root (or passwordless sudo) can install it"; fi; \
	if [ -z "$$why" ]; then \
		log=$$(mktemp); \
		if { $$sudo apt-get update -q && $$sudo env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -q --no-install-recommends chromium; } >"$$log" 2>&1 \
			&& test -x $(CHROMIUM); then rm -f "$$log"; exit 0; fi; \
		cat "$$log" >&2; rm -f "$$log"; \
		why="apt-get could not install chromium (its output is above)"; \
	fi; \
	echo "$$why" >$(NO_CHROMIUM_FILE); \
	echo "make: dashboard tests will be skipped: $$why" >&2
