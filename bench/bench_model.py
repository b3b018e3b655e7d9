"""The decode benchmarks' model: DistilGPT2's shape (6 layers, 768 wide, 12 heads, GPT-2
vocabulary) with seeded random weights, exported with a KV cache (fp32, and int8 in the variant
the shipped model uses) and without one as the original app did, built once into
artifacts/bench-model; and prompts of exact token counts cut from real abstracts.
bench/decode.py and bench/prefill.py time it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from backend.engine.engine import row_coupled
from backend.engine.session import IN_PLACE_ATTENTION, LOGITS_START, graph_has

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "artifacts" / "bench-model"
PROMPT_TOKENS = (64, 400)
SHIPPED_EVAL = REPO / "models" / "arxiv-gpt2-6x512-bpe16k" / "eval.json"
SHIPPED_GRAPH = SHIPPED_EVAL.with_name("model.onnx")


def shipped_variant() -> str:
    """The int8 variant the quantize stage chose for the shipped model, so (d) measures what serves."""
    try:
        return json.loads(SHIPPED_EVAL.read_text())["quantization_variant"] or "per-tensor"
    except (OSError, KeyError):
        return "per-tensor"


def shipped_activations() -> str:
    """How the shipped graph scales activations: onnxruntime's DynamicQuantizeLinear is per tensor,
    anything else the quantize stage writes is per row (read from the graph, which cannot be stale)."""
    try:
        return "per-tensor" if row_coupled(SHIPPED_GRAPH) else "per-row"
    except OSError:
        return "per-row"


def shipped_attention() -> str:
    """The attention kernel the shipped graph was fused with (quantize's --attention), read from the graph."""
    try:
        return "group-query" if graph_has(SHIPPED_GRAPH, IN_PLACE_ATTENTION) else "multi-head"
    except OSError:
        return "group-query"


def int8_dir(variant: str, activations: str, attention: str) -> Path:
    """Where the bench model quantized this way lives: named after the quantize options it used."""
    return CACHE / f"int8-{variant}-{activations}-{attention}"


def build_models() -> dict[str, Path]:
    """Random-weight DistilGPT2 -> export (KV cache) -> int8, plus the original's no-cache int8 export."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from optimum.exporters.onnx import main_export
    from transformers import GPT2Config, GPT2LMHeadModel

    from model_creation import export
    from model_creation.stage_dir import write_metrics
    from model_creation.tokenizer import save_tokenizer

    variant, activations, attention = shipped_variant(), shipped_activations(), shipped_attention()
    paths = {name: CACHE / name for name in ("hf", "fp32", "nocache-fp32", "nocache-int8")}
    paths["int8"] = int8_dir(variant, activations, attention)
    if (paths["nocache-int8"] / "model.onnx").exists():
        if not has_logits_start(paths["fp32"] / "model.onnx"):  # exported before issue 12: export again
            export.run(export.Config(input_dir=str(paths["hf"]), output_dir=str(paths["fp32"]), overwrite=True))
            quantize_int8(paths["fp32"], paths["int8"], variant, activations, attention)
        if not (paths["int8"] / "model.onnx").exists():
            quantize_int8(paths["fp32"], paths["int8"], variant, activations, attention)
        return paths
    config = GPT2Config.from_json_file(str(REPO / "model_creation/assets/gpt2/distilgpt2-config.json"))
    torch.manual_seed(0)
    GPT2LMHeadModel(config).eval().save_pretrained(paths["hf"])
    save_tokenizer(paths["hf"])
    write_metrics(paths["hf"], {"stage": "train", "note": "random weights for the decode benchmark"})
    export.run(export.Config(input_dir=str(paths["hf"]), output_dir=str(paths["fp32"]), overwrite=True))
    quantize_int8(paths["fp32"], paths["int8"], variant, activations, attention)
    # The original app: optimum's export without past, then the same dynamic int8 quantization.
    main_export(
        str(paths["hf"]), paths["nocache-fp32"], task="text-generation", do_validation=False, local_files_only=True
    )
    paths["nocache-int8"].mkdir(parents=True, exist_ok=True)
    quantize_dynamic(
        paths["nocache-fp32"] / "model.onnx", paths["nocache-int8"] / "model.onnx", weight_type=QuantType.QInt8
    )
    return paths


def has_logits_start(model_path: Path) -> bool:
    import onnx

    return any(i.name == LOGITS_START for i in onnx.load(model_path).graph.input)


def quantize_int8(fp32: Path, out: Path, variant: str, activations: str, attention: str) -> None:
    """One variant is enough for speed (the pipeline picks by perplexity): the shipped model's."""
    from model_creation import quantize

    quantize.run(
        quantize.Config(
            input_dir=str(fp32),
            output_dir=str(out),
            overwrite=True,
            variants=[variant],
            activations=activations,
            attention=attention,
            max_eval_docs=2,
        )
    )


def prompts(tokenizer) -> dict[int, str]:
    """Real abstracts cut so that each prompt encodes to exactly n tokens."""

    def encode(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False).ids

    rows = (REPO / "tests/fixtures/corpus/ml-abstracts-sample.jsonl").read_text().splitlines()
    ids = encode("\n\n".join(json.loads(r)["abstract"] for r in rows[:40]))
    out = {}
    for n in PROMPT_TOKENS:
        cut = n
        while (length := len(encode(tokenizer.decode(ids[:cut])))) != n:  # decoding can merge tokens
            cut += 1 if length < n else -1
        out[n] = tokenizer.decode(ids[:cut])
    return out
