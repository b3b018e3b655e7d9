"""Export and quantize stages, checked against the PyTorch model they came from (the oracle)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from model_creation import export, quantize
from model_creation.onnx_graph.decoder import OnnxDecoder, kv_cache_max_diff
from model_creation.onnx_graph.tied_weights import initializer_bytes
from model_creation.stage_dir import StageError
from model_creation.tokenizer import END_OF_TEXT_ID, load_gpt2_tokenizer
from tests.tiny_model import MODEL_DIR_FILES, TINY, build_tiny_torch_model

PROMPTS = ["We propose a method to", "Graph neural networks", "In this paper, we study", "x"]


def prompt_ids(prompt: str) -> list[int]:
    return [END_OF_TEXT_ID] + load_gpt2_tokenizer().encode(prompt)


@pytest.fixture(scope="module")
def torch_model():
    return build_tiny_torch_model(seed=0)


@pytest.mark.parametrize("fixture", ["tiny_fp32_model_dir", "tiny_model_dir"])
def test_model_directory_holds_the_contract_files(fixture, request):
    model_dir = request.getfixturevalue(fixture)
    assert MODEL_DIR_FILES <= {p.name for p in Path(model_dir).iterdir()}
    config = json.loads((model_dir / "config.json").read_text())
    assert {k: config[k] for k in TINY} == TINY
    assert config["bos_token_id"] == config["eos_token_id"] == END_OF_TEXT_ID


def test_graph_has_kv_cache_inputs_and_outputs(tiny_fp32_model_dir):
    graph = onnx.load(tiny_fp32_model_dir / "model.onnx")
    inputs = {i.name: i for i in graph.graph.input}
    outputs = [o.name for o in graph.graph.output]
    layers = TINY["n_layer"]
    past = {f"past_key_values.{i}.{kind}" for i in range(layers) for kind in ("key", "value")}
    assert set(inputs) == {"input_ids", "attention_mask", "position_ids", "logits_start"} | past
    assert outputs == ["logits"] + [f"present.{i}.{kind}" for i in range(layers) for kind in ("key", "value")]
    for name in ("input_ids", "attention_mask", "position_ids"):
        assert inputs[name].type.tensor_type.elem_type == onnx.TensorProto.INT64
    dims = inputs["past_key_values.0.key"].type.tensor_type.shape.dim
    head_dim = TINY["n_embd"] // TINY["n_head"]
    assert [d.dim_value for d in dims][1:4:2] == [TINY["n_head"], head_dim]
    assert dims[0].dim_param and dims[2].dim_param  # batch and past length stay dynamic


def test_tied_embedding_is_stored_once(tiny_fp32_model_dir, torch_model):
    graph = onnx.load(tiny_fp32_model_dir / "model.onnx")
    parameter_bytes = 4 * sum(p.numel() for p in torch_model.parameters())  # tied weight counted once
    assert initializer_bytes(graph) == pytest.approx(parameter_bytes, rel=0.01)
    shapes = [tuple(i.dims) for i in graph.graph.initializer]
    embedding = (TINY["vocab_size"], TINY["n_embd"])
    assert sum(s in (embedding, embedding[::-1]) for s in shapes) == 1
    metrics = json.loads((tiny_fp32_model_dir / "metrics.json").read_text())
    assert metrics["tied_embedding_bytes_saved"] == 4 * TINY["vocab_size"] * TINY["n_embd"]


@pytest.mark.parametrize("graph", ["tiny_fp32_model_dir", "tiny_fused_fp32_model_dir"], ids=["export", "fused"])
@pytest.mark.parametrize("prompt", PROMPTS)
def test_onnx_logits_match_pytorch(graph, torch_model, prompt, request):
    ids = prompt_ids(prompt)
    with torch.no_grad():
        expected = torch_model(torch.tensor([ids])).logits[0].numpy()
    got = OnnxDecoder(request.getfixturevalue(graph) / "model.onnx").logits(ids)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("prompt", PROMPTS)
def test_onnx_kv_cache_greedy_matches_transformers_generate(tiny_fp32_model_dir, torch_model, prompt):
    ids = prompt_ids(prompt)
    with torch.no_grad():
        expected = torch_model.generate(
            torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=12,
            do_sample=False,
            pad_token_id=END_OF_TEXT_ID,
        )[0, len(ids) :].tolist()
    got = OnnxDecoder(tiny_fp32_model_dir / "model.onnx").greedy(ids, 12)
    assert got[: len(expected)] == expected


def test_kv_cache_matches_full_pass(tiny_fp32_model_dir):
    decoder = OnnxDecoder(tiny_fp32_model_dir / "model.onnx")
    assert kv_cache_max_diff(decoder, prompt_ids("Deep networks generalize because"), prefix=2) < 1e-4


def test_export_metrics_record_parity(tiny_fp32_model_dir):
    metrics = json.loads((tiny_fp32_model_dir / "metrics.json").read_text())
    parity = metrics["parity"]
    assert parity["max_abs_logit_diff"] < 1e-4 and parity["greedy_match"] is True
    assert len(parity["cases"]) == len(export.DEFAULT_PROMPTS)
    assert metrics["input_dir"] and metrics["stage"] == "export"


def test_int8_model_is_small_and_close_to_fp32(tiny_model_dir, tiny_fp32_model_dir):
    int8_path, fp32_path = tiny_model_dir / "model.onnx", tiny_fp32_model_dir / "model.onnx"
    assert int8_path.stat().st_size < 0.3 * fp32_path.stat().st_size
    ops = {n.op_type for n in onnx.load(int8_path).graph.node}
    # Integer matmuls, with each row's activations quantized alone (no per-tensor DynamicQuantizeLinear).
    assert "MatMulInteger" in ops and "DynamicQuantizeLinear" not in ops
    ids = prompt_ids("We propose a method to")
    int8, fp32 = OnnxDecoder(int8_path).logits(ids), OnnxDecoder(fp32_path).logits(ids)
    assert np.abs(int8 - fp32).max() < 0.5  # logits here span about +-6
    assert np.corrcoef(int8.ravel(), fp32.ravel())[0, 1] > 0.99
    metrics = json.loads((tiny_model_dir / "metrics.json").read_text())
    assert metrics["quantization"] == "int8" and metrics["activation_scales"] == "per-row"
    assert metrics["attention"] == ("group-query" if metrics["chosen"].startswith("optimized-") else "unfused")
    assert abs(metrics["perplexity_increase"]) < 0.02


def test_quantize_tries_every_variant_and_keeps_the_best(tiny_fp32_model_dir, tmp_path):
    out = quantize.run(quantize.Config(input_dir=str(tiny_fp32_model_dir), output_dir=str(tmp_path / "q")))
    metrics = json.loads((out / "metrics.json").read_text())
    variants = {v["name"]: v for v in metrics["variants"]}
    assert set(variants) == set(quantize.VARIANTS)
    for entry in variants.values():
        assert "error" not in entry, entry
        assert entry["size_bytes"] > 0 and entry["perplexity"] > 1 and entry["max_abs_logit_diff"] > 0
    best = min(variants.values(), key=lambda v: v["perplexity"])
    assert metrics["chosen"] == best["name"]
    assert (out / "model.onnx").stat().st_size == best["size_bytes"]
    assert MODEL_DIR_FILES <= {p.name for p in out.iterdir()}
    # The chosen int8 graph keeps a working KV cache (dynamic activation scales allow small drift).
    assert kv_cache_max_diff(OnnxDecoder(out / "model.onnx"), prompt_ids("We study the problem of"), 2) < 0.5


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"variants": ["fastest"]}, "variants must be"),
        ({"variants": []}, "variants must be"),
        ({"weight_type": "int4"}, "weight_type must be"),
        ({"activations": "per-block"}, "activations must be one of"),
    ],
)
def test_quantize_rejects_bad_config(tiny_fp32_model_dir, tmp_path, changes, message):
    config = quantize.Config(input_dir=str(tiny_fp32_model_dir), output_dir=str(tmp_path / "q"), **changes)
    with pytest.raises(StageError, match=message):
        quantize.run(config)


def test_stages_refuse_unfinished_inputs(tmp_path):
    with pytest.raises(StageError, match="not a finished train output"):
        export.run(export.Config(input_dir=str(tmp_path / "missing"), output_dir=str(tmp_path / "e")))
    with pytest.raises(StageError, match="not a finished export output"):
        quantize.run(quantize.Config(input_dir=str(tmp_path / "missing"), output_dir=str(tmp_path / "q")))


def test_export_fails_when_parity_tolerance_is_not_met(tiny_hf_dir, tmp_path):
    # Float rounding alone makes the difference non-zero, so a zero tolerance must fail loudly.
    config = export.Config(input_dir=str(tiny_hf_dir), output_dir=str(tmp_path / "e"), max_logit_diff=0.0)
    with pytest.raises(StageError, match="ONNX logits differ from PyTorch"):
        export.run(config)
