"""Where the train stage runs and in which number format: device, autocast dtype, loss scaling.

"auto" picks the fastest format the hardware computes natively: bf16 on a GPU that has it
(A100, H100, L4) and on a CPU with AVX512-BF16 or AMX tiles; fp16 with a loss scaler on older
GPUs (a Colab T4); fp32 elsewhere. fp16 needs loss scaling because its exponent range is small;
bf16 has fp32's range and needs none.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from model_creation.stage_dir import StageError

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
DEVICES = ("auto", "cuda", "cpu")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


def bf16_supported(device: str) -> bool:
    if device == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())  # AVX512-BF16 or AMX


@dataclass(frozen=True)
class Hardware:
    device: str  # "cuda" or "cpu"
    precision: str  # "bf16", "fp16" or "fp32"

    def autocast(self):
        dtype = DTYPES[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device, dtype=dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """Loss scaling for fp16; a pass-through (enabled=False) for the other formats."""
        return torch.amp.GradScaler(self.device, enabled=self.precision == "fp16")


def resolve_hardware(device: str, precision: str) -> Hardware:
    if device not in DEVICES:
        raise StageError(f"device must be one of {list(DEVICES)}, got {device!r}")
    if precision not in PRECISIONS:
        raise StageError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    resolved = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    if resolved == "cuda" and not torch.cuda.is_available():
        raise StageError("device is 'cuda' but no GPU is available")
    if precision == "fp16" and resolved != "cuda":
        raise StageError("precision 'fp16' needs a CUDA GPU; use 'bf16' or 'fp32' on a CPU")
    if precision == "auto":
        precision = "bf16" if bf16_supported(resolved) else ("fp16" if resolved == "cuda" else "fp32")
    return Hardware(resolved, precision)
