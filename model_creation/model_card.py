"""Markdown written by the evaluate stage: the model card (README.md) and a short report (report.md).

Pure formatting of numbers the earlier stages measured; nothing here computes a metric.
"""

from __future__ import annotations

from typing import Any


def _mb(size: int | None) -> str:
    return f"{size / 1e6:.1f} MB" if size else "n/a"


def _num(value: Any, digits: int = 2) -> str:
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "n/a" if value is None else str(value)


def metrics_table(result: dict) -> str:
    ppl, sizes, latency = result["perplexity"], result["size_bytes"], result["latency"]
    rows = [
        "| model | test perplexity | file size | decode ms/token (1 thread) |",
        "|---|---|---|---|",
        f"| PyTorch (fp32) | {_num(ppl['pytorch'])} | {_mb(sizes.get('pytorch'))} | n/a |",
        f"| ONNX fp32 | {_num(ppl['onnx_fp32'])} | {_mb(sizes['onnx_fp32'])} | {_num(latency['onnx_fp32']['per_token_ms'])} |",
        f"| ONNX int8 (shipped) | {_num(ppl['onnx_int8'])} | {_mb(sizes['onnx_int8'])} | {_num(latency['onnx_int8']['per_token_ms'])} |",
    ]
    return "\n".join(rows)


def _samples(result: dict) -> str:
    """Prompt in bold, completion after it; newlines flattened so each sample stays one list item."""
    sampling = result["sampling"]
    lines = [f"Greedy, and sampled with temperature {sampling['temperature']}, top_p {sampling['top_p']}, "
             f"seed {sampling['seed']}; the prompt is in bold.\n"]
    for sample in result["samples"]:
        greedy, sampled = (sample[k].replace("\n", " ") for k in ("greedy", "sampled"))
        lines.append(f"- greedy: **{sample['prompt']}**{greedy}")
        lines.append(f"- sampled: **{sample['prompt']}**{sampled}")
    return "\n".join(lines) + "\n"


def render_report(result: dict) -> str:
    return (
        "# Evaluation report\n\n"
        f"Perplexity over {result['documents']:,} documents ({result['tokens']:,} predicted tokens) of the "
        f"`{result['split']}` split; each document alone as `<|endoftext|> title\\n abstract <|endoftext|>`, "
        f"truncated to {result['context_length']} tokens.\n\n"
        f"{metrics_table(result)}\n\n"
        f"int8 vs fp32 perplexity change: {100 * result['int8_perplexity_increase']:+.2f}%. "
        f"Quantization variant kept: `{result['quantization_variant']}`.\n"
    )


def render_model_card(result: dict, train: dict, dataset: dict | None, has_loss_curve: bool, notes: str = "") -> str:
    config = train.get("config", {})
    recipe = [
        f"- Architecture: GPT-2 (DistilGPT2 shape family): {config.get('n_layer')} layers, {config.get('n_embd')} wide, "
        f"{config.get('n_head')} heads, {config.get('n_positions')}-token context, GPT-2's 50,257-token BPE vocabulary; "
        f"{_num(train.get('parameters'))} parameters.",
        f"- Initialisation: {config.get('init')}" + (f" from `{config.get('base')}`" if config.get("init") == "pretrained" else "") + ".",
        f"- Optimiser: AdamW (betas {config.get('beta1')}/{config.get('beta2')}, weight decay {config.get('weight_decay')} "
        f"on matrices), peak learning rate {config.get('learning_rate')}, {config.get('warmup_steps')} warmup steps, "
        f"cosine decay to {config.get('min_lr_ratio')} of the peak, gradient clipping {config.get('grad_clip')}, dropout {config.get('dropout')}.",
        f"- Batch: {config.get('batch_size')} x {config.get('block_size')} tokens x {config.get('grad_accum')} accumulation steps.",
        f"- Run: {_num(train.get('steps'))} steps, {_num(train.get('tokens_seen'))} tokens, "
        f"{_num(train.get('wall_seconds'), 0)} s on {train.get('device')} ({train.get('precision')}); "
        f"stopped by {train.get('stop_reason')}.",
        f"- Final validation loss {_num(train.get('final_val_loss'), 3)} (perplexity {_num(train.get('final_val_ppl'))}).",
    ]
    data_lines = ["arXiv abstracts of machine-learning papers (title, newline, abstract per document)."]
    if dataset:
        shown = {k: v for k, v in dataset.items() if isinstance(v, (int, float, str)) and k not in ("stage", "input_dir")}
        data_lines += [f"- {key}: {_num(value)}" for key, value in sorted(shown.items())]
    curve = "\n![Training and validation loss](loss_curve.png)\n" if has_loss_curve else ""
    about = f"\n## About this build\n\n{notes.strip()}\n" if notes.strip() else ""
    return f"""# distilgpt2-arxiv: autocomplete for machine-learning abstracts

A small GPT-2-architecture language model trained on arXiv abstracts, exported to ONNX with a
KV cache and quantized to int8 for fast CPU inference. It continues a sentence in the style of
an ML paper abstract ("We propose a method to ..."). This directory is exactly what the
abstract-autocomplete backend loads: `model.onnx` (int8), `config.json`, the GPT-2 tokenizer
files and `generation_config.json`.
{about}
## Intended use

Writing assistance for drafting machine-learning abstracts: suggestions that a person reads,
edits and takes responsibility for. Not for generating text presented as factual, not for
unattended publication, and not a source of citations, numbers or claims.

## Data

{chr(10).join(data_lines)}

## Training recipe

{chr(10).join(recipe)}
{curve}
## Evaluation

Perplexity over {result['documents']:,} documents ({result['tokens']:,} predicted tokens) of the
`{result['split']}` split, one definition for all three models (see `model_creation/perplexity.py`).
Decode latency: greedy, KV cache, batch 1, one CPU thread, {result['latency']['new_tokens']} new tokens.

{metrics_table(result)}

## Sample completions (int8 model)

{_samples(result)}
## Limitations

- It imitates the style of abstracts; it has no knowledge of whether what it writes is true.
  Invented results, numbers, dataset names and citations are to be expected.
- Trained on English arXiv ML abstracts only; other domains and languages degrade quickly.
- Context is {result['context_length']} tokens; longer inputs are cut to their most recent tokens.
- It inherits the biases of the arXiv corpus (topics, phrasing, over-represented subfields).
"""
