"""This machine's physical floors for one thread: memory bandwidth and int8 / fp32 matmul throughput.

Why: decoding at batch 1 with a KV cache reads every weight once per token, so it is bound by
memory bandwidth; re-running a 50-token window without a cache is bound by arithmetic. The two
move differently with the host's load, so a ratio between them measured on different days
mixes the code's speed with the host's. Measuring both floors in the same run, interleaved with
the decode timings, lets a table say how close each approach came to its floor: a regression
lowers that fraction, a noisy host lowers the floors themselves.

- bandwidth: `np.copyto` of a 256 MiB float32 array (bytes read + bytes written per second);
- matmul throughput: onnxruntime MatMulInteger (uint8 x int8, as the int8 graphs run) and MatMul
  (fp32) on [256, 768] x [768, 3072], one intra-op thread, in operations (2 per multiply-add).
Each is the best of a few calls, as timeit does.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

COPY_BYTES = 256 * 2**20
GEMM_SHAPE = (256, 768, 3072)  # rows, inner, columns: large enough to be compute bound
CALLS = 3  # calls per measurement; the fastest counts


def memory_bandwidth_gbs() -> float:
    """GB/s (1e9 bytes) of one thread copying a buffer far larger than any cache."""
    source = np.ones(COPY_BYTES // 4, dtype=np.float32)
    target = np.empty_like(source)
    best = float("inf")
    for _ in range(CALLS):
        start = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - start)
    return 2 * COPY_BYTES / best / 1e9  # each byte read once and written once


def _gemm_session(kind: str) -> tuple[ort.InferenceSession, dict[str, np.ndarray]]:
    rows, inner, columns = GEMM_SHAPE
    rng = np.random.default_rng(0)
    if kind == "int8":
        weight = rng.integers(-127, 128, size=(inner, columns), dtype=np.int8)
        node = helper.make_node("MatMulInteger", ["a", "w"], ["y"])
        inputs = [helper.make_tensor_value_info("a", TensorProto.UINT8, [rows, inner])]
        output = helper.make_tensor_value_info("y", TensorProto.INT32, [rows, columns])
        feed = {"a": rng.integers(0, 256, size=(rows, inner), dtype=np.uint8)}
    else:
        weight = rng.standard_normal((inner, columns), dtype=np.float32)
        node = helper.make_node("MatMul", ["a", "w"], ["y"])
        inputs = [helper.make_tensor_value_info("a", TensorProto.FLOAT, [rows, inner])]
        output = helper.make_tensor_value_info("y", TensorProto.FLOAT, [rows, columns])
        feed = {"a": rng.standard_normal((rows, inner), dtype=np.float32)}
    graph = helper.make_graph([node], f"gemm_{kind}", inputs, [output], [onnx.numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session, feed


class MatmulThroughput:
    """Sessions built once; `gops(kind)` measures one thread's throughput now."""

    def __init__(self):
        self.sessions = {kind: _gemm_session(kind) for kind in ("int8", "fp32")}
        for kind in self.sessions:
            self.gops(kind)  # warm up

    def gops(self, kind: str) -> float:
        session, feed = self.sessions[kind]
        rows, inner, columns = GEMM_SHAPE
        best = float("inf")
        for _ in range(CALLS):
            start = time.perf_counter()
            session.run(None, feed)
            best = min(best, time.perf_counter() - start)
        return 2 * rows * inner * columns / best / 1e9


def measure(throughput: MatmulThroughput) -> dict[str, float]:
    """One sample of every floor: {"bandwidth_gbs", "int8_gops", "fp32_gops"}."""
    return {
        "bandwidth_gbs": memory_bandwidth_gbs(),
        "int8_gops": throughput.gops("int8"),
        "fp32_gops": throughput.gops("fp32"),
    }


def matmul_macs_per_token(n_layer: int, n_embd: int, vocab_size: int) -> int:
    """Multiply-adds in GPT-2's weight matmuls for one token: per layer q|k|v (3 d^2), the attention
    projection (d^2) and the MLP (8 d^2), then the LM head (d x vocab). Attention over the cache
    itself is left out (under 5% at 400 tokens for DistilGPT2's shape)."""
    return n_layer * 12 * n_embd * n_embd + n_embd * vocab_size


def floor_ms(weight_bytes: int, ops: float, bandwidth_gbs: float, gops: float) -> dict[str, float]:
    """The two floors of one decode step: reading the weights once, and doing its arithmetic."""
    return {"memory_ms": weight_bytes / (bandwidth_gbs * 1e9) * 1000, "arithmetic_ms": ops / (gops * 1e9) * 1000}


def print_floors(floors: list[dict[str, float]]) -> None:
    """A Markdown table of the samples: the best (what the floors use) and the median."""
    print(f"\n### This machine's floors, one thread, sampled {len(floors)} times between the decode runs\n")
    print("| measure | best | median |")
    print("|---|---:|---:|")
    for key, label in (
        ("bandwidth_gbs", "memory bandwidth, copy (GB/s)"),
        ("int8_gops", "int8 matmul (GOPS)"),
        ("fp32_gops", "fp32 matmul (GOPS)"),
    ):
        values = [f[key] for f in floors]
        print(f"| {label} | {max(values):.1f} | {statistics.median(values):.1f} |")
