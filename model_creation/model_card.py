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


MODELS = (("pytorch", "PyTorch (fp32)"), ("onnx_fp32", "ONNX fp32"), ("onnx_int8", "ONNX int8 (shipped)"))


def metrics_table(result: dict) -> str:
    ppl, sizes, latency = result["perplexity"], result["size_bytes"], result["latency"]
    per_gpt2 = result.get("perplexity_per_gpt2_token") or {}
    rows = [
        "| model | test perplexity per GPT-2 token | per model token | file size | decode ms/token (1 thread) |",
        "|---|---|---|---|---|",
    ]
    for key, label in MODELS:
        decode = _num(latency[key]["per_token_ms"]) if key in latency else "n/a"
        rows.append(f"| {label} | {_num(per_gpt2.get(key))} | {_num(ppl[key])} | {_mb(sizes.get(key))} | {decode} |")
    return "\n".join(rows)


def _samples(result: dict) -> str:
    """Prompt in bold, completion after it; newlines flattened so each sample stays one list item."""
    sampling = result["sampling"]
    lines = [
        f"Greedy, and sampled with temperature {sampling['temperature']}, top_p {sampling['top_p']}, "
        f"seed {sampling['seed']}; the prompt is in bold.\n"
    ]
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
        f"with a sliding window (stride {result['context_length'] // 2}) over those longer than the "
        f"{result['context_length']}-token context. Per GPT-2 token: the same summed loss divided by "
        f"each text's GPT-2 token count + 1 ({_num(result.get('gpt2_tokens'))} in all), "
        "comparable across tokenizers.\n\n"
        f"{metrics_table(result)}\n\n"
        f"int8 vs fp32 perplexity change: {100 * result['int8_perplexity_increase']:+.2f}%. "
        f"Quantization variant kept: `{result['quantization_variant']}`, "
        f"activations scaled {result['activation_scales'].replace('-', ' ')}, "
        f"attention {_ATTENTION[result['attention']]}.\n"
    )


_ATTENTION = {  # quantize's metrics["attention"] -> the report's words
    "group-query": "fused as GroupQueryAttention (KV cache written in place)",
    "multi-head": "fused as MultiHeadAttention",
    "unfused": "as exported (not fused)",
}


def _vocabulary(result: dict, dataset: dict | None) -> str:
    kind = ((dataset or {}).get("tokenizer") or {}).get("kind", "gpt2")
    size = _num(result.get("vocab_size", 50257))
    if kind == "bpe":
        return f"a {size}-token byte-level BPE trained on the training split's abstracts"
    return f"GPT-2's {size}-token BPE"


def _optimiser(config: dict) -> str:
    name = "Muon for the blocks' weight matrices + AdamW for the rest" if config.get("optimizer") == "muon" else "AdamW"
    if config.get("schedule") == "wsd":
        schedule = (
            f"warmup-stable-decay: {config.get('warmup_steps')} warmup steps, a constant rate, then "
            f"{config.get('decay_steps')} steps of linear decay to {config.get('min_lr_ratio')} of the peak"
        )
    else:
        schedule = (
            f"{config.get('warmup_steps')} warmup steps, cosine decay to {config.get('min_lr_ratio')} of the peak"
        )
    return (
        f"- Optimiser: {name} (betas {config.get('beta1')}/{config.get('beta2')}, weight decay "
        f"{config.get('weight_decay')} on matrices), peak learning rate {config.get('learning_rate')}, {schedule}; "
        f"gradient clipping {config.get('grad_clip')}, dropout {config.get('dropout')}."
    )


def _stretches(stretches: list[dict]) -> str:
    if not stretches:
        return ""
    rows = ["| stretch | from step | tokens | hours | |", "|---|---|---|---|---|"]
    for number, stretch in enumerate(stretches, start=1):
        rows.append(
            f"| {number} | {_num(stretch['start_step'])} | {_num(stretch['tokens'])} | "
            f"{stretch['seconds'] / 3600:.2f} | {'decay' if stretch['decay'] else ''} |"
        )
    return (
        "\n\nThe run in stretches (each an invocation of the train stage; resumed ones continue the same run):\n\n"
        + "\n".join(rows)
        + "\n"
    )


def _recipe(result: dict, train: dict, dataset: dict | None, stretches: list[dict]) -> str:
    """The training recipe's list: architecture, initialisation, optimiser, batch, run, final loss."""
    config = train.get("config", {})
    hours = (train.get("wall_seconds") or 0) / 3600
    recipe = [
        f"- Architecture: GPT-2: {config.get('n_layer')} layers, {config.get('n_embd')} wide, "
        f"{config.get('n_head')} heads, {config.get('n_positions')}-token context; "
        f"vocabulary: {_vocabulary(result, dataset)}; "
        f"{_num(train.get('parameters'))} parameters.",
        f"- Initialisation: {config.get('init')}"
        + (f" from `{config.get('base')}`" if config.get("init") == "pretrained" else "")
        + ".",
        _optimiser(config),
        f"- Batch: {config.get('batch_size')} x {config.get('block_size')} tokens "
        f"x {config.get('grad_accum')} accumulation steps.",
        f"- Run: {_num(train.get('steps'))} steps, {_num(train.get('tokens_seen'))} tokens, "
        f"{hours:.2f} hours on {train.get('device')} ({train.get('precision')}); "
        f"last stretch stopped by {train.get('stop_reason')}." + _stretches(stretches),
        f"- Final validation loss {_num(train.get('final_val_loss'), 3)} nats per model token "
        f"(perplexity {_num(train.get('final_val_ppl'))}; "
        f"per GPT-2 token {_num(train.get('final_val_ppl_per_gpt2_token'))}).",
    ]
    return "\n".join(recipe)


def _data(dataset: dict | None) -> str:
    """What the model was trained on, with the dataset stage's scalar metrics."""
    data_lines = ["arXiv abstracts of machine-learning papers (title, newline, abstract per document)."]
    if dataset:
        shown = {
            k: v for k, v in dataset.items() if isinstance(v, (int, float, str)) and k not in ("stage", "input_dir")
        }
        data_lines += [f"- {key}: {_num(value)}" for key, value in sorted(shown.items())]
    return "\n".join(data_lines)


def _evaluation_and_limitations(result: dict) -> str:
    """The card's sections from Evaluation to the end: how it was measured, the table, samples, limits."""
    return f"""## Evaluation

Perplexity over {result["documents"]:,} documents ({result["tokens"]:,} predicted tokens) of the
`{result["split"]}` split, one definition for all three models (see `model_creation/perplexity.py`):
whole documents, a sliding window over those longer than the context. Per GPT-2 token divides the
same summed loss by the texts' GPT-2 token counts, so models with different tokenizers compare.
Decode latency: greedy, KV cache, batch 1, one CPU thread, {result["latency"]["new_tokens"]} new tokens.

{metrics_table(result)}

## Sample completions (int8 model)

{_samples(result)}
## Limitations

- It imitates the style of abstracts; it has no knowledge of whether what it writes is true.
  Invented results, numbers, dataset names and citations are to be expected.
- Trained on English arXiv ML abstracts only; other domains and languages degrade quickly.
- Context is {result["context_length"]} tokens; longer inputs are cut to their most recent tokens.
- It inherits the biases of the arXiv corpus (topics, phrasing, over-represented subfields).
"""


def render_model_card(
    result: dict,
    train: dict,
    dataset: dict | None,
    has_loss_curve: bool,
    notes: str = "",
    name: str = "distilgpt2-arxiv",
    stretches: list[dict] | None = None,
) -> str:
    """The model card (README.md): what the model is for, its data and recipe, how it measured."""
    curve = "\n![Training and validation loss](loss_curve.png)\n" if has_loss_curve else ""
    about = f"\n## About this build\n\n{notes.strip()}\n" if notes.strip() else ""
    lead = (result.get("perplexity_per_gpt2_token") or {}).get("onnx_int8")
    headline = f"Test perplexity per GPT-2 token (int8): **{_num(lead)}**.\n" if lead else ""
    return f"""# {name}: autocomplete for machine-learning abstracts

{headline}

A small GPT-2-architecture language model trained on arXiv abstracts, exported to ONNX with a
KV cache and quantized to int8 for fast CPU inference. It continues a sentence in the style of
an ML paper abstract ("We propose a method to ..."). This directory is exactly what the
abstract-autocomplete backend loads: `model.onnx` (int8), `config.json`, the tokenizer files
(`tokenizer.json`, ...) and `generation_config.json`.
{about}
## Intended use

Writing assistance for drafting machine-learning abstracts: suggestions that a person reads,
edits and takes responsibility for. Not for generating text presented as factual, not for
unattended publication, and not a source of citations, numbers or claims.

## Data

{_data(dataset)}

## Training recipe

{_recipe(result, train, dataset, stretches or [])}
{curve}
{_evaluation_and_limitations(result)}"""
