"""Recovering a PyTorch GPT-2 from an int8 model directory (model_creation/onnx_graph/dequantize.py).

Oracles: the seeded PyTorch model the int8 directory was built from (each weight within half a
quantization step of it), and the integers of the int8 graph itself (quantizing the recovered
weights again per tensor gives them back).

The unfused int8 tiny model: the tiny model's layer norms and biases keep their initial values
(ones and zeros, the same in every layer), and onnxruntime's optimizer merges identical
initializers under one name, so a fused tiny graph no longer names each layer's; a trained
model's differ, and the shipped (fused) model recovers whole.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from model_creation import export, quantize
from model_creation.onnx_graph import dequantize
from model_creation.stage_dir import StageError
from tests.tiny_model import QUANTIZE_TEXTS, build_tiny_torch_model


@pytest.fixture(scope="module")
def recovered(tiny_unfused_model_dir, tmp_path_factory):
    return dequantize.run(tiny_unfused_model_dir, tmp_path_factory.mktemp("recovered") / "hf")


def test_weights_are_within_half_a_step_of_the_trained_ones(tiny_unfused_model_dir):
    original = {k: v.numpy() for k, v in build_tiny_torch_model().state_dict().items()}
    config = json.loads((tiny_unfused_model_dir / "config.json").read_text())
    weights = dequantize.recover_state_dict(tiny_unfused_model_dir / "model.onnx", config)
    assert set(weights) == {k for k in original if k != "lm_head.weight" and not k.endswith(".attn.bias")}
    for name, value in weights.items():
        want = original[name]
        if name.endswith((".c_attn.weight", ".c_proj.weight", ".c_fc.weight", "wte.weight", "wpe.weight")):
            step = (want.max() - min(want.min(), 0)) / 127  # the coarsest of int8 and uint8 steps
            assert np.abs(value - want).max() <= step / 2 + 1e-7, name
            assert not np.array_equal(value, want), name  # it was quantized
        else:  # layer norms and biases stay fp32
            np.testing.assert_array_equal(value, want, err_msg=name)


def test_the_recovered_directory_exports_and_quantizes_to_the_same_integers(
    recovered, tiny_unfused_model_dir, tmp_path
):
    exported = export.run(
        export.Config(input_dir=str(recovered), output_dir=str(tmp_path / "export"), parity_new_tokens=4)
    )
    assert json.loads((exported / "metrics.json").read_text())["parity"]["greedy_match"] is True
    again = quantize.run(
        quantize.Config(
            input_dir=str(exported),
            output_dir=str(tmp_path / "int8"),
            variants=["per-tensor"],
            eval_texts=QUANTIZE_TEXTS,
        )
    )

    def integers(model_dir):
        graph = onnx.load(model_dir / "model.onnx").graph
        return {i.name: numpy_helper.to_array(i) for i in graph.initializer if i.name.endswith("_quantized")}

    before, after = integers(tiny_unfused_model_dir), integers(again)
    assert before.keys() == after.keys() and len(before) > 4
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)


def test_a_graph_that_is_not_gpt2_is_refused_with_the_reason(tiny_unfused_model_dir, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.onnx").write_bytes((tiny_unfused_model_dir / "model.onnx").read_bytes())
    config = json.loads((tiny_unfused_model_dir / "config.json").read_text())
    (broken / "config.json").write_text(json.dumps({**config, "vocab_size": 1000}))  # no table has 1000 rows
    with pytest.raises(StageError, match="no Gather reads a table with 1000 rows"):
        dequantize.run(broken, tmp_path / "out")


def test_the_command_line_reports_errors_without_a_traceback(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        dequantize.main([str(tmp_path / "missing"), str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'missing'} has no model.onnx and config.json\n"
    assert not (tmp_path / "out").exists()
