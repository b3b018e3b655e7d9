"""Quantize each row's activations with its own scale, so batched rows do not change each other.

Why: onnxruntime's dynamic quantization puts a DynamicQuantizeLinear in front of every integer
matmul. It picks ONE scale and zero point for the whole activation tensor, i.e. over every row of
a batch, so a request's logits depend on which other requests share its decode step (0.25 logit
apart on the shipped model) and the same seed no longer gives the same text under load.

We replace each DynamicQuantizeLinear by an asymmetric uint8 quantization computed per row (per
token) from plain ONNX ops: over the last axis lo = min(x), scale = (max(x) - lo) / 255 and
q = round((x - lo) / scale), so x ~ lo + scale * q with every one of the 256 levels spent on the
row's own range. onnxruntime's MatMulInteger takes only a scalar activation zero point, so the
matmul runs with none and the offset is added after the rescaling, per row:
    x @ W ~ (scale * s_w) * (q @ (W - w0)) + lo * (s_w * colsum(W - w0))
The MatMulInteger -> Cast -> Mul chain is unchanged (its activation scale is now a [..., 1] column)
and one Mul and one Add follow it. Symmetric per-row scales (no offset) were tried first and lost
7% perplexity: a row whose values are mostly on one side of zero then uses half of the levels.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

CONSTANTS = {  # name -> value, shared by every rewritten quantization
    "row_quant_levels": np.array(255.0, dtype=np.float32),
    "row_quant_tiny": np.array(np.finfo(np.float32).tiny, dtype=np.float32),  # a constant row keeps scale > 0
    "row_quant_axes": np.array([-1], dtype=np.int64),
}


class RowQuantizationError(ValueError):
    """A DynamicQuantizeLinear whose consumers are not the integer matmul onnxruntime writes."""


def _reduce(op: str, x: str, out: str, opset: int) -> onnx.NodeProto:
    """ReduceMin/ReduceMax over the last axis, keeping it: [..., K] -> [..., 1] (axes became an input in opset 18)."""
    if opset >= 18:
        return helper.make_node(op, [x, "row_quant_axes"], [out], name=out, keepdims=1)
    return helper.make_node(op, [x], [out], name=out, axes=[-1], keepdims=1)


def _quantize_rows(node: onnx.NodeProto, opset: int) -> tuple[list[onnx.NodeProto], str]:
    """Nodes giving DynamicQuantizeLinear's uint8 and scale outputs per row, and the name of each
    row's offset lo [..., 1] (its zero point output is no longer produced)."""
    x, (quantized, scale, _) = node.input[0], node.output
    p = node.name or quantized  # prefix for the intermediate names
    make = helper.make_node
    lo = f"{p}_row_min"
    return [
        _reduce("ReduceMin", x, lo, opset),
        _reduce("ReduceMax", x, f"{p}_row_max", opset),
        make("Sub", [f"{p}_row_max", lo], [f"{p}_range"], name=f"{p}_Range"),
        make("Div", [f"{p}_range", "row_quant_levels"], [f"{p}_raw_scale"], name=f"{p}_Scale"),
        make("Max", [f"{p}_raw_scale", "row_quant_tiny"], [scale], name=f"{p}_ScaleFloor"),  # [..., 1]
        make("Sub", [x, lo], [f"{p}_from_min"], name=f"{p}_FromMin"),  # >= 0: lo is the row's min
        make("Div", [f"{p}_from_min", scale], [f"{p}_steps"], name=f"{p}_Steps"),  # in [0, 255]
        make("Round", [f"{p}_steps"], [f"{p}_rounded"], name=f"{p}_Round"),
        make("Cast", [f"{p}_rounded"], [quantized], name=f"{p}_Cast", to=onnx.TensorProto.UINT8),
    ], lo


def _scaled_weight_column_sums(graph: onnx.GraphProto, matmul: onnx.NodeProto, rescale: onnx.NodeProto) -> np.ndarray:
    """s_w * colsum(W - w0) [N] (the integer column sums are exact in float64)."""
    arrays = {init.name: init for init in graph.initializer}
    if matmul.input[1] not in arrays:
        raise RowQuantizationError(f"{matmul.name}: the weight {matmul.input[1]} is not an initializer")
    weight = numpy_helper.to_array(arrays[matmul.input[1]]).astype(np.float64)  # [K, N]
    has_zero_point = len(matmul.input) > 3 and matmul.input[3]
    zero_point = numpy_helper.to_array(arrays[matmul.input[3]]).astype(np.float64) if has_zero_point else 0.0
    # The rescaling Mul's scale is Mul(activation scale, weight scale): find the weight scale.
    scales = [n for n in graph.node if n.output[0] in rescale.input and n.op_type == "Mul"]
    weight_scale = [name for n in scales for name in n.input if name in arrays]
    if len(weight_scale) != 1:
        raise RowQuantizationError(f"{matmul.name}: no weight scale found for its rescaling")
    scale = numpy_helper.to_array(arrays[weight_scale[0]]).astype(np.float64)  # scalar or [N]
    return (scale * (weight - zero_point).sum(axis=0)).astype(np.float32)


def _consumers(graph: onnx.GraphProto, name: str) -> list[onnx.NodeProto]:
    return [n for n in graph.node if name in n.input]


def _add_offset(graph: onnx.GraphProto, matmul: onnx.NodeProto, lo: str) -> tuple[str, list[onnx.NodeProto]]:
    """Run `matmul` with no activation zero point; the rescaling Mul now writes a new name, and the
    returned nodes (to insert after it) add lo x s_w x colsum and write the Mul's old output, which
    may be a graph output (`logits`)."""
    casts = _consumers(graph, matmul.output[0])
    rescales = _consumers(graph, casts[0].output[0]) if len(casts) == 1 and casts[0].op_type == "Cast" else []
    if len(rescales) != 1 or rescales[0].op_type != "Mul":
        raise RowQuantizationError(f"{matmul.name}: its int32 output must feed one Cast to float and one Mul")
    rescale = rescales[0]
    output = rescale.output[0]
    sums = output + "_scaled_weight_column_sums"
    graph.initializer.append(numpy_helper.from_array(_scaled_weight_column_sums(graph, matmul, rescale), sums))
    matmul.input[2] = ""  # no activation zero point: q @ (W - w0)
    rescale.output[0] = output + "_before_row_offset"
    return rescale.output[0], [
        helper.make_node("Mul", [lo, sums], [output + "_row_offset"], name=output + "_RowOffset"),  # [..., N]
        helper.make_node("Add", [rescale.output[0], output + "_row_offset"], [output], name=output + "_AddRowOffset"),
    ]


def quantize_activations_per_row(model: onnx.ModelProto) -> int:
    """Rewrite `model` in place; returns how many DynamicQuantizeLinear nodes were replaced."""
    graph = model.graph
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    replacements: dict[str, list[onnx.NodeProto]] = {}  # a quantization's uint8 output -> its nodes
    after: dict[str, list[onnx.NodeProto]] = {}  # a rescaling Mul's output -> the nodes that follow it
    for node in [n for n in graph.node if n.op_type == "DynamicQuantizeLinear"]:
        quantized, _, old_zero_point = node.output
        matmuls = _consumers(graph, quantized)
        if not matmuls or any(
            m.op_type != "MatMulInteger" or list(m.input[0:3:2]) != [quantized, old_zero_point] for m in matmuls
        ):
            raise RowQuantizationError(f"{node.name}: its output must feed MatMulInteger nodes only, as activation")
        replacements[quantized], lo = _quantize_rows(node, opset)
        for matmul in matmuls:
            rescaled, nodes = _add_offset(graph, matmul, lo)
            after[rescaled] = nodes
    nodes = []
    for node in graph.node:
        replaced = node.op_type == "DynamicQuantizeLinear" and node.output[0] in replacements
        nodes.extend(replacements[node.output[0]] if replaced else [node])
        nodes.extend(after.get(node.output[0], []))
    if replacements:
        existing = {init.name for init in graph.initializer}
        graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in CONSTANTS.items() if k not in existing)
        # The activation scales were scalars; shapes recorded for them and what they feed no longer hold.
        kept = [info for info in graph.value_info if not info.name.endswith(("_scale", "_quant_scales_mul:0"))]
        del graph.value_info[:]
        graph.value_info.extend(kept)
    del graph.node[:]
    graph.node.extend(nodes)
    return len(replacements)
