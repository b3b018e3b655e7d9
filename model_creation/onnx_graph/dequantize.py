"""Recover a PyTorch GPT-2 directory from an int8 ONNX decoder: every weight dequantized.

Why: a shipped model directory holds only the int8 graph; the training run it came from lives in
git-ignored `runs/` and can be lost. The export and quantize stages start from a HF model
directory, so without this a new graph feature (a new input, a new quantization) would need the
model retrained. Dequantizing gives weights that the int8 graph computes with (w = (q - zero
point) x scale), so re-exporting and re-quantizing them per tensor gives back the same integers;
a finer quantization (per block) of them adds little error on top of the first.

    python -m model_creation.onnx_graph.dequantize models/arxiv-gpt2-6x512-bpe16k runs/recovered

The output directory is what the train stage writes (config, weights, tokenizer, generation
config) plus a metrics.json saying where it came from, so `export --input-dir` accepts it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from model_creation.stage_dir import StageError, copy_stage_files, prepare_output_dir, write_metrics

QUANTIZED, SCALE, ZERO_POINT = "_quantized", "_scale", "_zero_point"  # onnxruntime's suffixes
SIDE_FILES_SKIPPED = ("model.onnx", "eval.json", "report.md", "README.md", "loss_curve.png")


class _Initializers:
    """The graph's float values by name: stored as is, or as quantized integers with scale and zero
    point. The exporter stores equal weights once (all-zero biases of an untrained model, say) and
    names the others with Identity nodes, which are followed."""

    def __init__(self, graph: onnx.GraphProto):
        self.arrays = {init.name: init for init in graph.initializer}
        self.aliases = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity"}

    def value(self, name: str) -> np.ndarray | None:
        arrays = self.arrays
        while name not in arrays and name + QUANTIZED not in arrays and name in self.aliases:
            name = self.aliases[name]
        if name in arrays:
            return numpy_helper.to_array(arrays[name]).astype(np.float32)
        if name + QUANTIZED not in arrays:
            return None
        quantized = numpy_helper.to_array(arrays[name + QUANTIZED]).astype(np.float32)
        scale = numpy_helper.to_array(arrays[name + SCALE]).astype(np.float32)
        zero_point = numpy_helper.to_array(arrays[name + ZERO_POINT]).astype(np.float32)
        # Per-tensor scales are scalars; per-channel ones run along the output (last) axis.
        return (quantized - zero_point) * scale


def _token_embedding(graph: onnx.GraphProto, initializers: _Initializers, vocab_size: int) -> np.ndarray:
    """wte [vocab, embd]: the table a Gather reads that has a vocab-sized axis (with tied weights
    it is the LM head's [embd, vocab] weight, gathered along axis 1)."""
    for gather in (n for n in graph.node if n.op_type == "Gather"):
        table = initializers.value(gather.input[0].removesuffix(QUANTIZED))
        axis = next((a.i for a in gather.attribute if a.name == "axis"), 0)
        if table is not None and table.ndim == 2 and table.shape[axis] == vocab_size:
            return table.T if axis == 1 else table  # [vocab, embd]
    raise StageError(f"no Gather reads a table with {vocab_size} rows: not a GPT-2 decoder graph")


def recover_state_dict(model_path: Path, model_config: dict) -> dict[str, np.ndarray]:
    """GPT2LMHeadModel's parameters by name, read from the graph at `model_path`; every one of them
    but the tied lm_head (and the causal-mask buffers) is there, shaped as GPT-2 has it."""
    from transformers import GPT2Config, GPT2LMHeadModel

    graph = onnx.load(model_path).graph
    initializers = _Initializers(graph)
    expected = GPT2LMHeadModel(GPT2Config(**model_config)).state_dict()
    wte = _token_embedding(graph, initializers, model_config["vocab_size"])
    weights: dict[str, np.ndarray] = {"transformer.wte.weight": wte}
    for name, tensor in expected.items():
        if name in weights or name == "lm_head.weight" or name.endswith(".attn.bias"):
            continue  # lm_head is tied to wte; attn.bias is a causal-mask buffer, not a weight
        value = initializers.value(name)
        if value is None:
            raise StageError(f"{name} is not in {model_path}")
        if tuple(value.shape) != tuple(tensor.shape):
            raise StageError(f"{name} has shape {list(value.shape)} in the graph, {list(tensor.shape)} in GPT-2")
        weights[name] = value
    return weights


def run(model_dir: Path, output_dir: Path, overwrite: bool = False) -> Path:
    """Write a HF GPT-2 directory with the dequantized weights of `model_dir`/model.onnx."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    if not ((model_dir / "model.onnx").is_file() and (model_dir / "config.json").is_file()):
        raise StageError(f"{model_dir} has no model.onnx and config.json")
    model_config = json.loads((model_dir / "config.json").read_text())
    weights = recover_state_dict(model_dir / "model.onnx", model_config)
    out = prepare_output_dir(output_dir, overwrite)
    model = GPT2LMHeadModel(GPT2Config(**model_config))
    # strict=False: only the tied lm_head and the mask buffers are left out (recover_state_dict checks).
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=False)
    model.tie_weights()
    model.save_pretrained(out)
    copy_stage_files(model_dir, out, skip=SIDE_FILES_SKIPPED + ("config.json",))
    write_metrics(
        out,
        {
            "stage": "dequantize",
            "input_dir": str(model_dir.resolve()),
            "parameters": sum(int(v.size) for v in weights.values()),
            "note": "weights dequantized from the int8 graph; the training run is not in this directory",
        },
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m model_creation.onnx_graph.dequantize", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("model_dir", type=Path, help="a model directory with model.onnx and config.json")
    parser.add_argument("output_dir", type=Path, help="gets a HF GPT-2 directory (export's --input-dir)")
    parser.add_argument("--overwrite", action="store_true", help="replace a finished output_dir")
    args = parser.parse_args(argv)
    try:
        print(run(args.model_dir, args.output_dir, args.overwrite))
    except StageError as error:
        parser.exit(2, f"error: {error}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
