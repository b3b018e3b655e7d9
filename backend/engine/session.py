"""The onnxruntime session over the exported decoder: the ONLY module that knows ONNX names.

The model is optimum's `text-generation-with-past` export: inputs `input_ids`, `attention_mask`,
optionally `position_ids`, and `past_key_values.{i}.key/.value` [batch, heads, past, head_dim];
outputs `logits` [batch, seq, vocab] and `present.{i}.key/.value`. Prefill feeds the prompt after
an empty (zero-length) past, or after the cache of its first tokens (backend/engine/prefix_cache.py);
each decode step feeds one token per row after the previous step's `present` tensors. Graphs
exported since issue 12 also take an optional `logits_start` (int64 [1], default 0: every
position): prefill feeds -1 so that the LM head runs on the last position only; older graphs
without it are served the same way, computing every position.
A graph whose attention is GroupQueryAttention also decodes in place (`decode_in_place`): one
cache buffer bound as both past and present, written at each row's own next column.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from backend.engine.schema import ModelLoadError

LOGITS_START = "logits_start"  # optional input: index of the first position whose logits are computed
LAST_POSITION_ONLY = np.array([-1], dtype=np.int64)
IN_PLACE_ATTENTION = (b"GroupQueryAttention",)  # attention that writes a shared past/present buffer in place


def graph_has(model_path: Path, ops: tuple[bytes, ...]) -> bool:
    """Whether the graph holds any of these operators. onnxruntime does not list a graph's nodes
    and serving must not need the `onnx` package, but operator types are stored as plain strings
    in the protobuf, so a byte search finds them."""
    with open(model_path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return any(data.find(op) >= 0 for op in ops)


@dataclass
class KVCache:
    """Past keys/values in the session's input order, each [batch, heads, past, head_dim]."""

    tensors: list[np.ndarray]

    @property
    def length(self) -> int:
        return self.tensors[0].shape[2]

    @property
    def batch(self) -> int:
        return self.tensors[0].shape[0]

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    def tile(self, n: int) -> KVCache:
        """Batch 1 -> batch n: the n completions of one prompt share its prefill."""
        return KVCache([np.repeat(t, n, axis=0) for t in self.tensors])  # [n, heads, past, head_dim]

    def select(self, rows: list[int]) -> KVCache:
        """Keep only `rows` (finished completions leave the batch)."""
        return KVCache([np.ascontiguousarray(t[rows]) for t in self.tensors])


class DecoderSession:
    def __init__(
        self,
        model_path: Path,
        *,
        n_layer: int | None = None,
        n_head: int | None = None,
        n_embd: int | None = None,
        intra_op_threads: int = 1,
        profile_prefix: str | None = None,
    ):
        """n_layer, n_head and n_embd come from config.json; left out (a bare graph with no
        config beside it, as the pipeline's stages vet), they are read from the past inputs.
        With profile_prefix, onnxruntime times every node of every run into a JSON file named
        after it, whose path `self.session.end_profiling()` returns (bench/step_cost.py)."""
        options = ort.SessionOptions()
        if profile_prefix is not None:
            options.enable_profiling = True
            options.profile_file_prefix = profile_prefix
        # workers x intra_op_threads must not exceed the cores; inter-op parallelism buys nothing
        # for a chain-shaped decoder graph, so run nodes sequentially on one inter-op thread.
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own Fail/InvalidProtobuf/NoSuchFile types
            raise ModelLoadError(f"{Path(model_path).name} could not be loaded by onnxruntime: {error}") from error
        input_shapes = {i.name: i.shape for i in self.session.get_inputs()}
        inputs = set(input_shapes)
        outputs = {o.name for o in self.session.get_outputs()}
        if n_layer is None:
            n_layer = sum(1 for name in inputs if name.startswith("past_key_values.") and name.endswith(".key"))
            if n_layer == 0:
                raise ModelLoadError(
                    f"{Path(model_path).name} is not a decoder with a KV cache: it has no past_key_values inputs"
                )
        self.past_names = [f"past_key_values.{i}.{kind}" for i in range(n_layer) for kind in ("key", "value")]
        self.present_names = [name.replace("past_key_values.", "present.") for name in self.past_names]
        missing = ({"input_ids", "attention_mask", *self.past_names} - inputs) | (
            {"logits", *self.present_names} - outputs
        )
        if missing:
            raise ModelLoadError(
                f"{Path(model_path).name} is not a decoder with a KV cache matching config.json (n_layer={n_layer}): "
                f"missing {', '.join(sorted(missing))}"
            )
        self.has_position_ids = "position_ids" in inputs
        # Right-padded rows in one buffer (backend/engine/slot_cache.py); else left padding (padded_cache.py)
        self.decodes_in_place = graph_has(Path(model_path), IN_PLACE_ATTENTION)
        # An input backed by an initializer (a default) is listed as overridable, not as an input.
        self.has_logits_start = LOGITS_START in {i.name for i in self.session.get_overridable_initializers()} | inputs
        self.output_names = ["logits", *self.present_names]
        if n_head is None or n_embd is None:
            # [batch, heads, past, head_dim]: heads and head_dim are fixed in the graph
            _, heads, _, head_dim = input_shapes[self.past_names[0]]
            self.head_shape = (int(heads), int(head_dim))
        else:
            self.head_shape = (n_head, n_embd // n_head)
        self.runs = 0  # session.run calls so far (for tests and metrics)

    def empty_cache(self) -> KVCache:
        shape = (1, self.head_shape[0], 0, self.head_shape[1])  # zero-length past for prefill
        return KVCache([np.zeros(shape, dtype=np.float32) for _ in self.past_names])

    def forward_all(
        self,
        input_ids: np.ndarray,
        cache: KVCache,
        attention_mask: np.ndarray | None = None,
        position_ids: np.ndarray | None = None,
        last_only: bool = False,
    ) -> tuple[np.ndarray, KVCache]:
        """Feed input_ids [batch, seq] after `cache`; returns the logits of every fed position
        [batch, seq, vocab] (with last_only, [batch, 1, vocab] where the graph allows it) and the
        cache extended by seq positions. Without attention_mask [batch, past + seq] and
        position_ids [batch, seq] no position is padding and every row's positions are
        past .. past + seq - 1 (backend/engine/padded_cache.py passes both)."""
        batch, seq = input_ids.shape
        past = cache.length
        feed = dict(zip(self.past_names, cache.tensors, strict=True))
        if last_only and self.has_logits_start:
            feed[LOGITS_START] = LAST_POSITION_ONLY
        feed["input_ids"] = input_ids.astype(np.int64, copy=False)
        if attention_mask is None:
            attention_mask = np.ones((batch, past + seq), dtype=np.int64)  # no padding anywhere
        feed["attention_mask"] = attention_mask
        if self.has_position_ids:
            if position_ids is None:
                position_ids = np.tile(np.arange(past, past + seq, dtype=np.int64), (batch, 1))  # [batch, seq]
            feed["position_ids"] = position_ids
        self.runs += 1
        logits, *present = self.session.run(self.output_names, feed)  # logits [batch, seq, vocab]
        return logits, KVCache(present)

    def forward(
        self,
        input_ids: np.ndarray,
        cache: KVCache,
        attention_mask: np.ndarray | None = None,
        position_ids: np.ndarray | None = None,
    ) -> tuple[np.ndarray, KVCache]:
        """Like forward_all, keeping only the last position's logits [batch, vocab]."""
        logits, cache = self.forward_all(input_ids, cache, attention_mask, position_ids)
        return logits[:, -1, :], cache

    def sequence_logits(self, input_ids: list[int]) -> np.ndarray:
        """Logits [seq, vocab] at every position of one sequence, in one pass with no past."""
        logits, _ = self.forward_all(np.asarray(input_ids, dtype=np.int64)[None, :], self.empty_cache())
        return logits[0]

    def prefill(self, input_ids: list[int], past: KVCache | None = None) -> tuple[np.ndarray, KVCache]:
        """The prompt in one pass (batch 1), after `past` (the cache of the tokens before it, if
        any): logits [1, vocab] for its last position, and the cache of past + prompt.
        The LM head runs on that position only when the graph has a logits_start input."""
        past = self.empty_cache() if past is None else past
        logits, cache = self.forward_all(np.asarray(input_ids, dtype=np.int64)[None, :], past, last_only=True)
        return logits[:, -1, :], cache

    def decode(
        self,
        token_ids: np.ndarray,
        cache: KVCache,
        attention_mask: np.ndarray | None = None,
        position_ids: np.ndarray | None = None,
    ) -> tuple[np.ndarray, KVCache]:
        """One token per row: token_ids [batch] -> logits [batch, vocab]."""
        return self.forward(token_ids.reshape(-1, 1), cache, attention_mask, position_ids)

    def decode_in_place(self, token_ids: np.ndarray, buffers: list[np.ndarray], lengths: np.ndarray) -> np.ndarray:
        """One token per row at each row's next position, for a GroupQueryAttention graph.

        token_ids [rows]; buffers: the past tensors in order, each [rows, heads, columns, head_dim]
        (C-contiguous, columns > every length) with row r's positions in columns 0 .. lengths[r] - 1;
        the step writes each row's new key and value into column lengths[r] of the same buffers.
        Returns logits [rows, vocab]."""
        rows = len(lengths)
        total = int(lengths.max()) + 1
        binding = self.session.io_binding()
        binding.bind_cpu_input("input_ids", token_ids.astype(np.int64).reshape(rows, 1))
        # right padding: ones on each row's positions and the token being fed, then zeros
        mask = (np.arange(total, dtype=np.int64)[None, :] <= lengths[:, None]).astype(np.int64)  # [rows, total]
        binding.bind_cpu_input("attention_mask", mask)
        if self.has_position_ids:
            binding.bind_cpu_input("position_ids", lengths[:, None].astype(np.int64))  # [rows, 1]
        binding.bind_output("logits")  # the first output bound: get_outputs()[0]
        for past, present, buffer in zip(self.past_names, self.present_names, buffers, strict=True):
            shared = ort.OrtValue.ortvalue_from_numpy(buffer)  # wraps the numpy memory: no copy
            binding.bind_ortvalue_input(past, shared)
            binding.bind_ortvalue_output(present, shared)
        self.runs += 1
        self.session.run_with_iobinding(binding)
        # Only the logits come back as numpy: copying every output would copy the buffers too.
        return binding.get_outputs()[0].numpy()[:, -1, :]  # [rows, vocab]
