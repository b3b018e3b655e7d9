"""Shared pytest fixtures. Tests run offline: no Hugging Face Hub, no arXiv API."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

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
def tiny_unfused_model_dir(tmp_path_factory):
    """The tiny model as int8 with the export's own attention (no fusion): a batch of it is
    left-padded (backend/engine/padded_cache.py) where the fused one decodes in place."""
    from tests.tiny_model import build_tiny_model_dir

    return build_tiny_model_dir(tmp_path_factory.mktemp("tiny-int8-unfused"), variant="per-tensor")


@pytest.fixture(scope="session")
def tiny_row_coupled_model_dir(tmp_path_factory):
    """The tiny model as int8 with onnxruntime's per-tensor activation scales: rows of a batch
    change each other's logits, so the engine must not batch it unless forced."""
    from tests.tiny_model import build_tiny_model_dir

    return build_tiny_model_dir(tmp_path_factory.mktemp("tiny-int8-per-tensor"), activations="per-tensor")


@pytest.fixture(scope="session")
def tiny_fp32_model_dir(tmp_path_factory):
    """The tiny model as a complete fp32 model directory (export output, before quantization)."""
    from tests.tiny_model import build_tiny_model_dir

    return build_tiny_model_dir(tmp_path_factory.mktemp("tiny-fp32"), quantized=False)


@pytest.fixture(scope="session")
def tiny_fused_fp32_model_dir(tiny_fp32_model_dir, tmp_path_factory):
    """The fp32 model directory with the quantize stage's fused graph (onnxruntime's GPT-2
    fusions + one GroupQueryAttention per layer), as the optimized-* int8 variants start from."""
    import json
    import shutil

    from model_creation.quantize import write_optimized_graph

    dest = tmp_path_factory.mktemp("tiny-fused-fp32") / "model"
    shutil.copytree(tiny_fp32_model_dir, dest)
    model_config = json.loads((dest / "config.json").read_text())
    probe = [50256, 464, 2746, 318, 257, 1332, 13]  # any short sequence: the fusion is checked on it
    write_optimized_graph(tiny_fp32_model_dir / "model.onnx", dest / "model.onnx", model_config, probe)
    return dest


# --- the Flask API (backend/): apps over the tiny int8 model ---


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_dir):
    """One loaded Engine over the tiny int8 model, shared by every app a test builds."""
    from backend.engine import Engine

    return Engine.load(tiny_model_dir, intra_op_threads=1)


@pytest.fixture
def make_app(tiny_engine, tmp_path):
    """Build an app with the tiny engine; keyword arguments override config keys."""
    from backend import create_app

    def make(**overrides):
        config = {
            "TESTING": True,
            "ENGINE": tiny_engine,
            "FRONTEND_DIR": str(tmp_path / "no-frontend"),
            "CORS_ORIGINS": [],
            "GENERATION_SLOTS": 1,
            "QUEUE_SIZE": 0,
            "QUEUE_TIMEOUT_SECONDS": 5.0,
        }
        config.update(overrides)
        return create_app(config)

    return make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


# --- the scrape stage (tests/test_scrape_*.py): recorded arXiv responses, no network ---


@pytest.fixture
def no_network(monkeypatch):
    """Any real connection attempt is recorded and refused; the test then fails.

    The scrape test modules apply it to every test with pytest.mark.usefixtures("no_network").
    """
    import socket

    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield
    assert attempts == [], f"a test tried to reach the network: {attempts}"


@pytest.fixture
def api():
    """The arXiv API replayed from tests/fixtures/arxiv-api (a tests.arxiv_replay.ReplayedApi)."""
    import responses

    from tests.arxiv_replay import ReplayedApi

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield ReplayedApi(mock)
