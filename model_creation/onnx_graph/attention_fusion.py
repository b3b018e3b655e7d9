"""Fuse each attention block of optimum's GPT-2 decoder into one onnxruntime attention kernel.

Why: onnxruntime's own GPT-2 fusion only matches the older export with one combined `past`
tensor per layer, so on optimum's export (a past key and a past value per layer, SDPA-style
causal masking) it leaves every attention block as ~40 small nodes, plus a shared mask
subgraph. At batch 1 an int8 decode step spends about as long dispatching those small nodes
as reading the weights. One fused attention node per layer (causal, past and
present in the export's own [batch, heads, seq, head_dim] layout, key padding from
`attention_mask`) replaces them without changing the model's inputs or outputs.

Two kernels (`kernel=`):
- "group-query" (the default): `com.microsoft.GroupQueryAttention` with as many key/value heads
  as query heads. It reads each row's length from the mask (seqlens_k = its ones - 1) and keeps
  a row's positions in the first columns of the cache, so the mask must be RIGHT-padded (ones,
  then zeros). Its point is the decode step of a batch: bound to one preallocated cache buffer
  as both past and present, it writes each row's new key and value in place and reads only the
  row's own columns. MultiHeadAttention instead copies the whole past into a new present every
  step, which at 8 rows x 192 positions was half the step (backend/engine/slot_cache.py).
- "multi-head": `com.microsoft.MultiHeadAttention`, causal, with the mask as key padding
  (any padding, left included); the cache grows by a copy every step.

The rewrite anchors on names the export guarantees (`past_key_values.{i}.key/value` in,
`present.{i}.key/value` out) and on the shape of the block between them; anything else raises
`AttentionFusionError`, and the quantize stage checks logits and KV cache against the unfused
graph before it keeps the result.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import onnx
from onnx import helper, numpy_helper

INT32 = onnx.TensorProto.INT32

KERNELS = ("group-query", "multi-head")  # the first is the default everywhere
MASK_INT32 = "attention_mask_int32"  # MultiHeadAttention takes its key padding mask as int32
SEQLENS_K = "attention_seqlens_k"  # GroupQueryAttention: each row's length - 1, int32 [batch]
TOTAL_LENGTH = "attention_total_sequence_length"  # GroupQueryAttention: the mask's width, int32 scalar


class AttentionFusionError(ValueError):
    """The graph is not the GPT-2 decoder shape this rewrite knows."""


def _single(nodes: list[onnx.NodeProto], op_type: str, what: str) -> onnx.NodeProto:
    matching = [n for n in nodes if n.op_type == op_type]
    if len(matching) != 1:
        raise AttentionFusionError(f"expected one {op_type} for {what}, found {len(matching)}")
    return matching[0]


def _qkv_split(name: str, producer: dict[str, onnx.NodeProto]) -> onnx.NodeProto:
    """Walk up from the new key or value ([batch, heads, seq, head_dim]) through its
    Reshape/Transpose to the Split of the fused q|k|v projection."""
    node = producer.get(name)
    while node is not None and node.op_type in ("Transpose", "Reshape"):
        node = producer.get(node.input[0])
    if node is None or node.op_type != "Split" or len(node.output) != 3:
        raise AttentionFusionError(f"{name} does not come from a 3-way q|k|v Split")
    return node


def _check_config(model_config: dict) -> None:
    # MultiHeadAttention scales by 1/sqrt(head_dim), which is GPT-2's default and nothing else.
    unsupported = {
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
    }
    for key, wanted in unsupported.items():
        if model_config.get(key, wanted) != wanted:
            raise AttentionFusionError(f"config {key}={model_config[key]} is not supported by the fusion")


def _attention_node(kernel: str, layer: int, qkv: list[str], outputs: list[str], num_heads: int) -> onnx.NodeProto:
    """The fused node: q, k, v [batch, seq, hidden] and the layer's past in; output [batch, seq,
    hidden] and present out."""
    past = [f"past_key_values.{layer}.key", f"past_key_values.{layer}.value"]
    if kernel == "group-query":
        return helper.make_node(
            "GroupQueryAttention",
            [*qkv, *past, SEQLENS_K, TOTAL_LENGTH],  # always causal; scale 1/sqrt(head_dim)
            outputs,
            name=f"GroupQueryAttention_{layer}",
            domain="com.microsoft",
            num_heads=num_heads,
            kv_num_heads=num_heads,
        )
    return helper.make_node(
        "MultiHeadAttention",
        # query, key, value, bias, key_padding_mask, attention_bias, past_key, past_value
        [*qkv, "", MASK_INT32, "", *past],
        outputs,
        name=f"MultiHeadAttention_{layer}",
        domain="com.microsoft",
        num_heads=num_heads,
        unidirectional=1,  # causal
    )


def _mask_nodes(kernel: str) -> list[onnx.NodeProto]:
    """What the fused nodes read from `attention_mask` [batch, total] (int64)."""
    make = helper.make_node
    if kernel == "multi-head":
        return [make("Cast", ["attention_mask"], [MASK_INT32], name="Cast_attention_mask_int32", to=INT32)]
    return [
        make("ReduceSum", ["attention_mask", "attention_mask_axis_1"], ["attention_lengths"], keepdims=0),  # [batch]
        make("Sub", ["attention_lengths", "attention_one"], ["attention_lengths_minus_one"]),
        make("Cast", ["attention_lengths_minus_one"], [SEQLENS_K], to=INT32),
        make("Shape", ["attention_mask"], ["attention_total_1d"], start=1, end=2),  # [1]
        make("Squeeze", ["attention_total_1d"], ["attention_total_int64"]),  # []
        make("Cast", ["attention_total_int64"], [TOTAL_LENGTH], to=INT32),
    ]


def _fused_layer(
    layer: int,
    producer: dict[str, onnx.NodeProto],
    consumers: dict[str, list[onnx.NodeProto]],
    num_heads: int,
    kernel: str,
) -> dict[str, onnx.NodeProto | None]:
    """Layer `layer`'s attention block matched from its past/present names; returns the node
    replacements: its heads-merging Reshape becomes the fused attention, its two present
    Concats go (None)."""
    past_key, past_value = f"past_key_values.{layer}.key", f"past_key_values.{layer}.value"
    present_key, present_value = f"present.{layer}.key", f"present.{layer}.value"
    concat_key, concat_value = producer[present_key], producer.get(present_value)
    for concat, past in ((concat_key, past_key), (concat_value, past_value)):
        if concat is None or concat.op_type != "Concat" or list(concat.input[:1]) != [past] or len(concat.input) != 2:
            raise AttentionFusionError(f"layer {layer}: present is not Concat({past}, new)")
    split = _qkv_split(concat_key.input[1], producer)
    if _qkv_split(concat_value.input[1], producer) is not split:
        raise AttentionFusionError(f"layer {layer}: key and value come from different Splits")
    # softmax(q k^T) @ v  [batch, heads, seq, head_dim] -> Transpose -> Reshape [batch, seq, hidden]
    weighted = _single(consumers[present_value], "MatMul", f"layer {layer} attention @ value")
    transpose = _single(consumers[weighted.output[0]], "Transpose", f"layer {layer} attention output")
    merge_heads = _single(consumers[transpose.output[0]], "Reshape", f"layer {layer} attention output")
    fused = _attention_node(
        kernel, layer, list(split.output), [merge_heads.output[0], present_key, present_value], num_heads
    )
    # The Concats' outputs now come from the fused node.
    return {merge_heads.name: fused, concat_key.name: None, concat_value.name: None}


def fuse_attention(model: onnx.ModelProto, model_config: dict, kernel: str = KERNELS[0]) -> int:
    """Rewrite `model` in place; returns the number of layers fused (all of them, or it raises)."""
    if kernel not in KERNELS:
        raise AttentionFusionError(f"kernel must be one of {list(KERNELS)}, got {kernel!r}")
    _check_config(model_config)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if kernel == "group-query" and opset < 13:  # ReduceSum takes its axes as an input from opset 13
        raise AttentionFusionError(f"group-query needs ONNX opset 13 or later, the graph has {opset}")
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    if "attention_mask" not in {i.name for i in graph.input}:
        raise AttentionFusionError("the graph has no attention_mask input")

    replaced: dict[str, onnx.NodeProto | None] = {}  # old node name -> the fused attention taking its place
    layer = 0
    while f"present.{layer}.key" in producer:
        replaced.update(_fused_layer(layer, producer, consumers, int(model_config["n_head"]), kernel))
        layer += 1
    if layer == 0:
        raise AttentionFusionError("no present.0.key output: not a decoder with a KV cache")

    nodes = _mask_nodes(kernel)
    if kernel == "group-query":
        graph.initializer.extend(
            [
                numpy_helper.from_array(np.array([1], dtype=np.int64), "attention_mask_axis_1"),
                numpy_helper.from_array(np.array(1, dtype=np.int64), "attention_one"),
            ]
        )
    for node in graph.node:
        if node.name not in replaced:
            nodes.append(node)
        elif replaced[node.name] is not None:
            nodes.append(replaced[node.name])  # same place in topological order as the Reshape it replaces
    _keep_live(graph, nodes)
    if not any(opset.domain == "com.microsoft" for opset in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return layer


def _keep_live(graph: onnx.GraphProto, nodes: list[onnx.NodeProto]) -> None:
    """Set graph.node to the nodes that the graph's outputs depend on; drop initializers and
    value_info that nothing reads any more."""
    needed = {o.name for o in graph.output}
    live = []
    for node in reversed(nodes):
        if any(name in needed for name in node.output):
            live.append(node)
            needed.update(name for name in node.input if name)
    del graph.node[:]
    graph.node.extend(reversed(live))
    for field in (graph.initializer, graph.value_info):
        kept = [item for item in field if item.name in needed]
        del field[:]
        field.extend(kept)
