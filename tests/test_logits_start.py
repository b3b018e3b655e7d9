"""The `logits_start` input (issue 12): prefill runs the LM head on the last position only.

Oracles: the same graph's all-positions logits (what perplexity reads) and a graph exported the
way it was before the input existed (export with add_logits_start switched off), which must
still load and serve.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from backend.engine import Engine, GenerationParams
from backend.engine.session import LOGITS_START, DecoderSession
from model_creation import export, quantize
from model_creation.onnx_graph.logits_start import LogitsStartError, add_logits_start
from model_creation.perplexity import perplexity
from tests.tiny_model import QUANTIZE_TEXTS, TINY, build_tiny_hf_dir

rng = np.random.default_rng(0)
PROMPTS = {  # name -> ids: one token, a sentence, most of the context
    "one token": [50256],
    "sentence": [50256, 464, 2746, 318, 257, 1332, 13],
    "long": [50256, *rng.integers(0, TINY["vocab_size"], size=TINY["n_positions"] - 8).tolist()],
}
GRAPHS = ["tiny_fp32_model_dir", "tiny_fused_fp32_model_dir", "tiny_model_dir", "int8_fused_per_channel_dir"]


@pytest.fixture(scope="module")
def int8_fused_per_channel_dir(tiny_fp32_model_dir, tmp_path_factory):
    """The int8 variant the shipped model uses: fused graph, per-channel weights."""
    out = tmp_path_factory.mktemp("int8-fused-per-channel") / "model"
    quantize.run(
        quantize.Config(
            input_dir=str(tiny_fp32_model_dir),
            output_dir=str(out),
            overwrite=True,
            variants=["optimized-per-channel"],
            eval_texts=QUANTIZE_TEXTS,
        )
    )
    return out


@pytest.fixture(scope="module")
def old_fp32_model_dir(tmp_path_factory):
    """The tiny model exported as before issue 12: no logits_start input."""
    work = tmp_path_factory.mktemp("old-export")
    hf_dir = build_tiny_hf_dir(work / "hf")
    with mock.patch.object(export, "add_logits_start", lambda graph: None):
        export.run(
            export.Config(input_dir=str(hf_dir), output_dir=str(work / "model"), overwrite=True, parity_new_tokens=4)
        )
    return work / "model"


def session(model_dir) -> DecoderSession:
    return DecoderSession(model_dir / "model.onnx")


@pytest.mark.parametrize("prompt", PROMPTS)
@pytest.mark.parametrize("graph", GRAPHS)
def test_prefill_logits_equal_the_last_row_of_all_positions(graph, prompt, request):
    decoder = session(request.getfixturevalue(graph))
    ids = PROMPTS[prompt]
    assert decoder.has_logits_start
    everything = decoder.sequence_logits(ids)  # what perplexity reads: every position
    assert everything.shape == (len(ids), TINY["vocab_size"])
    logits, cache = decoder.prefill(ids)
    np.testing.assert_array_equal(logits, everything[-1:])  # bit-identical, int8 included
    assert cache.length == len(ids)


@pytest.mark.parametrize("graph", GRAPHS)
def test_last_only_computes_one_row(graph, request):
    decoder = session(request.getfixturevalue(graph))
    ids = np.asarray([PROMPTS["sentence"]])
    logits, _ = decoder.forward_all(ids, decoder.empty_cache(), last_only=True)
    assert logits.shape == (1, 1, TINY["vocab_size"])


def test_logits_start_is_an_input_with_a_default_of_every_position(tiny_fp32_model_dir, tiny_model_dir):
    for model_dir in (tiny_fp32_model_dir, tiny_model_dir):
        graph = onnx.load(model_dir / "model.onnx").graph
        (declared,) = [i for i in graph.input if i.name == LOGITS_START]
        assert declared.type.tensor_type.elem_type == onnx.TensorProto.INT64
        (default,) = [numpy_helper.to_array(i) for i in graph.initializer if i.name == LOGITS_START]
        assert default.tolist() == [0]


def test_old_graph_without_the_input_still_serves(old_fp32_model_dir, tiny_fp32_model_dir):
    old, new = session(old_fp32_model_dir), session(tiny_fp32_model_dir)
    assert not old.has_logits_start
    for ids in PROMPTS.values():
        logits, _ = old.prefill(ids)
        np.testing.assert_array_equal(logits, old.sequence_logits(ids)[-1:])
        np.testing.assert_array_equal(logits, new.prefill(ids)[0])
    params = GenerationParams(max_new_tokens=12, temperature=0.0)
    texts = [
        Engine.load(d, intra_op_threads=1).generate("We propose", params).completions[0].text
        for d in (old_fp32_model_dir, tiny_fp32_model_dir)
    ]
    assert texts[0] == texts[1]


def test_perplexity_reads_every_position_as_before(old_fp32_model_dir, tiny_fp32_model_dir):
    documents = list(PROMPTS.values())[1:]
    old, new = session(old_fp32_model_dir), session(tiny_fp32_model_dir)
    for ids in documents:
        np.testing.assert_array_equal(new.sequence_logits(ids), old.sequence_logits(ids))
    assert perplexity(new.sequence_logits, documents) == perplexity(old.sequence_logits, documents)


def test_add_logits_start_refuses_a_graph_it_does_not_know(tiny_fp32_model_dir):
    graph = onnx.load(tiny_fp32_model_dir / "model.onnx")
    with pytest.raises(LogitsStartError, match="already has a logits_start input"):
        add_logits_start(graph)
    head = next(n for n in graph.graph.node if "logits" in n.output)
    head.op_type = "Gemm"
    graph.graph.input.pop()  # forget the input, keep the rest
    with pytest.raises(LogitsStartError, match="logits must come from a MatMul with a weight initializer, found Gemm"):
        add_logits_start(graph)
