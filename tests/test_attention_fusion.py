"""model_creation.onnx_graph.attention_fusion on the tiny export, checked against the PyTorch model (the oracle).

Logits against PyTorch are checked for the fused graph beside the export's, in
test_export_quantize; the engine's own tests (greedy vs transformers, KV cache vs recomputation,
n completions) run on it through test_engine's `fp32` fixture.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from model_creation.onnx_graph.attention_fusion import KERNELS, AttentionFusionError, fuse_attention
from model_creation.quantize import write_optimized_graph
from model_creation.tokenizer import END_OF_TEXT_ID, load_gpt2_tokenizer
from tests.tiny_model import TINY, build_tiny_torch_model

PROMPT = "We propose a method to"
PROBE = [50256, 464, 2746, 318, 257, 1332, 13]  # the sequence write_optimized_graph checks the fusion on


@pytest.fixture(scope="module")
def torch_model():
    return build_tiny_torch_model(seed=0)


OP_TYPES = {"group-query": "GroupQueryAttention", "multi-head": "MultiHeadAttention"}


@pytest.fixture(scope="module")
def fused_dirs(tiny_fp32_model_dir, tiny_fused_fp32_model_dir, tmp_path_factory):
    """kernel -> the fp32 model directory fused with it (the quantize stage's default is group-query)."""
    dest = tmp_path_factory.mktemp("tiny-fused-multi-head") / "model"
    shutil.copytree(tiny_fp32_model_dir, dest)
    config = json.loads((dest / "config.json").read_text())
    write_optimized_graph(tiny_fp32_model_dir / "model.onnx", dest / "model.onnx", config, PROBE, "multi-head")
    return {"group-query": tiny_fused_fp32_model_dir, "multi-head": dest}


def session_for(fused_dirs, kernel):
    return ort.InferenceSession(str(fused_dirs[kernel] / "model.onnx"), providers=["CPUExecutionProvider"])


def run(session, input_ids: np.ndarray, attention_mask: np.ndarray, position_ids: np.ndarray) -> np.ndarray:
    """One pass with an empty past: logits [batch, seq, vocab]."""
    batch = input_ids.shape[0]
    head_dim = TINY["n_embd"] // TINY["n_head"]
    feed = {
        i.name: np.zeros((batch, TINY["n_head"], 0, head_dim), np.float32)
        for i in session.get_inputs()
        if i.name.startswith("past_key_values.")
    }
    feed.update(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)
    return session.run(["logits"], feed)[0]


@pytest.mark.parametrize("kernel", KERNELS)
def test_every_layer_is_one_fused_attention_and_the_interface_is_unchanged(tiny_fp32_model_dir, fused_dirs, kernel):
    before = onnx.load(tiny_fp32_model_dir / "model.onnx", load_external_data=False)
    after = onnx.load(fused_dirs[kernel] / "model.onnx", load_external_data=False)
    ops = [n.op_type for n in after.graph.node]
    assert ops.count(OP_TYPES[kernel]) == TINY["n_layer"]
    assert "Softmax" not in ops and "IsNaN" not in ops  # the unfused attention and mask subgraph are gone
    assert len(after.graph.node) < len(before.graph.node) / 3

    def signature(model):
        return [(v.name, v.type.tensor_type.elem_type) for v in [*model.graph.input, *model.graph.output]]

    assert signature(after) == signature(before)


def test_left_padding_is_masked_like_an_unpadded_sequence(fused_dirs, torch_model):
    # multi-head: row 0 is three pad tokens then the prompt; its real positions must score as the prompt alone.
    ids = [END_OF_TEXT_ID, *load_gpt2_tokenizer().encode(PROMPT)]
    pad = 3
    input_ids = np.array([[0] * pad + ids, ids + [0] * pad])
    attention_mask = np.array([[0] * pad + [1] * len(ids), [1] * (len(ids) + pad)])
    position_ids = np.array([[0] * pad + list(range(len(ids))), list(range(len(ids) + pad))])
    logits = run(session_for(fused_dirs, "multi-head"), input_ids, attention_mask, position_ids)
    with torch.no_grad():
        expected = torch_model(torch.tensor([ids])).logits[0].numpy()
    np.testing.assert_allclose(logits[0, pad:], expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(logits[1, : len(ids)], expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("kernel", KERNELS)
def test_right_padding_is_masked_like_an_unpadded_sequence(fused_dirs, torch_model, kernel):
    # Row 0 is the prompt then three pad tokens (what group-query's cache layout is); row 1 is
    # longer and unpadded. Every real position scores as its sequence alone.
    ids = [END_OF_TEXT_ID, *load_gpt2_tokenizer().encode(PROMPT)]
    longer = [*ids, *load_gpt2_tokenizer().encode(" of")][:-1] + [13, 13, 13]
    pad = len(longer) - len(ids)
    input_ids = np.array([ids + [0] * pad, longer])
    attention_mask = np.array([[1] * len(ids) + [0] * pad, [1] * len(longer)])
    position_ids = np.array([list(range(len(ids))) + [0] * pad, list(range(len(longer)))])
    logits = run(session_for(fused_dirs, kernel), input_ids, attention_mask, position_ids)
    with torch.no_grad():
        expected = [torch_model(torch.tensor([row])).logits[0].numpy() for row in (ids, longer)]
    np.testing.assert_allclose(logits[0, : len(ids)], expected[0], atol=1e-4, rtol=0)
    np.testing.assert_allclose(logits[1], expected[1], atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx"),
        ({"reorder_and_upcast_attn": True}, "reorder_and_upcast_attn"),
        ({"scale_attn_weights": False}, "scale_attn_weights"),
    ],
)
def test_attention_variants_it_cannot_express_are_refused(tiny_fp32_model_dir, change, message):
    config = {**json.loads((tiny_fp32_model_dir / "config.json").read_text()), **change}
    model = onnx.load(tiny_fp32_model_dir / "model.onnx")
    with pytest.raises(AttentionFusionError, match=message):
        fuse_attention(model, config)


def test_an_unknown_kernel_or_an_old_opset_is_refused(tiny_fp32_model_dir):
    model = onnx.load(tiny_fp32_model_dir / "model.onnx")
    config = json.loads((tiny_fp32_model_dir / "config.json").read_text())
    with pytest.raises(AttentionFusionError, match="kernel must be one of"):
        fuse_attention(model, config, "flash")
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = 12
    with pytest.raises(AttentionFusionError, match="opset 13 or later, the graph has 12"):
        fuse_attention(model, config)


def test_a_graph_without_kv_cache_is_refused(tiny_fp32_model_dir):
    model = onnx.load(tiny_fp32_model_dir / "model.onnx")
    config = json.loads((tiny_fp32_model_dir / "config.json").read_text())

    def rename(names):
        return [name.replace("present.", "kv.") for name in names]

    for node in model.graph.node:
        node.output[:] = rename(node.output)
        node.input[:] = rename(node.input)
    for output in model.graph.output:
        output.name = output.name.replace("present.", "kv.")
    with pytest.raises(AttentionFusionError, match="no present.0.key"):
        fuse_attention(model, config)


def test_an_unexpected_attention_shape_is_refused(tiny_fp32_model_dir):
    # present.0.key no longer comes straight from Concat(past, new): the rewrite must not guess.
    model = onnx.load(tiny_fp32_model_dir / "model.onnx")
    config = json.loads((tiny_fp32_model_dir / "config.json").read_text())
    concat = next(n for n in model.graph.node if "present.0.key" in n.output)
    concat.output[0] = "present.0.key.raw"
    model.graph.node.append(onnx.helper.make_node("Identity", ["present.0.key.raw"], ["present.0.key"]))
    with pytest.raises(AttentionFusionError, match="layer 0: present is not Concat"):
        fuse_attention(model, config)
