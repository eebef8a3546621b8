# fastgw: two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
CORE_SRC := $(wildcard src/fastgw/_core/*.pyx src/fastgw/_core/*.pxd src/fastgw/_core/*.py)
CORE_STAMP := src/fastgw/_core/.built

.PHONY: run test lint compile bench bench-micro loadtest fuzz soak annotate debug clean venv system-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q 'Cython>=3.0' setuptools wheel
	# The package is installed in editable mode without compiling; the
	# extensions are built in place by the `compile` target.
	FASTGW_NO_EXTENSIONS=1 $(PIP) install -q -e '.[dev]' --no-build-isolation
	touch $(STAMP)

venv: $(STAMP)

# Build the Cython extensions in place (src/fastgw/_core/*.so).
$(CORE_STAMP): $(STAMP) $(CORE_SRC) setup.py
	$(PY) setup.py -q build_ext --inplace -j 2
	touch $(CORE_STAMP)

compile: $(CORE_STAMP)

# Debian packages the test suite and the benchmarks need.
system-deps:
	@command -v redis-server >/dev/null && command -v redis-sentinel >/dev/null && command -v redis-cli >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-sentinel redis-tools; }

run: compile
	@echo "mock LLM on 127.0.0.1:9000, gateway on :8000, admin on 127.0.0.1:8001 (Ctrl-C stops both)"
	@$(PY) -m fastgw mock-llm --port 9000 --latency-ms 40 --tokens-per-s 200 & MOCK=$$!; \
		trap "kill $$MOCK 2>/dev/null" EXIT INT TERM; \
		$(PY) -m fastgw run -c examples/quickstart.yaml

test: compile system-deps
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(PY) -m fastgw version
	$(VENV)/bin/pytest -q -p no:cacheprovider --benchmark-disable

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

bench: compile
	$(PY) bench/run.py

# Realistic LLM traffic (bench/locustfile.py: consumers with keys, both front doors, a
# share of streams, long-tailed prompt sizes) against what `make run` serves, headless and
# bounded; reports: bench/results/loadtest_*.csv (with _llm.csv: tokens per second) and
# bench/results/loadtest.html.
LOADTEST_TIME ?= 1m
LOADTEST_USERS ?= 50
loadtest: compile
	@$(PY) -c "import locust" 2>/dev/null || $(PIP) install -q locust
	@mkdir -p bench/results
	@$(PY) -m fastgw mock-llm --port 9000 --latency-ms 40 --tokens-per-s 200 & MOCK=$$!; \
		$(PY) -m fastgw run -c examples/quickstart.yaml & GW=$$!; \
		trap "kill $$MOCK $$GW 2>/dev/null; wait" EXIT INT TERM; \
		$(PY) -c "from fastgw.testing import wait_for_port; wait_for_port(9000); wait_for_port(8000)" && \
		$(VENV)/bin/locust -f bench/locustfile.py --host http://127.0.0.1:8000 --headless \
			-u $(LOADTEST_USERS) -r 10 -t $(LOADTEST_TIME) --stop-timeout 10 --only-summary \
			--csv bench/results/loadtest --html bench/results/loadtest.html --api-keys demo-key

bench-micro: compile
	$(VENV)/bin/pytest -q bench/micro --benchmark-only

# A bounded soak (10 minutes; longer with SOAK_ARGS="--duration 3600"): load,
# reloads every 30 s, a target killed every 2 minutes, then connection batches.
SOAK_ARGS ?=
soak: compile
	$(PY) bench/soak.py $(SOAK_ARGS)

# Coverage-guided fuzzing (atheris) of each target for FUZZ_SECONDS (default 60).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= router config sse translators
fuzz: compile
	$(PIP) install -q atheris==2.3.0
	@for target in $(FUZZ_TARGETS); do \
		echo "== fuzzing $$target for $(FUZZ_SECONDS) s"; \
		$(PY) tests/fuzz/atheris_targets.py $$target -max_total_time=$(FUZZ_SECONDS) \
			-rss_limit_mb=4096 -print_final_stats=1 > .fuzz-$$target.log 2>&1; \
		code=$$?; tail -n 4 .fuzz-$$target.log; \
		[ $$code -eq 0 ] || { echo "fuzz target $$target failed: see .fuzz-$$target.log"; exit 1; }; \
	done

# Cython's HTML annotation: yellow lines call into the Python C-API.
annotate: $(STAMP)
	FASTGW_CYTHON_ANNOTATE=1 $(PY) setup.py -q build_ext --inplace -j 2 --force
	@ls src/fastgw/_core/*.html

# A line-tracing build for profiling the core (slower; `make compile` undoes it).
debug: $(STAMP)
	FASTGW_CYTHON_TRACE=1 $(PY) setup.py -q build_ext --inplace -j 2 --force
	rm -f $(CORE_STAMP)

clean:
	rm -rf build src/fastgw/_core/*.c src/fastgw/_core/*.so src/fastgw/_core/*.html $(CORE_STAMP)
