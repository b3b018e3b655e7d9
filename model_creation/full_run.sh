#!/usr/bin/env bash
# Reproduce the shipped model on one CUDA GPU: [scrape ->] dataset -> train -> export -> quantize -> evaluate.
#
#   model_creation/full_run.sh [CORPUS]
#
# CORPUS is a JSONL(.gz) file of abstracts (id, title, abstract per line) or a scrape directory;
# without it, arXiv is scraped into $RUNS/scrape first (slow: arXiv allows one request per 3 s).
# Environment: RUNS (stage directories, default runs), MODEL_DIR (the final model directory,
# default models/distilgpt2-arxiv), PRESET (train preset, default distilgpt2-arxiv),
# HOLDOUT (share of papers held out for validation and for test, each; default 0.01), PYTHON.
# Every stage is the same `python -m model_creation <stage>` command a user can run alone.
set -euo pipefail

RUNS=${RUNS:-runs}
MODEL_DIR=${MODEL_DIR:-models/distilgpt2-arxiv}
PRESET=${PRESET:-distilgpt2-arxiv}
HOLDOUT=${HOLDOUT:-0.01}
PYTHON=${PYTHON:-python}
stage() { "$PYTHON" -m model_creation "$@"; }

CORPUS=${1:-}
if [[ -z "$CORPUS" ]]; then
  stage scrape --output-dir "$RUNS/scrape"
  CORPUS="$RUNS/scrape"
fi
stage dataset --inputs "$CORPUS" --output-dir "$RUNS/dataset" \
  --validation-fraction "$HOLDOUT" --test-fraction "$HOLDOUT"
stage train --preset "$PRESET" --dataset-dir "$RUNS/dataset" --output-dir "$RUNS/train"
stage export --input-dir "$RUNS/train" --output-dir "$RUNS/export"
stage quantize --input-dir "$RUNS/export" --output-dir "$RUNS/quantize" --dataset-dir "$RUNS/dataset"
# The final directory is replaced: the point of this run is a new model for the server to load.
stage evaluate --quantize-dir "$RUNS/quantize" --output-dir "$MODEL_DIR" --overwrite
