"""A tiny random-weight GPT-2 and the model directories built from it, for fast offline tests.

Same architecture family and real 50257-token GPT-2 vocabulary as the shipped model, but 2
layers, 64 wide, 2 heads and 128 positions, so building, exporting and quantizing take seconds.
The model directories go through model_creation's own export and quantize stages, so tests
exercise exactly what the pipeline ships. `build_tiny_torch_model` is the PyTorch oracle.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers imports huggingface_hub, which reads it once

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from model_creation import export, quantize, train
from model_creation.stage_dir import write_metrics
from model_creation.tokenizer import END_OF_TEXT_ID, save_tokenizer

TINY = dict(n_layer=2, n_embd=64, n_head=2, n_positions=128, vocab_size=50257)
# Wider than GPT-2's 0.02 so next-token distributions are peaked enough for top-k / top-p
# to matter and greedy choices are not near-ties (fp32 vs int8 then still agree mostly).
INIT_RANGE = 0.1
QUANTIZE_TEXTS = ["We propose a method to learn representations.\nDeep networks generalize well."]
# What every stage from export on leaves in its directory: a model the backend can load.
MODEL_DIR_FILES = {
    "model.onnx",
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "vocab.json",
    "merges.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "metrics.json",
}
# ... and what the evaluate stage adds (loss_curve.png only when the train stage drew one).
EVALUATED_FILES = MODEL_DIR_FILES | {"README.md", "eval.json", "report.md"}


def build_tiny_torch_model(seed: int = 0) -> GPT2LMHeadModel:
    """The seeded random-weight tiny GPT2LMHeadModel, in eval mode (dropout off)."""
    config = GPT2Config(
        **TINY,
        initializer_range=INIT_RANGE,
        bos_token_id=END_OF_TEXT_ID,
        eos_token_id=END_OF_TEXT_ID,
    )
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config).eval()


def build_tiny_hf_dir(dest: Path, seed: int = 0) -> Path:
    """The tiny model as a finished train-stage directory: weights, config, tokenizer, metrics."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    model = build_tiny_torch_model(seed)
    model.save_pretrained(dest)
    # What the train stage ships: the contract's sampling defaults (do_sample=True).
    train.generation_config(END_OF_TEXT_ID).save_pretrained(dest)
    save_tokenizer(dest)
    write_metrics(dest, {"stage": "train", "input_dir": None, "note": f"random weights, seed {seed}"})
    return dest


def build_tiny_model_dir(
    dest: Path,
    *,
    quantized: bool = True,
    seed: int = 0,
    activations: str = "per-row",
    variant: str = "optimized-per-tensor",
) -> Path:
    """A complete model directory at `dest` (int8 by default, fp32 with quantized=False); int8
    activations are quantized per row (batchable) unless activations="per-tensor". The int8
    `variant` is the shipped model's by default (fused graph, GroupQueryAttention); "per-tensor"
    keeps the export's unfused attention."""
    dest = Path(dest)
    with tempfile.TemporaryDirectory(prefix="tiny-model-") as work:
        hf_dir = build_tiny_hf_dir(Path(work) / "hf", seed)
        export_dir = dest if not quantized else Path(work) / "export"
        export.run(
            export.Config(input_dir=str(hf_dir), output_dir=str(export_dir), overwrite=True, parity_new_tokens=4)
        )
        if quantized:
            quantize.run(
                quantize.Config(
                    input_dir=str(export_dir),
                    output_dir=str(dest),
                    overwrite=True,
                    variants=[variant],
                    activations=activations,
                    eval_texts=QUANTIZE_TEXTS,
                )
            )
    return dest


def build_tiny_dataset_dir(dest: Path, corpus: Path, *, block_size: int = 64, documents: int = 120) -> Path:
    """A small dataset-stage-shaped directory from a JSONL corpus (id, title, abstract).

    Built here, independently of model_creation.dataset, so train/evaluate tests do not depend on
    that stage: documents/ holds `title + "\\n" + abstract`; packed/ concatenates
    `<|endoftext|>`-separated documents and cuts them into blocks of `block_size`.
    Split: 80% train, 10% validation, 10% test, by document, in file order.
    """
    import json

    from datasets import Dataset, DatasetDict

    from model_creation.tokenizer import load_gpt2_tokenizer

    dest = Path(dest)
    rows = [json.loads(line) for line in Path(corpus).read_text().splitlines() if line.strip()][:documents]
    texts = [r["title"] + "\n" + r["abstract"] for r in rows]
    ids = [str(r.get("id") or i) for i, r in enumerate(rows)]
    cut_a, cut_b = int(0.8 * len(rows)), int(0.9 * len(rows))
    spans = {"train": (0, cut_a), "validation": (cut_a, cut_b), "test": (cut_b, len(rows))}
    tokenizer = load_gpt2_tokenizer()
    packed, docs = {}, {}
    for split, (lo, hi) in spans.items():
        stream: list[int] = []
        for text in texts[lo:hi]:
            stream += [END_OF_TEXT_ID] + tokenizer.encode(text)
        blocks = [stream[i : i + block_size] for i in range(0, len(stream) - block_size + 1, block_size)]
        packed[split] = Dataset.from_dict({"input_ids": blocks})
        docs[split] = Dataset.from_dict({"id": ids[lo:hi], "text": texts[lo:hi]})
    DatasetDict(packed).save_to_disk(str(dest / "packed"))
    DatasetDict(docs).save_to_disk(str(dest / "documents"))
    save_tokenizer(dest / "tokenizer")
    write_metrics(dest, {"stage": "dataset", "input_dir": str(corpus), "block_size": block_size})
    return dest
