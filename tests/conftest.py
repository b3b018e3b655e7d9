"""Shared pytest fixtures. Tests run offline: no Hugging Face Hub, no arXiv API."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


# --- tiny model (tests/tiny_model.py): built once per session, a few seconds each ---


@pytest.fixture(scope="session")
def tiny_hf_dir(tmp_path_factory):
    """The tiny random-weight GPT-2 as a HF model directory (a finished train-stage output)."""
    from tests.tiny_model import build_tiny_hf_dir

    return build_tiny_hf_dir(tmp_path_factory.mktemp("tiny-hf"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """The tiny model as a complete int8 model directory (what the backend loads)."""
    from tests.tiny_model import build_tiny_model_dir

    return build_tiny_model_dir(tmp_path_factory.mktemp("tiny-int8"), quantized=True)


@pytest.fixture(scope="session")
def tiny_fp32_model_dir(tmp_path_factory):
    """The tiny model as a complete fp32 model directory (export output, before quantization)."""
    from tests.tiny_model import build_tiny_model_dir

    return build_tiny_model_dir(tmp_path_factory.mktemp("tiny-fp32"), quantized=False)
