"""Let a caller ask an exported decoder for the logits of its last positions only.

Why: the LM head (hidden x vocab per position) dominates the prefill of a long prompt, yet
serving needs only the last position's logits, while perplexity needs every position's. We
add one graph input, `logits_start` (int64 [1]), backed by an initializer holding 0, and a
Slice of the hidden states along the sequence axis from that index, in front of the LM head
MatMul. Fed nothing, the graph computes every position as before (perplexity, parity checks,
any other ONNX consumer); fed -1 it computes the last position only. The Slice sits outside
the MatMul, so the quantize stage's fusions leave it alone. Dynamic int8 quantization would then
scale the LM head's input by the largest value of the kept positions only, changing the last
row's logits slightly; `slice_after_activation_quantization` moves the Slice past that
quantization, so the int8 graph's last row is bit-identical to the all-positions one's.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from backend.engine.session import LOGITS_START

LOGITS = "logits"  # the export's output; the LM head MatMul writes it
SEQUENCE_AXIS = 1  # hidden states are [batch, seq, embd]


class LogitsStartError(ValueError):
    """The graph's logits do not come from a MatMul with a weight initializer."""


def add_logits_start(model: onnx.ModelProto) -> None:
    """Rewrite `model` in place: Slice(hidden, [logits_start], [end], [1]) before the LM head."""
    graph = model.graph
    if any(i.name == LOGITS_START for i in graph.input):
        raise LogitsStartError(f"the graph already has a {LOGITS_START} input")
    weights = {init.name for init in graph.initializer}
    head = next((n for n in graph.node if LOGITS in n.output), None)
    if head is None or head.op_type != "MatMul" or head.input[1] not in weights:
        found = "nothing" if head is None else head.op_type
        raise LogitsStartError(f"{LOGITS} must come from a MatMul with a weight initializer, found {found}")
    hidden = head.input[0]
    sliced = hidden + "_from_logits_start"
    ends, axes = LOGITS_START + "_end", LOGITS_START + "_axis"
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.zeros(1, dtype=np.int64), LOGITS_START),  # default: every position
            numpy_helper.from_array(np.array([np.iinfo(np.int64).max]), ends),  # through the last position
            numpy_helper.from_array(np.array([SEQUENCE_AXIS], dtype=np.int64), axes),
        ]
    )
    # An input with an initializer of the same name is optional: the initializer is its default.
    graph.input.append(helper.make_tensor_value_info(LOGITS_START, onnx.TensorProto.INT64, [1]))
    slice_node = helper.make_node("Slice", [hidden, LOGITS_START, ends, axes], [sliced], name="Slice_logits_start")
    nodes = list(graph.node)
    nodes.insert(nodes.index(head), slice_node)
    head.input[0] = sliced
    del graph.node[:]
    graph.node.extend(nodes)


def slice_after_activation_quantization(model: onnx.ModelProto) -> bool:
    """In a dynamically quantized graph, quantize the LM head's input over every position and
    slice the quantized rows: the scale is then what the all-positions graph uses, and the
    integer matmul of each row does not depend on the others. Returns False (graph unchanged)
    if there is no logits_start Slice or it does not feed a DynamicQuantizeLinear alone."""
    graph = model.graph
    nodes = list(graph.node)
    old = next((n for n in nodes if n.op_type == "Slice" and n.input[1] == LOGITS_START), None)
    if old is None:
        return False
    consumers = [n for n in nodes if old.output[0] in n.input]
    if len(consumers) != 1 or consumers[0].op_type != "DynamicQuantizeLinear":
        return False
    quantize = consumers[0]
    quantized = quantize.output[0]  # uint8 [batch, seq, embd]; its scale and zero point are scalars
    sliced = quantized + "_from_logits_start"
    for node in nodes:
        node.input[:] = [sliced if name == quantized else name for name in node.input]
    quantize.input[0] = old.input[0]
    new = helper.make_node("Slice", [quantized, *old.input[1:]], [sliced], name=old.name)
    nodes.remove(old)
    nodes.insert(nodes.index(quantize) + 1, new)
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [info for info in graph.value_info if info.name != old.output[0]]  # its shape changed meaning
    del graph.value_info[:]
    graph.value_info.extend(kept)
    return True
