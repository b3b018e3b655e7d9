"""The inference engine: ONNX decoder with a KV cache, numpy sampling, incremental detokenisation.

engine = Engine.load("models/arxiv-gpt2-6x512-bpe16k", intra_op_threads=1)
result = engine.generate("We propose a method to", GenerationParams(max_new_tokens=40, seed=0))
"""

from backend.engine.engine import Engine
from backend.engine.schema import Completion, GenerationParams, GenerationResult, ModelLoadError, TokenEvent

__all__ = ["Engine", "GenerationParams", "TokenEvent", "GenerationResult", "Completion", "ModelLoadError"]
