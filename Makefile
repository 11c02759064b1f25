# Two set-up commands work on a fresh machine: `make demo` and `make test`.
# Both create .venv when missing and install what they need; nothing else is required.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install broker-ready test test-all test-fast demo lint fmt bench soak deploy-check helm-chart schema schema-release clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# The default suite takes 10-13 min on 2 cores; `extended` holds full-size variants of tests
# that the default suite runs at a smaller size (60 creates instead of 300, 1,000 contacts instead
# of 5,000). Most tests wait on brokers, timers and simulated calls rather than compute, so three
# xdist workers (each with its own local broker; a file's tests stay on one worker) share the two
# cores. PYTEST_WORKERS=0 runs them in one process.
PYTEST_WORKERS ?= 3
PYTEST := $(PY) -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadfile
# Tests marked `budget` measure how much of a CPS budget is used: they run second, on their own,
# because sharing two cores with the rest of the suite is enough to lower what they measure.
PYTEST_ALONE := $(PY) -m pytest -q -p no:cacheprovider -n 0

# Provisions the local Apache Kafka once (jars via mvn on the first run, verified against the
# committed checksums; cached under build/kafka) and says which Kafka and which Java will run.
broker-ready: $(STAMP)
	@$(PY) -m orchestrator.localbroker

test: broker-ready
	$(PYTEST) -m "not extended and not budget"
	$(PYTEST_ALONE) -m "budget and not extended"

test-all: broker-ready
	$(PYTEST) -m "not budget"
	$(PYTEST_ALONE) -m "budget"

test-fast: broker-ready
	$(PYTEST) -m "not slow and not budget"
	$(PYTEST_ALONE) -m "budget and not slow"

demo: broker-ready
	$(VENV)/bin/orchestrator demo

lint: $(STAMP)
	$(VENV)/bin/ruff check contracts handlers orchestrator tests bench deploy tools
	$(VENV)/bin/ruff format --check contracts handlers orchestrator tests bench deploy tools
	$(VENV)/bin/mypy

fmt: $(STAMP)
	$(VENV)/bin/ruff format contracts handlers orchestrator tests bench deploy
	$(VENV)/bin/ruff check --fix contracts handlers orchestrator tests bench deploy

# Each benchmark starts its own broker/simulator; results land in bench/RESULTS.md and the README.
BENCHES ?= ingress worker dispatcher campaign simulator_throughput
bench: broker-ready
	@rm -f build/bench.jsonl; mkdir -p build
	@for b in $(BENCHES); do \
	  if [ -f bench/$$b.py ]; then echo "== bench $$b"; \
	    BENCH_RESULTS=build/bench.jsonl $(PY) -m bench.$$b || exit 1; \
	  else echo "== bench $$b: not present, skipped"; fi; done
	$(PY) -m bench.report build/bench.jsonl "make bench"

# The soak: broker, simulator (faults, 429s, reorder, duplicates) and several role processes, a
# campaign of SOAK_CONTACTS, kill -9 every SOAK_KILL_INTERVAL s, graceful restarts; then the
# history checker (exit 1 on any anomaly). E.g. `make soak SOAK_CONTACTS=100000 SOAK_DURATION=1800`.
soak: broker-ready
	$(VENV)/bin/orchestrator soak

# Every JSON Schema, index.json, asyncapi.yaml and openapi.json into build/schemas; the AsyncAPI
# document is checked by the AsyncAPI project's parser (tools/asyncapi: npm ci on first use), and
# the two documents linked from the README are refreshed in docs/api/ (commit them).
schema: $(STAMP)
	$(VENV)/bin/orchestrator schema export build/schemas
	$(PY) tools/asyncapi/check.py build/schemas/asyncapi.yaml
	cp build/schemas/asyncapi.yaml build/schemas/openapi.json docs/api/
	$(VENV)/bin/orchestrator schema compat

# At a release: the records' schemas become the baseline later changes are checked against.
schema-release: $(STAMP)
	@test -n "$(VERSION)" || { echo "usage: make schema-release VERSION=x.y.z"; exit 2; }
	$(VENV)/bin/orchestrator schema export --released docs/api/released/$(VERSION)

# Offline Kubernetes checks (renders, strict schemas, manifest rules, placeholders, dashboards and
# alerts, topic and Helm chart drift, helm lint/template, Dockerfile lint). Installs kubectl,
# promtool and helm itself when missing; `make test` runs the same checks via tests/deploy.
deploy-check: $(STAMP)
	$(PY) -m deploy.check

# Regenerate the Helm chart from deploy/k8s (deploy-check fails when it is stale).
helm-chart: $(STAMP)
	$(PY) -m deploy.gen_helm

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache tools/asyncapi/node_modules
