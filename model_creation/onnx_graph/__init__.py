"""Rewrites of the exported ONNX decoder and the pipeline's runner for it, used by the export and
quantize stages: the tied embedding stored once (tied_weights), the optional last-position
logits input (logits_start), one MultiHeadAttention per layer (attention_fusion), int8 weights
(int8_weights), and a batch-1 runner over the serving engine's session (decoder)."""
