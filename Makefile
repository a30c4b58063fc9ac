# The two commands of the README: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install demo test unit lint bench clean redis-server java-maven prometheus-kcat chromium

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## set up .venv with the package and its dev tools

# make demo KEEP=1 leaves the broker and the worker running at the end (Ctrl-C stops them) and
# prints the back office's address with a token
KEEP ?=
demo: $(STAMP)  ## the main job: a broker, a worker, synthetic events, what the engine did
	$(BIN)/loyalty-streams demo --duration 30 $(if $(KEEP),--keep)

lint: $(STAMP)  ## ruff and mypy --strict
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src

# the Redis read model's tests start a real redis-server (Sentinel is the same binary)
redis-server:
	@command -v redis-server >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; \
	  else echo "the tests need redis-server: sudo apt-get install redis-server" >&2; exit 1; fi; }

# the Apache Kafka tests run the real broker: Java 17+ and Maven (which fetches its jars once)
java-maven:
	@{ command -v java >/dev/null && command -v mvn >/dev/null; } || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless maven >/dev/null; \
	  else echo "the tests need Java and Maven: sudo apt-get install openjdk-17-jre-headless maven" >&2; exit 1; fi; }

# the observability tests run Prometheus (and promtool) on a live worker, and kcat on an output topic
prometheus-kcat:
	@{ command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v kcat >/dev/null; } || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus kcat >/dev/null; \
	  else echo "the tests need Prometheus and kcat: sudo apt-get install prometheus kcat" >&2; exit 1; fi; }

# the back office's browser tests drive Debian's Chromium with Playwright (never `playwright
# install`, which downloads a browser of its own)
chromium:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "the tests need Chromium: sudo apt-get install chromium" >&2; exit 1; fi; }

test: lint redis-server java-maven prometheus-kcat chromium  ## lint, then every test (brokers, workers, Redis, a browser)
	$(BIN)/pytest --durations=25

unit: $(STAMP)  ## the tests that need no broker, in seconds
	$(BIN)/pytest -q -m "not integration"

bench: $(STAMP)  ## the benchmarks, by hand (figures go to the issue notes)
	$(BIN)/python bench/domain_apply.py
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/timers.py
	$(BIN)/python bench/archive_read.py
	$(BIN)/python bench/what_if.py

clean:  ## remove .venv, data and caches
	rm -rf $(VENV) var .cache .pytest_cache .mypy_cache .ruff_cache .hypothesis
