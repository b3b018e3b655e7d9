#!/usr/bin/env bash
# The CPU route to the shipped model, one stretch at a time (`make train-cpu`):
#   [dataset ->] the stable WSD run, started or resumed, for SECONDS -> a decay forked from its
#   latest checkpoint -> export -> quantize -> evaluate into MODEL_DIR.
#
#   model_creation/cpu_run.sh CORPUS [SECONDS]
#
# Run it again later to train the same stable run further and ship a new candidate: the stable
# run is never decayed itself. CORPUS is a JSONL(.gz) file of abstracts or a scrape directory.
# Environment: RUNS (default runs), RUN_NAME (the stable run's directory under RUNS, default
# cpu-6x512-muon), MODEL_DIR (default models/arxiv-gpt2-6x512-bpe16k), PRESET (default cpu),
# VOCAB (the BPE's size, default 16384), HOLDOUT (validation and test share each, default 0.01),
# DECAY_FRACTION (the decay's share of the stable run's steps, default 0.15), TRAIN_ARGS (more
# train flags for the stable run, e.g. "--max-steps 20000"), NOTES (for the model card), PYTHON. Every stage is the same `python -m model_creation <stage>` a user can run.
set -euo pipefail

RUNS=${RUNS:-runs}
RUN_NAME=${RUN_NAME:-cpu-6x512-muon}
MODEL_DIR=${MODEL_DIR:-models/arxiv-gpt2-6x512-bpe16k}
PRESET=${PRESET:-cpu}
VOCAB=${VOCAB:-16384}
HOLDOUT=${HOLDOUT:-0.01}
DECAY_FRACTION=${DECAY_FRACTION:-0.15}
TRAIN_ARGS=${TRAIN_ARGS:-}
NOTES=${NOTES:-}
PYTHON=${PYTHON:-python}
CORPUS=${1:?usage: model_creation/cpu_run.sh CORPUS [SECONDS]}
SECONDS_BUDGET=${2:-3600}
stage() { "$PYTHON" -m model_creation "$@"; }

DATASET="$RUNS/dataset-bpe$VOCAB"
STABLE="$RUNS/$RUN_NAME"
if [[ ! -f "$DATASET/metrics.json" ]]; then
  stage dataset --inputs "$CORPUS" --output-dir "$DATASET" --tokenizer bpe --bpe-vocab-size "$VOCAB" \
    --validation-fraction "$HOLDOUT" --test-fraction "$HOLDOUT"
fi
resume=()
[[ -f "$STABLE/checkpoint.pt" ]] && resume=(--resume)
# shellcheck disable=SC2086 # TRAIN_ARGS is a list of flags
stage train --preset "$PRESET" --dataset-dir "$DATASET" --output-dir "$STABLE" --schedule wsd \
  --max-seconds "$SECONDS_BUDGET" "${resume[@]}" $TRAIN_ARGS

# The candidate: a decay of DECAY_FRACTION of the stable run's steps, in directories named for its step.
step=$("$PYTHON" -c "import json, sys; print(json.load(open(sys.argv[1]))['steps'])" "$STABLE/metrics.json")
decay_steps=$("$PYTHON" -c "import sys; print(max(1, round(float(sys.argv[1]) * int(sys.argv[2]))))" "$DECAY_FRACTION" "$step")
CANDIDATE="$RUNS/$RUN_NAME-decay-at-$step"
stage train --preset "$PRESET" --dataset-dir "$DATASET" --output-dir "$CANDIDATE/train" --overwrite \
  --schedule wsd --decay-from "$STABLE" --decay-steps "$decay_steps"
stage export --input-dir "$CANDIDATE/train" --output-dir "$CANDIDATE/export" --overwrite
stage quantize --input-dir "$CANDIDATE/export" --output-dir "$CANDIDATE/quantize" --dataset-dir "$DATASET" --overwrite
stage evaluate --quantize-dir "$CANDIDATE/quantize" --output-dir "$MODEL_DIR" --overwrite --notes "$NOTES"
