"""Quantize stage: the fp32 ONNX decoder -> an int8 `model.onnx` (onnxruntime dynamic quantization).

Several variants are tried (weights per tensor or per channel, with or without graph fusions
first: onnxruntime's GPT-2 fusions, then each attention block as one attention kernel,
GroupQueryAttention by default: onnx_graph/attention_fusion); each
is scored with the shared perplexity definition on a small validation sample, and the one that
loses the least perplexity against fp32 is kept.
All variants, with size, perplexity and largest logit difference, go into metrics.json. The
output directory is a complete model directory: int8 graph plus the export's side files.

Activations are quantized per row by default (onnx_graph/row_quantization): each sequence of a
batch gets its own scale, so the server can batch requests and a seed still gives the same text.
`activations="per-tensor"` keeps onnxruntime's one scale per tensor (row-coupled: such a graph is
served one request at a time).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from tqdm.auto import tqdm

from model_creation.onnx_graph.attention_fusion import KERNELS, fuse_attention
from model_creation.onnx_graph.decoder import OnnxDecoder, kv_cache_max_diff
from model_creation.onnx_graph.int8_weights import make_weights_signed
from model_creation.onnx_graph.logits_start import slice_after_activation_quantization
from model_creation.onnx_graph.row_quantization import quantize_activations_per_row
from model_creation.perplexity import document_ids, perplexity
from model_creation.stage_dir import StageError, copy_stage_files, prepare_output_dir, require_finished, write_metrics

VARIANTS = ("per-tensor", "per-channel", "optimized-per-tensor", "optimized-per-channel")
WEIGHT_TYPES = ("qint8", "quint8")
ACTIVATION_SCALES = ("per-row", "per-tensor")  # per-row: batched rows stay independent

# Used when no dataset is configured: short abstract-like texts, enough to rank variants.
BUILTIN_TEXTS = [
    "Attention-based models\nWe propose a simple attention mechanism for sequence modelling that "
    "reduces memory use while matching the accuracy of standard transformers on language tasks.",
    "Robust training under label noise\nDeep networks memorize noisy labels. We study a loss that "
    "down-weights examples with high loss early in training and show improved test accuracy.",
    "Graph neural networks for molecules\nWe present a message passing network that predicts "
    "molecular properties and outperforms previous methods on standard benchmarks.",
    "Efficient reinforcement learning\nWe introduce an off-policy algorithm with a learned model of "
    "the environment that improves sample efficiency on continuous control problems.",
]


@dataclass
class Config:
    input_dir: str = "runs/export"  # the export stage's directory (fp32 model.onnx + side files)
    output_dir: str = "runs/quantize"  # gets the chosen int8 model.onnx + side files
    overwrite: bool = False  # replace a finished run in output_dir
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))  # tried in this order
    weight_type: str = "qint8"  # "qint8" or "quint8": the integer type of quantized weights
    activations: str = "per-row"  # "per-row" (batchable) or "per-tensor" (onnxruntime's dynamic scale)
    # optimized-* variants: "group-query" (cache written in place; masks must be right-padded)
    # or "multi-head" (any padding; the cache is copied every step)
    attention: str = KERNELS[0]
    dataset_dir: str | None = None  # a dataset stage output; its documents/validation is the sample
    eval_texts: list[str] = field(default_factory=lambda: list(BUILTIN_TEXTS))  # used without dataset_dir
    max_eval_docs: int = 32  # documents scored per variant
    max_eval_tokens: int = 256  # tokens per document (keeps scoring quick on a CPU)


def _eval_texts(config: Config) -> list[str]:
    if config.dataset_dir is None:
        return list(config.eval_texts)[: config.max_eval_docs]
    from datasets import load_from_disk

    documents = load_from_disk(str(Path(config.dataset_dir) / "documents"))["validation"]
    return list(documents.select(range(min(config.max_eval_docs, len(documents))))["text"])


def write_optimized_graph(
    source: Path, target: Path, model_config: dict, probe: list[int], attention: str = KERNELS[0]
) -> None:
    """onnxruntime's GPT-2 fusions (LayerNorm, Gelu, ...) and then attention_fusion's (each layer's
    attention as one `attention` kernel), refused if they change the interface, the logits, or
    what the KV cache gives (probed with one document, fed whole and token by token)."""
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(
        str(source), model_type="gpt2", num_heads=model_config["n_head"], hidden_size=model_config["n_embd"]
    )
    fuse_attention(optimized.model, model_config, attention)
    optimized.save_model_to_file(str(target))
    before, after = onnx.load(source, load_external_data=False), onnx.load(target, load_external_data=False)
    if _io_names(before) != _io_names(after):
        raise StageError("graph optimization changed the model's inputs or outputs")
    original, fused = OnnxDecoder(source), OnnxDecoder(target)
    logit_diff = float(np.abs(original.logits(probe) - fused.logits(probe)).max())
    cache_diff = kv_cache_max_diff(fused, probe, prefix=max(1, len(probe) // 2))
    if max(logit_diff, cache_diff) > 1e-3:
        raise StageError(f"graph optimization changed the logits (by {logit_diff:.3g}) or KV cache ({cache_diff:.3g})")


def _io_names(model: onnx.ModelProto) -> tuple[list[str], list[str]]:
    return [i.name for i in model.graph.input], [o.name for o in model.graph.output]


def _quantize(source: Path, target: Path, per_channel: bool, weight_type: str, activations: str) -> list[str]:
    """Returns the weights that make_weights_signed moved from uint8 to int8 (qint8 only)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    types = {"qint8": QuantType.QInt8, "quint8": QuantType.QUInt8}
    # Fused ops (com.microsoft domain) defeat ONNX shape inference; their tensors are float32.
    extra = {"DefaultTensorType": onnx.TensorProto.FLOAT}
    quantize_dynamic(source, target, per_channel=per_channel, weight_type=types[weight_type], extra_options=extra)
    model = onnx.load(target)
    if activations == "per-row":
        quantize_activations_per_row(model)  # a row's scale is its own, sliced or not
    else:
        slice_after_activation_quantization(model)  # last-position logits stay those of the full graph
    # the tied embedding / LM head comes out uint8
    converted = make_weights_signed(model) if weight_type == "qint8" else []
    onnx.save(model, target)
    return converted


def _score(model_path: Path, documents: list[list[int]], reference: list[np.ndarray] | None) -> dict:
    decoder = OnnxDecoder(model_path)
    logits = [decoder.logits(ids) for ids in documents]
    by_ids = dict(zip(map(tuple, documents), logits, strict=True))
    result = perplexity(lambda ids: by_ids[tuple(ids)], documents)
    scored = {"perplexity": result.perplexity, "mean_nll": result.mean_nll, "tokens": result.tokens}
    if reference is not None:
        scored["max_abs_logit_diff"] = float(max(np.abs(a - b).max() for a, b in zip(logits, reference, strict=True)))
    return scored, logits


def validate(config: Config) -> None:
    unknown = [v for v in config.variants if v not in VARIANTS]
    if unknown or not config.variants:
        raise StageError(f"variants must be a non-empty list from {list(VARIANTS)}, got {config.variants}")
    if config.weight_type not in WEIGHT_TYPES:
        raise StageError(f"weight_type must be one of {list(WEIGHT_TYPES)}, got {config.weight_type!r}")
    if config.activations not in ACTIVATION_SCALES:
        raise StageError(f"activations must be one of {list(ACTIVATION_SCALES)}, got {config.activations!r}")
    if config.attention not in KERNELS:
        raise StageError(f"attention must be one of {list(KERNELS)}, got {config.attention!r}")


@dataclass
class Reference:
    """The fp32 model every variant is measured against, and the documents it was scored on."""

    path: Path
    model_config: dict
    documents: list[list[int]]
    scored: dict  # perplexity, mean_nll, tokens, size_bytes
    logits: list[np.ndarray]


def score_fp32(config: Config, input_dir: Path) -> Reference:
    model_config = json.loads((input_dir / "config.json").read_text())
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(input_dir / "tokenizer.json"))
    max_tokens = min(config.max_eval_tokens, model_config["n_positions"])
    documents = [document_ids(tokenizer, t, max_tokens) for t in _eval_texts(config)]
    fp32_path = input_dir / "model.onnx"
    fp32, logits = _score(fp32_path, documents, None)
    fp32["size_bytes"] = fp32_path.stat().st_size
    return Reference(fp32_path, model_config, documents, fp32, logits)


def build_variant(name: str, config: Config, reference: Reference, scratch: Path) -> dict:
    """Variant `name` quantized into `scratch` and scored against the reference; a variant that
    cannot be built is recorded with its error, not fatal."""
    source = reference.path
    entry: dict = {"name": name}
    try:
        if name.startswith("optimized-"):
            source = scratch / "optimized.onnx"
            if not source.exists():
                write_optimized_graph(
                    reference.path, source, reference.model_config, reference.documents[0], config.attention
                )
        target = scratch / f"{name}.onnx"
        per_channel = name.endswith("per-channel")
        entry["weights_made_signed"] = _quantize(source, target, per_channel, config.weight_type, config.activations)
        scored, _ = _score(target, reference.documents, reference.logits)
        entry.update(scored, size_bytes=target.stat().st_size, path=str(target))
        entry["perplexity_increase"] = entry["perplexity"] / reference.scored["perplexity"] - 1
    except Exception as exc:
        entry["error"] = f"{type(exc).__name__}: {exc}"
    return entry


def write_best_variant(config: Config, reference: Reference, target: Path) -> tuple[list[dict], dict]:
    """Every variant built and scored; the one that loses the least perplexity is copied to `target`.
    Returns all the variants' entries and the chosen one's."""
    with tempfile.TemporaryDirectory(prefix="quantize-") as scratch:
        results = [
            build_variant(name, config, reference, Path(scratch))
            for name in tqdm(config.variants, desc="quantize variants")
        ]
        usable = [r for r in results if "error" not in r]
        if not usable:
            raise StageError("no quantization variant could be built: " + "; ".join(r["error"] for r in results))
        best = min(usable, key=lambda r: r["perplexity"])
        shutil.copyfile(best["path"], target)
    for r in results:
        r.pop("path", None)
    return results, best


def run(config: Config) -> Path:
    input_dir = require_finished(Path(config.input_dir), "export")
    validate(config)
    out = prepare_output_dir(Path(config.output_dir), config.overwrite)
    reference = score_fp32(config, input_dir)
    results, best = write_best_variant(config, reference, out / "model.onnx")

    copy_stage_files(input_dir, out, skip=("model.onnx",))
    write_metrics(
        out,
        {
            "stage": "quantize",
            "input_dir": str(input_dir.resolve()),
            "config": dataclasses.asdict(config),
            "chosen": best["name"],
            "quantization": "int8",
            "activation_scales": config.activations,
            "attention": config.attention if best["name"].startswith("optimized-") else "unfused",
            "onnx_size_bytes": (out / "model.onnx").stat().st_size,
            "size_ratio_vs_fp32": (out / "model.onnx").stat().st_size / reference.scored["size_bytes"],
            "perplexity_increase": best["perplexity_increase"],
            "max_abs_logit_diff_vs_fp32": best["max_abs_logit_diff"],
            "fp32": reference.scored,
            "variants": results,
            "eval_documents": len(reference.documents),
        },
    )
    return out
