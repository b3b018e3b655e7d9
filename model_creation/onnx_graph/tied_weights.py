"""Store GPT-2's tied token embedding once in an exported ONNX graph.

GPT-2 uses one matrix both as the token embedding (wte, [vocab, embd], read by a Gather) and,
transposed, as the LM head. The torch exporter writes it twice: `wte` for the Gather and a
constant-folded transpose [embd, vocab] for the LM head's MatMul. That doubles the largest
tensor (38.6M of DistilGPT2's 82M parameters). We keep the [embd, vocab] copy, because it is
the MatMul's weight and so is what int8 quantization acts on, and rewrite the embedding lookup
to read columns of it: Gather(axis=1) gives [embd, batch, seq], a Transpose restores
[batch, seq, embd]. Only `seq` columns move per call, so the lookup stays cheap.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


def _initializers(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    return {init.name: init for init in model.graph.initializer}


def _rank(model: onnx.ModelProto, name: str) -> int:
    for graph_input in model.graph.input:
        if graph_input.name == name:
            return len(graph_input.type.tensor_type.shape.dim)
    inferred = onnx.shape_inference.infer_shapes(model)
    for info in inferred.graph.value_info:
        if info.name == name and info.type.tensor_type.HasField("shape"):
            return len(info.type.tensor_type.shape.dim)
    raise ValueError(f"cannot infer the rank of the embedding indices {name!r}")


def share_tied_embedding(model: onnx.ModelProto) -> int:
    """Rewrite `model` in place so the tied embedding is stored once; returns bytes saved (0 if untied)."""
    inits = _initializers(model)
    gathers = [
        n
        for n in model.graph.node
        if n.op_type == "Gather" and n.input[0] in inits and len(inits[n.input[0]].dims) == 2
    ]
    matmuls = [
        n
        for n in model.graph.node
        if n.op_type == "MatMul" and n.input[1] in inits and len(inits[n.input[1]].dims) == 2
    ]
    for gather in gathers:
        if any(a.name == "axis" and a.i != 0 for a in gather.attribute):
            continue
        embedding = numpy_helper.to_array(inits[gather.input[0]])  # [vocab, embd]
        for matmul in matmuls:
            head = inits[matmul.input[1]]
            if tuple(head.dims) != embedding.shape[::-1]:
                continue
            if not np.array_equal(numpy_helper.to_array(head), embedding.T):  # [embd, vocab]
                continue
            return _rewrite(model, gather, embedding_name=gather.input[0], head_name=matmul.input[1])
    return 0


def _rewrite(model: onnx.ModelProto, gather: onnx.NodeProto, embedding_name: str, head_name: str) -> int:
    rank = _rank(model, gather.input[1])
    columns = gather.output[0] + "_columns"
    lookup = helper.make_node("Gather", [head_name, gather.input[1]], [columns], name=gather.name + "_columns", axis=1)
    # [embd, *indices] -> [*indices, embd]
    perm = list(range(1, rank + 1)) + [0]
    restore = helper.make_node("Transpose", [columns], [gather.output[0]], name=gather.name + "_transpose", perm=perm)
    nodes = list(model.graph.node)
    position = nodes.index(gather)
    nodes[position : position + 1] = [lookup, restore]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    still_used = any(embedding_name in n.input for n in model.graph.node)
    if still_used:
        return 0
    dropped = next(i for i in model.graph.initializer if i.name == embedding_name)
    saved = numpy_helper.to_array(dropped).nbytes
    model.graph.initializer.remove(dropped)
    return saved


def initializer_bytes(model: onnx.ModelProto) -> int:
    """Total bytes held by the graph's initializers (what the weights cost on disk)."""
    return sum(numpy_helper.to_array(init).nbytes for init in model.graph.initializer)
