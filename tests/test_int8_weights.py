"""model_creation.onnx_graph.int8_weights on the tiny model quantized by onnxruntime: exact, and only where safe."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import helper
from onnxruntime.quantization import QuantType, quantize_dynamic

from model_creation import quantize
from model_creation.onnx_graph.decoder import OnnxDecoder
from model_creation.onnx_graph.int8_weights import make_weights_signed
from model_creation.tokenizer import END_OF_TEXT_ID, load_gpt2_tokenizer

PROMPTS = ["We propose a method to", "Graph neural networks for molecules", "x"]


def matmul_weight_types(model: onnx.ModelProto) -> dict[str, int]:
    initializers = {i.name: i.data_type for i in model.graph.initializer}
    return {n.input[1]: initializers[n.input[1]] for n in model.graph.node if n.op_type == "MatMulInteger"}


@pytest.fixture(scope="module")
def unsigned_path(tiny_fp32_model_dir, tmp_path_factory):
    """onnxruntime's own quantization of the tiny export, before any rewrite."""
    path = tmp_path_factory.mktemp("int8-weights") / "quantized.onnx"
    quantize_dynamic(tiny_fp32_model_dir / "model.onnx", path, weight_type=QuantType.QInt8)
    return path


def test_onnxruntime_leaves_the_tied_head_unsigned(unsigned_path):
    # The reason the rewrite exists: the embedding Gather's uint8 table is also the LM head weight.
    types = matmul_weight_types(onnx.load(unsigned_path))
    assert list(types.values()).count(onnx.TensorProto.UINT8) == 1


def test_the_rewrite_is_exact_and_leaves_no_unsigned_weight(unsigned_path, tmp_path):
    model = onnx.load(unsigned_path)
    converted = make_weights_signed(model)
    assert len(converted) == 1
    assert set(matmul_weight_types(model).values()) == {onnx.TensorProto.INT8}
    onnx.save(model, tmp_path / "signed.onnx")
    before, after = OnnxDecoder(unsigned_path), OnnxDecoder(tmp_path / "signed.onnx")
    tokenizer = load_gpt2_tokenizer()
    for prompt in PROMPTS:
        ids = [END_OF_TEXT_ID, *tokenizer.encode(prompt)]
        np.testing.assert_array_equal(after.logits(ids), before.logits(ids))  # integer products are identical


def test_a_weight_with_another_kind_of_reader_is_left_alone(unsigned_path):
    model = onnx.load(unsigned_path)
    weight = next(name for name, kind in matmul_weight_types(model).items() if kind == onnx.TensorProto.UINT8)
    model.graph.node.append(helper.make_node("Cast", [weight], ["weight_as_float"], to=onnx.TensorProto.FLOAT))
    assert make_weights_signed(model) == []
    assert matmul_weight_types(model)[weight] == onnx.TensorProto.UINT8


@pytest.mark.parametrize(("weight_type", "signed"), [("qint8", True), ("quint8", False)])
def test_quantize_stage_applies_it_to_int8_weights_only(tiny_fp32_model_dir, tmp_path, weight_type, signed):
    config = quantize.Config(
        input_dir=str(tiny_fp32_model_dir),
        output_dir=str(tmp_path / "q"),
        variants=["per-tensor"],
        weight_type=weight_type,
    )
    out = quantize.run(config)
    types = set(matmul_weight_types(onnx.load(out / "model.onnx")).values())
    assert types == ({onnx.TensorProto.INT8} if signed else {onnx.TensorProto.UINT8})
    (entry,) = json.loads((out / "metrics.json").read_text())["variants"]
    assert bool(entry["weights_made_signed"]) is signed
