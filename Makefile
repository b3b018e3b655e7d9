# Two commands do everything on a fresh machine:
#   make run   - build what is missing and serve the shipped model on $(HOST):$(PORT)
#   make test  - install test tools, run ruff and every test (Python, front-end unit, browser end-to-end)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

FRONTEND_SOURCES := $(shell find frontend/src frontend/index.html frontend/package.json frontend/vite.config.ts frontend/tsconfig*.json -type f 2>/dev/null)

.PHONY: run test serve-deps test-deps frontend system-deps eb-bundle deploy train-gpu train-cpu clean

run: serve-deps frontend
	$(VENV)/bin/gunicorn -c backend/gunicorn.conf.py 'backend:create_app()'

# Every suite runs even if an earlier one fails; the exit status reports any failure.
# ruff (pyproject.toml's [tool.ruff]) lints the Python and checks that it is formatted.
test: test-deps frontend system-deps
	status=0; \
	$(PY) -m ruff check . || status=1; \
	$(PY) -m ruff format --check . || status=1; \
	$(PY) -m pytest || status=1; \
	(cd frontend && npm test) || status=1; \
	exit $$status

# --- Python environments (stamp files make a second run instant) ---
$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.serve: $(VENV)/bin/python requirements/serve.txt requirements/constraints.txt
	$(PY) -m pip install -q -r requirements/serve.txt
	touch $@

$(VENV)/.test: $(VENV)/.serve requirements/train.txt requirements/test.txt
	$(PY) -m pip install -q -r requirements/test.txt
	touch $@

serve-deps: $(VENV)/.serve
test-deps: $(VENV)/.test

# --- Front end (npm ci once, rebuild only when sources change) ---
frontend/node_modules/.package-lock.json: frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund

frontend/dist/index.html: frontend/node_modules/.package-lock.json $(FRONTEND_SOURCES)
	cd frontend && npm run build

frontend: frontend/dist/index.html

# Debian's Chromium drives the browser tests (no browser download); nginx-light lets the
# deployment tests proxy streams through a real nginx laid out like Elastic Beanstalk's.
system-deps:
	@missing=""; command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# The full training run on one CUDA GPU (about half an hour): dataset -> train -> export -> quantize -> evaluate.
#   make train-gpu CORPUS=path/to/arxiv-ml-abstracts.jsonl.gz   (no CORPUS: scrape arXiv first)
CORPUS ?=
train-gpu: test-deps
	PYTHON=$(PY) model_creation/full_run.sh $(CORPUS)

# One stretch of the CPU route (docs/training.md): resume the stable run for TRAIN_SECONDS, fork a decay,
# export, quantize and evaluate into the served model directory.
#   make train-cpu CORPUS=path/to/arxiv-ml-abstracts.jsonl.gz TRAIN_SECONDS=7200
TRAIN_SECONDS ?= 3600
train-cpu: test-deps
	PYTHON=$(PY) model_creation/cpu_run.sh $(CORPUS) $(TRAIN_SECONDS)

clean:
	rm -rf $(VENV) frontend/node_modules frontend/dist

# --- Elastic Beanstalk (deploy/): bundle exactly what runs, then roll it out with boto3 ---
#   make eb-bundle                                  -> artifacts/eb/abstract-autocomplete-<git sha>.zip
#   make deploy EB_APP=... EB_ENV=... [EB_FLAGS="--create --region eu-west-1"]
EB_APP ?= abstract-autocomplete
EB_ENV ?= abstract-autocomplete-prod
EB_FLAGS ?=

eb-bundle: $(VENV)/bin/python frontend
	$(PY) -m deploy.eb_bundle

deploy: $(VENV)/bin/python frontend
	$(PY) -m pip install -q -c requirements/constraints.txt boto3
	bundle="$$($(PY) -m deploy.eb_bundle)" && $(PY) -m deploy.eb_deploy --application "$(EB_APP)" --environment "$(EB_ENV)" --bundle "$$bundle" $(EB_FLAGS)
