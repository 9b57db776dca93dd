# mktpipe: `make run` and `make test` are all a new machine needs (Python 3.11+, Java 17).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
MKTPIPE := $(VENV)/bin/mktpipe
STAMP := $(VENV)/.installed-stamp
export SPARK_LOCAL_IP ?= 127.0.0.1
export PYSPARK_PYTHON := $(abspath $(PY))

JARS_DIR ?= jars

.PHONY: help setup jars run test test-fast lint bench clean doctor maintain cluster-up \
	cluster-down cluster-status dist test-cluster test-slow browser blas mlflow-ui dashboard i18n

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	@command -v java >/dev/null || { echo "Java 17 is required (apt-get install openjdk-17-jre-headless)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c requirements.lock -e ".[full,dev]"
	@touch $(STAMP)

setup: $(STAMP) jars blas  ## create the virtualenv, install pinned dependencies, resolve the jars

jars:  ## resolve the pinned Spark extension jars (jvm/pom.xml) with Maven into ./jars, where reachable
	@scripts/resolve-jars.sh $(JARS_DIR)

run: setup  ## demo data (if missing), then the whole pipeline: backfill, train, score, trends, report
	@if [ ! -d "$${MKTPIPE__PATHS__LANDING:-data/landing}/events" ]; then $(MKTPIPE) generate; fi
	@if [ -z "$$MKTPIPE_EXPORT_KEY" ] && [ ! -s .secrets/export_key ]; then \
	  mkdir -p .secrets && (umask 077 && $(PY) -c "import secrets; print(secrets.token_hex(32))" > .secrets/export_key) && \
	  echo "MKTPIPE_EXPORT_KEY was not set: made a random demo key in .secrets/export_key (not committed)"; fi
	MKTPIPE_EXPORT_KEY="$${MKTPIPE_EXPORT_KEY:-$$(cat .secrets/export_key)}" $(MKTPIPE) backfill

dashboard: setup  ## the interactive dashboard of the latest snapshot, served on http://127.0.0.1:8050 (after make run)
	MKTPIPE_EXPORT_KEY="$${MKTPIPE_EXPORT_KEY:-$$(cat .secrets/export_key 2>/dev/null)}" $(MKTPIPE) dashboard --snapshot-date latest --serve

browser:  ## headless Chromium for the report's browser test (Debian package; the test skips without it)
	@command -v chromium >/dev/null 2>&1 || scripts/apt-install.sh "the report's browser test" \
	  "the report's browser test will skip" chromium

blas:  ## OpenBLAS as libblas.so.3 for MLlib (Debian package; without it MLlib uses its Java BLAS)
	@PATH="$$PATH:/sbin:/usr/sbin" ldconfig -p 2>/dev/null | grep -q 'libblas\.so\.3 ' || \
	  scripts/apt-install.sh "MLlib's native BLAS" \
	  "MLlib uses its Java BLAS and LAPACK (README: Native BLAS)" libopenblas0-pthread

test: setup browser  ## the whole test suite (unit + integration), as CI runs it
	$(PY) -m pytest

test-slow: setup  ## the tests marked slow (left out of make test; see pytest.ini)
	$(PY) -m pytest -m slow

test-fast: setup  ## unit tests only
	$(PY) -m pytest tests/unit -m "not integration"

i18n: setup  ## re-extract the readers' messages (report, alerts, dashboard) into the catalogs; then translate the new entries of mktpipe/locale/es/LC_MESSAGES/mktpipe.po
	$(VENV)/bin/pybabel extract -F babel.cfg -k N_ -k NP_:1c,2 --add-location=file --sort-by-file -w 100 \
	  --project=mktpipe --version=0.1.0 --copyright-holder="mktpipe authors" -o mktpipe/locale/mktpipe.pot mktpipe
	$(VENV)/bin/pybabel update -i mktpipe/locale/mktpipe.pot -d mktpipe/locale -D mktpipe -w 100 --no-fuzzy-matching --ignore-obsolete

mlflow-ui: setup  ## the MLflow UI on the model registry's store (models.mlflow_tracking_uri), http://127.0.0.1:5000
	$(VENV)/bin/mlflow ui --host 127.0.0.1 --port $${MLFLOW_PORT:-5000} --backend-store-uri \
	  "$$($(PY) -c 'from mktpipe.config import load_config; from mktpipe.models.registry import registry_for; print(registry_for(load_config()).tracking_uri)')"

doctor: setup  ## versions, extension jars and which backend each capability uses
	$(MKTPIPE) doctor

maintain: setup  ## compact small files and vacuum every table (mktpipe maintain)
	$(MKTPIPE) maintain

bench: setup  ## benchmarks (print figures; see README "Performance")
	$(PY) bench/generate.py
	$(PY) bench/ingest.py
	$(PY) bench/sentiment.py
	$(PY) bench/features.py
	$(PY) bench/graph.py
	$(PY) bench/models.py
	$(PY) bench/public_churn.py
	$(PY) bench/anomalies.py
	$(PY) bench/trends.py
	$(PY) bench/pipeline.py
	$(PY) bench/object_storage.py

cluster-up: setup  ## start a Spark standalone cluster on 127.0.0.1:7077 (master + 1 worker)
	MKTPIPE_PYTHON=$(abspath $(PY)) scripts/spark-cluster.sh up

cluster-down:  ## stop the local Spark standalone cluster
	scripts/spark-cluster.sh down

cluster-status:  ## is the local cluster running?
	scripts/spark-cluster.sh status

dist: setup  ## dist/mktpipe-pyfiles.zip, the mktpipe package for spark-submit --py-files
	$(PY) scripts/build_pyfiles.py

test-cluster: setup  ## cluster integration test (starts and stops its own cluster)
	$(PY) -m pytest tests/integration/test_cluster.py -q

clean:  ## remove generated data, reports and models (keeps the virtualenv)
	rm -rf data reports models exports spark-warehouse metastore_db derby.log .pytest_cache

lint: setup  ## ruff (style and common bugs)
	$(VENV)/bin/ruff check mktpipe tests bench jobs
