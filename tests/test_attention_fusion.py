"""model_creation.onnx_graph.attention_fusion on the tiny export, checked against the PyTorch model (the oracle).

Logits against PyTorch are checked for the fused graph beside the export's, in
test_export_quantize; the engine's own tests (greedy vs transformers, KV cache vs recomputation,
n completions) run on it through test_engine's `fp32` fixture.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from model_creation.onnx_graph.attention_fusion import AttentionFusionError, fuse_attention
from model_creation.tokenizer import END_OF_TEXT_ID, load_gpt2_tokenizer
from tests.tiny_model import TINY, build_tiny_torch_model

PROMPT = "We propose a method to"


@pytest.fixture(scope="module")
def torch_model():
    return build_tiny_torch_model(seed=0)


@pytest.fixture(scope="module")
def fused(tiny_fused_fp32_model_dir):
    return ort.InferenceSession(str(tiny_fused_fp32_model_dir / "model.onnx"), providers=["CPUExecutionProvider"])


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


def test_every_layer_is_one_multi_head_attention_and_the_interface_is_unchanged(
    tiny_fp32_model_dir, tiny_fused_fp32_model_dir
):
    before = onnx.load(tiny_fp32_model_dir / "model.onnx", load_external_data=False)
    after = onnx.load(tiny_fused_fp32_model_dir / "model.onnx", load_external_data=False)
    ops = [n.op_type for n in after.graph.node]
    assert ops.count("MultiHeadAttention") == TINY["n_layer"]
    assert "Softmax" not in ops and "IsNaN" not in ops  # the unfused attention and mask subgraph are gone
    assert len(after.graph.node) < len(before.graph.node) / 3

    def signature(model):
        return [(v.name, v.type.tensor_type.elem_type) for v in [*model.graph.input, *model.graph.output]]

    assert signature(after) == signature(before)


def test_left_padding_is_masked_like_an_unpadded_sequence(fused, torch_model):
    # Row 0 is three pad tokens then the prompt; its real positions must score as the prompt alone.
    ids = [END_OF_TEXT_ID, *load_gpt2_tokenizer().encode(PROMPT)]
    pad = 3
    input_ids = np.array([[0] * pad + ids, ids + [0] * pad])
    attention_mask = np.array([[0] * pad + [1] * len(ids), [1] * (len(ids) + pad)])
    position_ids = np.array([[0] * pad + list(range(len(ids))), list(range(len(ids) + pad))])
    logits = run(fused, input_ids, attention_mask, position_ids)
    with torch.no_grad():
        expected = torch_model(torch.tensor([ids])).logits[0].numpy()
    np.testing.assert_allclose(logits[0, pad:], expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(logits[1, : len(ids)], expected, atol=1e-4, rtol=0)


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
