"""The Engine: loads a model directory once, then generates or streams completions of a prompt.

A model directory holds model.onnx (decoder with KV cache), config.json and tokenizer.json (see
the model-directory contract in the README). Serving needs only tokenizers, numpy and
onnxruntime: nothing here imports torch or transformers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from backend.config import BATCHING_MODES
from backend.engine.batch import BatchScheduler
from backend.engine.decode_loop import generate_events
from backend.engine.padded_cache import measure_alignment
from backend.engine.prefix_cache import PrefixCache, splits_exactly
from backend.engine.schema import GenerationParams, GenerationResult, ModelLoadError, TokenEvent
from backend.engine.session import DecoderSession, KVCache, graph_has
from backend.engine.slot_cache import computes_rows_alone
from backend.engine.tokenizer import END_OF_TEXT, TextTokenizer

_QUANTIZED_OPS = (b"MatMulInteger", b"DynamicQuantizeLinear", b"QLinearMatMul", b"DequantizeLinear", b"MatMulNBits")
_CONFIG_FIELDS = ("n_layer", "n_head", "n_embd", "n_positions", "vocab_size")
# onnxruntime's dynamic quantization computes ONE activation scale over the whole input tensor,
# i.e. over every row of a batch: a row's logits then depend on the other rows (measured on the
# int8 model of Nov 2026: up to 0.25 logit apart), so a batched request would not reproduce its
# seed. The quantize stage now scales each row alone (model_creation/onnx_graph/row_quantization.py).
_ROW_COUPLING_OPS = (b"DynamicQuantizeLinear",)


def gpt2_parameter_count(n_layer: int, n_embd: int, n_positions: int, vocab_size: int) -> int:
    """Parameters of a GPT-2 with a tied LM head: embeddings + blocks + final layer norm."""
    per_block = (
        2 * n_embd  # ln_1
        + n_embd * 3 * n_embd
        + 3 * n_embd  # attn.c_attn
        + n_embd * n_embd
        + n_embd  # attn.c_proj
        + 2 * n_embd  # ln_2
        + n_embd * 4 * n_embd
        + 4 * n_embd  # mlp.c_fc
        + 4 * n_embd * n_embd
        + n_embd  # mlp.c_proj
    )
    return vocab_size * n_embd + n_positions * n_embd + n_layer * per_block + 2 * n_embd


def row_coupled(model_path: Path) -> bool:
    """Whether the graph scales activations per tensor (DynamicQuantizeLinear), coupling the rows of a batch."""
    return graph_has(model_path, _ROW_COUPLING_OPS)


def batching_refusal(mode: str, session: DecoderSession, model_path: Path) -> str | None:
    """Why this engine must run one request at a time, or None when it may batch requests.

    "on" batches when every row's output is independent of the other rows; "force" also
    batches a row-coupled (dynamically quantized) graph, trading seed reproducibility under
    load for throughput; "off" never batches. Without position_ids, rows of different lengths
    cannot keep their own positions, so no mode batches such a graph."""
    if mode not in BATCHING_MODES:
        raise ValueError(f"batching must be one of {', '.join(BATCHING_MODES)}, got {mode!r}")
    if mode == "off":
        return "off (setting)"
    if not session.has_position_ids:
        return "off: the graph has no position_ids input, so rows of different lengths cannot be batched"
    if mode == "on" and row_coupled(model_path):
        return (
            "off: DynamicQuantizeLinear quantizes activations per tensor, so batched rows would change each "
            "other's logits (re-quantize with the quantize stage's --activations per-row, or set batching to force)"
        )
    return None


def _alignment(session: DecoderSession) -> int | None:
    if session.decodes_in_place:
        return 1 if computes_rows_alone(session) else None
    return measure_alignment(session)


def _read_config(model_dir: Path) -> dict:
    path = model_dir / "config.json"
    if not path.is_file():
        raise ModelLoadError("config.json is missing: the model directory needs the GPT-2 config.json")
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"config.json is not valid JSON: {error}") from error
    missing = [f for f in _CONFIG_FIELDS if not isinstance(config.get(f), int)]
    if missing:
        raise ModelLoadError(f"config.json lacks integer field(s) {', '.join(missing)}")
    return config


def _end_of_text_id(config: dict, tokenizer: TextTokenizer) -> int:
    """config.json's eos_token_id, else the tokenizer's <|endoftext|> (whatever its id: a corpus
    tokenizer may put it at 0); it is also every prompt's first token, as in training."""
    eos = config.get("eos_token_id")
    if isinstance(eos, int) and not isinstance(eos, bool):
        return eos
    eos = tokenizer.token_id(END_OF_TEXT)
    if eos is None:
        raise ModelLoadError(f"config.json has no eos_token_id and tokenizer.json has no {END_OF_TEXT} token")
    return eos


def _check_generates(session: DecoderSession, config: dict, eos_id: int, tokenizer_size: int) -> None:
    """Prove the model can generate before /health says so (issue 14): one prefill and one decode
    step, then one step at the last position of the context, each checked against config.json's
    shapes. A config.json that disagrees with the graph (n_head, n_embd, vocab_size, n_positions)
    otherwise loads fine and fails every request."""
    vocab, heads, n_positions = config["vocab_size"], config["n_head"], config["n_positions"]
    if not 0 <= eos_id < vocab or tokenizer_size > vocab:
        raise ModelLoadError(
            f"tokenizer.json ({tokenizer_size} tokens, end of text {eos_id}) does not fit "
            f"config.json's vocab_size {vocab}"
        )
    head_shape = (heads, config["n_embd"] // heads)
    try:
        logits, cache = session.prefill([eos_id])
        logits, cache = session.decode(np.array([eos_id]), cache)
        problems = _shape_problems(logits, cache, vocab, head_shape, 2)
        if n_positions > 2:  # the last position the context allows: its position embedding must exist
            full = KVCache([np.zeros((1, heads, n_positions - 1, head_shape[1]), np.float32) for _ in cache.tensors])
            logits, cache = session.decode(np.array([eos_id]), full)
            problems += _shape_problems(logits, cache, vocab, head_shape, n_positions)
    except ModelLoadError:
        raise
    except Exception as error:  # onnxruntime refuses inputs shaped by a config that is not the graph's
        raise ModelLoadError(
            f"model.onnx fails a test generation with config.json's shapes "
            f"(n_head={heads}, n_embd={config['n_embd']}, n_positions={n_positions}): "
            f"{' '.join(str(error).split())[:300]}"
        ) from error
    if problems:
        raise ModelLoadError(f"model.onnx disagrees with config.json: {'; '.join(problems)}")


def _shape_problems(
    logits: np.ndarray, cache: KVCache, vocab: int, head_shape: tuple[int, int], length: int
) -> list[str]:
    problems = []
    if logits.shape != (1, vocab):
        problems.append(f"logits are {list(logits.shape)}, expected [1, {vocab}] (vocab_size)")
    elif not np.isfinite(logits).all():
        problems.append("logits are not finite")
    expected = (1, head_shape[0], length, head_shape[1])
    if any(t.shape != expected for t in cache.tensors):
        problems.append(f"the KV cache is {list(cache.tensors[0].shape)}, expected {list(expected)} (n_head, n_embd)")
    return problems


class Engine:
    def __init__(
        self,
        model_dir: Path,
        config: dict,
        session: DecoderSession,
        tokenizer: TextTokenizer,
        load_seconds: float,
        batching: str = "on",
        prefix_cache_mb: int = 0,
    ):
        self.model_dir = model_dir
        self.session = session
        self.tokenizer = tokenizer
        self.n_positions = config["n_positions"]
        self.eos_id = _end_of_text_id(config, tokenizer)
        parameters = gpt2_parameter_count(
            config["n_layer"], config["n_embd"], config["n_positions"], config["vocab_size"]
        )
        self.info = {
            "name": model_dir.resolve().name,
            "quantization": "int8" if graph_has(model_dir / "model.onnx", _QUANTIZED_OPS) else "fp32",
            "parameters": parameters,
            "load_seconds": load_seconds,
            "context_length": self.n_positions,
            "vocab_size": config["vocab_size"],
        }
        refusal = batching_refusal(batching, session, model_dir / "model.onnx")
        self.info["batching"] = refusal or "on"
        # How the running batch keeps its cache: in place (GroupQueryAttention, right-padded) or
        # left-padded and copied every step (any other attention).
        self.info["kv_cache"] = "in-place" if session.decodes_in_place else "left-padded"
        # Padding every batched row by a multiple of this keeps it bit-identical to its run alone
        # (1: rows never move, in place); None: not on this machine, so batched rows may differ by rounding.
        self.info["batch_alignment"] = None if refusal else _alignment(session)
        # Recent prompts' caches, so that a prompt extending one prefills only its new tokens; kept
        # only where that gives the whole prefill's numbers bit for bit (prefix_cache.splits_exactly).
        self.prefixes = (
            PrefixCache(prefix_cache_mb * 2**20) if prefix_cache_mb > 0 and splits_exactly(session) else None
        )
        self.info["prefix_cache_mb"] = prefix_cache_mb if self.prefixes is not None else 0
        # None: one request at a time, in the caller's thread (generate_events)
        self.scheduler = (
            None
            if refusal
            else BatchScheduler(
                session,
                tokenizer,
                n_positions=self.n_positions,
                eos_id=self.eos_id,
                align=self.info["batch_alignment"] or 1,
                prefixes=self.prefixes,
            )
        )

    @classmethod
    def load(
        cls, model_dir: str | Path, intra_op_threads: int = 1, batching: str = "on", prefix_cache_mb: int = 0
    ) -> Engine:
        """Load a model directory; ModelLoadError says what is missing or corrupt. `batching`
        ("on", "off", "force"): whether concurrent requests share decode steps (batching_refusal).
        `prefix_cache_mb`: memory for recent prompts' caches (prefix_cache.py); 0 keeps none."""
        start = time.perf_counter()
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise ModelLoadError(f"model directory {model_dir.name!r} does not exist")
        config = _read_config(model_dir)
        if not (model_dir / "model.onnx").is_file():
            raise ModelLoadError("model.onnx is missing")
        tokenizer = TextTokenizer(model_dir)
        session = DecoderSession(
            model_dir / "model.onnx",
            n_layer=config["n_layer"],
            n_head=config["n_head"],
            n_embd=config["n_embd"],
            intra_op_threads=intra_op_threads,
        )
        _check_generates(session, config, _end_of_text_id(config, tokenizer), tokenizer.vocab_size)
        seconds = round(time.perf_counter() - start, 3)
        return cls(model_dir, config, session, tokenizer, seconds, batching, prefix_cache_mb)

    @property
    def batches(self) -> bool:
        """Whether concurrent requests join one running batch (else they must run one at a time)."""
        return self.scheduler is not None

    def stream(self, text: str, params: GenerationParams) -> Iterator[TokenEvent | GenerationResult]:
        """TokenEvents as tokens are decoded, then exactly one GenerationResult; closing the
        iterator stops the request before the next model step (its rows leave the batch)."""
        if self.scheduler is not None:
            return self.scheduler.submit(text, params)
        return generate_events(
            self.session,
            self.tokenizer,
            text,
            params,
            n_positions=self.n_positions,
            eos_id=self.eos_id,
            prefixes=self.prefixes,
        )

    def generate(self, text: str, params: GenerationParams) -> GenerationResult:
        """The whole generation at once (batched: the result alone is handed over, no event per token)."""
        if self.scheduler is not None:
            events = self.scheduler.submit(text, params, stream=False)
        else:
            events = self.stream(text, params)
        try:
            for item in events:
                if isinstance(item, GenerationResult):
                    return item
        finally:
            events.close()  # a no-op once the result came; otherwise the rows leave the batch
        raise RuntimeError("generation ended without a result")  # unreachable: the loop always yields one
