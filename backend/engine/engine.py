"""The Engine: loads a model directory once, then generates or streams completions of a prompt.

A model directory holds model.onnx (decoder with KV cache), config.json and tokenizer.json (see
the model-directory contract in the README). Serving needs only tokenizers, numpy and
onnxruntime: nothing here imports torch or transformers.
"""

from __future__ import annotations

import json
import mmap
import time
from collections.abc import Iterator
from pathlib import Path

from backend.engine.generation import generate_events
from backend.engine.schema import GenerationParams, GenerationResult, ModelLoadError, TokenEvent
from backend.engine.session import DecoderSession
from backend.engine.tokenizer import TextTokenizer

_QUANTIZED_OPS = (b"MatMulInteger", b"DynamicQuantizeLinear", b"QLinearMatMul", b"DequantizeLinear", b"MatMulNBits")
_CONFIG_FIELDS = ("n_layer", "n_head", "n_embd", "n_positions", "vocab_size")


def gpt2_parameter_count(n_layer: int, n_embd: int, n_positions: int, vocab_size: int) -> int:
    """Parameters of a GPT-2 with a tied LM head: embeddings + blocks + final layer norm."""
    per_block = (
        2 * n_embd  # ln_1
        + n_embd * 3 * n_embd + 3 * n_embd  # attn.c_attn
        + n_embd * n_embd + n_embd  # attn.c_proj
        + 2 * n_embd  # ln_2
        + n_embd * 4 * n_embd + 4 * n_embd  # mlp.c_fc
        + 4 * n_embd * n_embd + n_embd  # mlp.c_proj
    )
    return vocab_size * n_embd + n_positions * n_embd + n_layer * per_block + 2 * n_embd


def _is_quantized(model_path: Path) -> bool:
    """Whether the graph holds integer-quantization operators. onnxruntime does not list a graph's
    nodes and serving must not need the `onnx` package, but operator types are stored as plain
    strings in the protobuf, so a byte search finds them."""
    with open(model_path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return any(data.find(op) >= 0 for op in _QUANTIZED_OPS)


def _read_config(model_dir: Path) -> dict:
    path = model_dir / "config.json"
    if not path.is_file():
        raise ModelLoadError(f"{path} is missing: the model directory needs the GPT-2 config.json")
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"{path} is not valid JSON: {error}") from error
    missing = [f for f in _CONFIG_FIELDS if not isinstance(config.get(f), int)]
    if missing:
        raise ModelLoadError(f"{path} lacks integer field(s) {', '.join(missing)}")
    return config


class Engine:
    def __init__(self, model_dir: Path, config: dict, session: DecoderSession, tokenizer: TextTokenizer, load_seconds: float):
        self.model_dir = model_dir
        self.session = session
        self.tokenizer = tokenizer
        self.n_positions = config["n_positions"]
        self.eos_id = int(config.get("eos_token_id", 50256))
        parameters = gpt2_parameter_count(config["n_layer"], config["n_embd"], config["n_positions"], config["vocab_size"])
        self.info = {
            "name": model_dir.resolve().name,
            "quantization": "int8" if _is_quantized(model_dir / "model.onnx") else "fp32",
            "parameters": parameters,
            "load_seconds": load_seconds,
            "context_length": self.n_positions,
            "vocab_size": config["vocab_size"],
        }

    @classmethod
    def load(cls, model_dir: str | Path, intra_op_threads: int = 1) -> Engine:
        """Load a model directory; ModelLoadError says what is missing or corrupt."""
        start = time.perf_counter()
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise ModelLoadError(f"model directory {model_dir} does not exist")
        config = _read_config(model_dir)
        if not (model_dir / "model.onnx").is_file():
            raise ModelLoadError(f"{model_dir / 'model.onnx'} is missing")
        tokenizer = TextTokenizer(model_dir)
        session = DecoderSession(
            model_dir / "model.onnx",
            n_layer=config["n_layer"],
            n_head=config["n_head"],
            n_embd=config["n_embd"],
            intra_op_threads=intra_op_threads,
        )
        return cls(model_dir, config, session, tokenizer, round(time.perf_counter() - start, 3))

    def stream(self, text: str, params: GenerationParams) -> Iterator[TokenEvent | GenerationResult]:
        """TokenEvents as tokens are decoded, then exactly one GenerationResult; closing the
        generator stops generation before the next model step."""
        return generate_events(self.session, self.tokenizer, text, params, n_positions=self.n_positions, eos_id=self.eos_id)

    def generate(self, text: str, params: GenerationParams) -> GenerationResult:
        for item in self.stream(text, params):
            if isinstance(item, GenerationResult):
                return item
        raise RuntimeError("generation ended without a result")  # unreachable: the loop always yields one
