"""Evaluate stage: test perplexity of the PyTorch, fp32 ONNX and int8 ONNX models, CPU decode
latency, sample completions, and the final model directory the backend serves.

Perplexity is reported per GPT-2 token (comparable across tokenizers) and per model token; both
score whole documents, with a sliding window over those longer than the context
(model_creation/perplexity.py).

The output directory holds the int8 `model.onnx` and every side file from the quantize stage,
the training loss curve, `eval.json`, `report.md`, a model card `README.md` and `metrics.json`.
Earlier stages' directories are found through each stage's recorded `input_dir` unless given.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from backend.engine import Engine, GenerationParams
from backend.generation_contract import default as contract_default
from model_creation.model_card import render_model_card, render_report
from model_creation.onnx_graph.decoder import OnnxDecoder
from model_creation.perplexity import Perplexity, document_ids, gpt2_token_count, perplexity, torch_logits_fn
from model_creation.stage_dir import (
    StageError,
    copy_stage_files,
    prepare_output_dir,
    read_metrics,
    require_finished,
    write_metrics,
)
from model_creation.tokenizer import end_of_text_id, load_gpt2_tokenizer
from model_creation.training.loss_curve import read_log, training_stretches

SAMPLE_PROMPTS = [
    "We propose a method to",
    "Large language models",
    "In this paper, we study the problem of",
    "Reinforcement learning agents",
]


@dataclass
class Config:
    quantize_dir: str = "runs/quantize"  # the quantize stage's output (int8 model directory)
    export_dir: str | None = None  # fp32 ONNX; None = the quantize stage's recorded input_dir
    train_dir: str | None = None  # PyTorch model; None = the export stage's recorded input_dir
    dataset_dir: str | None = None  # test documents; None = the train stage's recorded input_dir
    output_dir: str = "models/distilgpt2-arxiv"  # the final model directory (what the backend loads)
    overwrite: bool = False  # replace a finished run in output_dir
    split: str = "test"  # which documents/ split to score
    max_documents: int = 0  # 0 = the whole split; a positive number scores the first N documents
    intra_op_threads: int = 0  # onnxruntime threads for the perplexity passes (0 = all cores)
    latency_prompt: str = "We propose a method to"
    latency_new_tokens: int = 64  # greedy tokens per latency measurement (one thread, like serving)
    latency_repeats: int = 3  # the fastest repeat is reported
    sample_prompts: list[str] = field(default_factory=lambda: list(SAMPLE_PROMPTS))
    # The model card samples with the generation contract's defaults: what a request without them gets.
    sample_new_tokens: int = int(contract_default("max_new_tokens"))
    sample_temperature: float = contract_default("temperature")
    sample_top_p: float = contract_default("top_p")
    sample_seed: int = 0
    notes: str = ""  # free text for the model card's "About this build" (e.g. why this run differs from the recipe)


def _upstream(given: str | None, downstream: Path, stage: str) -> Path:
    """An earlier stage's directory: the one given, else the one `downstream` recorded as its input."""
    if given is not None:
        return require_finished(Path(given), stage)
    recorded = read_metrics(downstream).get("input_dir")
    if not recorded:
        raise StageError(f"{downstream} does not record its input_dir; pass the {stage} directory explicitly")
    return require_finished(Path(recorded), stage)


def _latency(model_path: Path, prompt_ids: list[int], config: Config) -> dict:
    decoder = OnnxDecoder(model_path, intra_op_threads=1)
    decoder.greedy(prompt_ids, 4)  # warm up allocations before timing
    runs = [decoder.greedy_timed(prompt_ids, config.latency_new_tokens)[1] for _ in range(config.latency_repeats)]
    best = min(runs, key=lambda r: r["per_token_ms"])
    return {**best, "new_tokens": config.latency_new_tokens, "prompt_tokens": len(prompt_ids)}


def _test_documents(config: Config, quantize_dir: Path, dataset_dir: Path):
    """(the model's tokenizer, the split's documents as model token ids, each text's GPT-2 token count)."""
    from datasets import load_from_disk
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(quantize_dir / "tokenizer.json"))
    split = load_from_disk(str(dataset_dir / "documents"))[config.split]
    if config.max_documents > 0:
        split = split.select(range(min(config.max_documents, len(split))))
    texts = list(split["text"])
    documents = [document_ids(tokenizer, text) for text in tqdm(texts, desc="tokenize")]
    gpt2 = load_gpt2_tokenizer()
    gpt2_counts = [gpt2_token_count(gpt2, text) for text in texts]
    return tokenizer, documents, gpt2_counts


def _score(
    config: Config, models: dict[str, Path], documents: list[list[int]], gpt2_counts: list[int], context: int
) -> tuple[dict[str, Perplexity], float, str]:
    """Perplexity of the PyTorch, fp32 and int8 models over the documents: (scores, seconds, torch device)."""
    import torch
    from transformers import GPT2LMHeadModel

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = GPT2LMHeadModel.from_pretrained(models["pytorch"]).to(device).eval()
    logits_fns = {
        "pytorch": torch_logits_fn(model),
        "onnx_fp32": OnnxDecoder(models["onnx_fp32"], config.intra_op_threads).logits,
        "onnx_int8": OnnxDecoder(models["onnx_int8"], config.intra_op_threads).logits,
    }
    start = time.perf_counter()
    scored: dict[str, Perplexity] = {
        name: perplexity(fn, tqdm(documents, desc=f"ppl {name}"), context, gpt2_counts)
        for name, fn in logits_fns.items()
    }
    return scored, time.perf_counter() - start, device


def _samples(config: Config, quantize_dir: Path) -> list[dict]:
    """Greedy and sampled completions of each sample prompt, from the serving engine itself: what the
    model card shows is what users get."""
    engine = Engine.load(quantize_dir, intra_op_threads=1)
    greedy = GenerationParams(max_new_tokens=config.sample_new_tokens, temperature=0)
    sampled = GenerationParams(
        max_new_tokens=config.sample_new_tokens,
        temperature=config.sample_temperature,
        top_p=config.sample_top_p,
        seed=config.sample_seed,
    )
    return [
        {
            "prompt": prompt,
            "greedy": engine.generate(prompt, greedy).completions[0].text,
            "sampled": engine.generate(prompt, sampled).completions[0].text,
        }
        for prompt in config.sample_prompts
    ]


def _write(out: Path, config: Config, result: dict, dirs: dict[str, Path]) -> None:
    """The model directory: the quantize stage's files, loss curve, eval.json, report.md, model card, metrics."""
    quantize_dir, train_dir = dirs["quantize"], dirs["train"]
    copy_stage_files(quantize_dir, out)
    has_curve = (train_dir / "loss_curve.png").exists()
    if has_curve:
        shutil.copyfile(train_dir / "loss_curve.png", out / "loss_curve.png")
    train_metrics = read_metrics(train_dir)
    dataset_metrics = read_metrics(dirs["dataset"])
    (out / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "report.md").write_text(render_report(result))
    stretches = (
        training_stretches(
            read_log(train_dir / "log.jsonl"),
            train_metrics.get("tokens_seen", 0),
            train_metrics.get("wall_seconds", 0.0),
        )
        if (train_dir / "log.jsonl").exists()
        else []
    )
    card = render_model_card(
        result,
        train_metrics,
        dataset_metrics,
        has_curve,
        notes=config.notes,
        name=out.resolve().name,
        stretches=stretches,
    )
    (out / "README.md").write_text(card)
    write_metrics(
        out,
        {
            "stage": "evaluate",
            "input_dir": str(quantize_dir.resolve()),
            "config": dataclasses.asdict(config),
            "quantization": "int8",
            "perplexity_per_gpt2_token": result["perplexity_per_gpt2_token"],
            "perplexity": result["perplexity"],
            "int8_perplexity_increase": result["int8_perplexity_increase"],
            "decode_ms_per_token_int8": result["latency"]["onnx_int8"]["per_token_ms"],
            "onnx_size_bytes": result["size_bytes"]["onnx_int8"],
            "parameters": train_metrics.get("parameters"),
        },
    )


def run(config: Config) -> Path:
    quantize_dir = require_finished(Path(config.quantize_dir), "quantize")
    export_dir = _upstream(config.export_dir, quantize_dir, "export")
    train_dir = _upstream(config.train_dir, export_dir, "train")
    dataset_dir = _upstream(config.dataset_dir, train_dir, "dataset")
    dirs = {"quantize": quantize_dir, "export": export_dir, "train": train_dir, "dataset": dataset_dir}
    out = prepare_output_dir(Path(config.output_dir), config.overwrite)

    model_config = json.loads((quantize_dir / "config.json").read_text())
    context = model_config["n_positions"]
    tokenizer, documents, gpt2_counts = _test_documents(config, quantize_dir, dataset_dir)
    int8_path, fp32_path = quantize_dir / "model.onnx", export_dir / "model.onnx"
    models = {"pytorch": train_dir, "onnx_fp32": fp32_path, "onnx_int8": int8_path}
    scored, perplexity_seconds, device = _score(config, models, documents, gpt2_counts, context)

    latency_ids = [end_of_text_id(tokenizer)] + tokenizer.encode(config.latency_prompt, add_special_tokens=False).ids
    samples = _samples(config, quantize_dir)
    quantized = read_metrics(quantize_dir)

    result = {
        "split": config.split,
        "documents": scored["onnx_int8"].documents,
        "tokens": scored["onnx_int8"].tokens,
        "gpt2_tokens": scored["onnx_int8"].gpt2_tokens,
        "context_length": context,
        "vocab_size": model_config["vocab_size"],
        "perplexity_per_gpt2_token": {name: r.perplexity_per_gpt2_token for name, r in scored.items()},
        "perplexity": {name: r.perplexity for name, r in scored.items()},
        "mean_nll": {name: r.mean_nll for name, r in scored.items()},
        "int8_perplexity_increase": scored["onnx_int8"].perplexity / scored["onnx_fp32"].perplexity - 1,
        "perplexity_seconds": perplexity_seconds,
        "pytorch_device": device,
        "latency": {
            "onnx_fp32": _latency(fp32_path, latency_ids, config),
            "onnx_int8": _latency(int8_path, latency_ids, config),
            "new_tokens": config.latency_new_tokens,
        },
        "size_bytes": {
            "pytorch": sum(p.stat().st_size for p in train_dir.glob("*.safetensors")) or None,
            "onnx_fp32": fp32_path.stat().st_size,
            "onnx_int8": int8_path.stat().st_size,
        },
        "quantization_variant": quantized.get("chosen"),
        # Graphs quantized before the per-row option existed used onnxruntime's per-tensor scales.
        "activation_scales": quantized.get("activation_scales", "per-tensor"),
        # Graphs quantized before the option existed fused attention as MultiHeadAttention.
        "attention": quantized.get("attention")
        or ("multi-head" if str(quantized.get("chosen")).startswith("optimized-") else "unfused"),
        "sampling": {
            "temperature": config.sample_temperature,
            "top_p": config.sample_top_p,
            "seed": config.sample_seed,
        },
        "samples": samples,
        "dirs": {stage: str(path.resolve()) for stage, path in dirs.items()},
    }
    _write(out, config, result, dirs)
    return out
