"""Per-row activation quantization (model_creation/onnx_graph/row_quantization.py).

Oracles: numpy's fp32 matmul for the values, the same rows run alone for independence, and
onnxruntime's own per-tensor graph to show that the check can fail.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic

from backend.engine.padded_cache import measure_alignment
from backend.engine.session import DecoderSession
from bench.row_independence import compare
from model_creation.onnx_graph.row_quantization import quantize_activations_per_row

rng = np.random.default_rng(0)
WEIGHT = rng.normal(size=(32, 24)).astype(np.float32)
# Rows with very different ranges; with one scale per tensor, the small rows lose their precision.
ROWS = (rng.normal(size=(2, 3, 32)) * np.array([1.0, 0.01, 30.0])[None, :, None]).astype(np.float32)


def quantized_matmul(tmp_path, opset: int, per_row: bool) -> ort.InferenceSession:
    """x [batch, seq, 32] @ WEIGHT, dynamically quantized by onnxruntime, then optionally per row."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", 24])],
        [numpy_helper.from_array(WEIGHT, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "fp32.onnx")
    quantize_dynamic(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", weight_type=QuantType.QInt8)
    int8 = onnx.load(tmp_path / "int8.onnx")
    if per_row:
        assert quantize_activations_per_row(int8) == 1
        assert "DynamicQuantizeLinear" not in {n.op_type for n in int8.graph.node}
    onnx.checker.check_model(int8)
    return ort.InferenceSession(int8.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("opset", [13, 18])  # ReduceMax's axes moved from attribute to input in 18
def test_each_row_gets_its_own_scale(tmp_path, opset):
    session = quantized_matmul(tmp_path, opset, per_row=True)
    together = session.run(None, {"x": ROWS})[0]
    exact = ROWS @ WEIGHT
    for b in range(ROWS.shape[0]):
        for s in range(ROWS.shape[1]):
            alone = session.run(None, {"x": ROWS[b : b + 1, s : s + 1]})[0][0, 0]
            np.testing.assert_array_equal(together[b, s], alone)
            # int8 rounding of x and of the weight: a few percent of the row's own magnitude
            assert np.abs(alone - exact[b, s]).max() < 0.03 * np.abs(exact[b, s]).max()


def test_per_tensor_scales_fail_the_same_checks(tmp_path):
    session = quantized_matmul(tmp_path, 18, per_row=False)
    together = session.run(None, {"x": ROWS})[0]
    alone = session.run(None, {"x": ROWS[:, 1:2]})[0]
    exact = ROWS[:, 1:2] @ WEIGHT
    assert not np.array_equal(together[:, 1:2], alone)
    assert np.abs(together[:, 1:2] - exact).max() > 0.03 * np.abs(exact).max()


def test_an_all_zero_row_gives_zeros_not_nan(tmp_path):
    session = quantized_matmul(tmp_path, 18, per_row=True)
    x = ROWS.copy()
    x[0, 1] = 0.0
    y = session.run(None, {"x": x})[0]
    assert np.isfinite(y).all() and not y[0, 1].any()


@pytest.mark.parametrize("base", [2, 93], ids=["short", "to the end of the context"])
@pytest.mark.parametrize(
    ("fixture", "independent"),
    [("tiny_model_dir", True), ("tiny_unfused_model_dir", True), ("tiny_row_coupled_model_dir", False)],
    ids=["per-row in place", "per-row left-padded", "per-tensor in place"],
)
def test_batched_rows_equal_their_runs_alone_only_with_per_row_scales(request, fixture, independent, base):
    """Four prompts of different lengths decoded as one batch laid out as the engine lays it out
    (in place for GroupQueryAttention; else left-padded by multiples of the measured unit), and
    each alone (bench.row_independence.compare): per row, bit for bit the same; per tensor, the
    other rows' ranges change every row's scale."""
    model_path = request.getfixturevalue(fixture) / "model.onnx"
    session = DecoderSession(model_path)
    align = 4 if session.decodes_in_place else measure_alignment(session)  # in place: any spacing will do
    if align is None:
        pytest.skip("no padding unit keeps rows bit-identical on this machine")
    # The longest reaches the tiny model's last position (128) on the last step.
    lengths = [1 + base + align * k for k in (0, 7, 2, 4)]
    worst, _, _ = compare(model_path, steps=6, align=align, lengths=lengths)
    assert (worst == 0.0) if independent else (worst > 1e-3), worst
