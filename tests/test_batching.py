"""Continuous batching (backend/engine/batch.py, padded_cache.py, slot_cache.py) against the unbatched engine.

Oracles: the same model directory loaded with batching off (one request at a time, its own
cache), and transformers' greedy `generate` on the same PyTorch weights. Requests join the
running batch at chosen steps: a gate on the onnxruntime session lets the test release model
runs one at a time, so who joins when is decided by the test, not by thread timing.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.engine import Engine, GenerationParams, GenerationResult, TokenEvent
from backend.engine.padded_cache import PaddedCache
from backend.engine.session import DecoderSession, KVCache
from backend.engine.slot_cache import SlotCache, computes_rows_alone
from model_creation.tokenizer import load_gpt2_tokenizer
from tests.gated_session import WAIT, GatedSession
from tests.tiny_model import build_tiny_torch_model

EOS = 50256
PROMPTS = ["We propose a method to", "Deep", "Graph 🤖 transformers für naïve CJK 深度学习 and then some more words"]


@pytest.fixture(
    scope="module",
    params=["tiny_fp32_model_dir", "tiny_fused_fp32_model_dir", "tiny_model_dir", "tiny_unfused_model_dir"],
    ids=["export", "fused", "int8", "int8-unfused"],
)
def model_dir(request):
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def unbatched(model_dir) -> Engine:
    return Engine.load(model_dir, batching="off")


@pytest.fixture
def batched(model_dir) -> Engine:
    """A fresh batching engine per test (the gate wraps its session)."""
    engine = Engine.load(model_dir)
    assert engine.batches and engine.info["batching"] == "on"
    if engine.info["batch_alignment"] is None:  # the engine itself then says rows may differ by rounding
        pytest.skip("no padding unit keeps batched rows bit-identical on this machine")
    return engine


@pytest.fixture
def gate(batched, monkeypatch) -> GatedSession:
    gated = GatedSession(batched.session.session)
    monkeypatch.setattr(batched.session, "session", gated)
    yield gated
    gated.open()
    assert batched.scheduler.wait_idle(WAIT)


def collect(stream) -> tuple[list[TokenEvent], GenerationResult]:
    items = list(stream)
    assert isinstance(items[-1], GenerationResult) and all(isinstance(i, TokenEvent) for i in items[:-1])
    return items[:-1], items[-1]


def run_staggered(engine: Engine, gate: GatedSession, requests: list[tuple[str, GenerationParams]], joins: list[int]):
    """Submit request i after joins[i] more model runs; returns each request's (events, result)."""
    streams = []
    for (text, params), runs_before in zip(requests, joins, strict=True):
        gate.step(runs_before)
        streams.append(engine.stream(text, params))
    gate.open()
    return [collect(stream) for stream in streams]


def ids(result: GenerationResult) -> list[list[int]]:
    return [[t.token_id for t in c.tokens] for c in result.completions]


def same_output(result: GenerationResult, expected: GenerationResult) -> None:
    assert ids(result) == ids(expected)
    assert [(c.text, c.finish_reason) for c in result.completions] == [
        (c.text, c.finish_reason) for c in expected.completions
    ]
    for got, want in zip(result.completions, expected.completions, strict=True):
        np.testing.assert_allclose([t.logprob for t in got.tokens], [t.logprob for t in want.tokens], atol=1e-4)
    assert (result.seed, result.prompt_tokens, result.truncated) == (
        expected.seed,
        expected.prompt_tokens,
        expected.truncated,
    )


def sampled(**kwargs) -> GenerationParams:
    return GenerationParams(**{"temperature": 1.0, "top_p": 0.9, **kwargs})


CASES = {
    "greedy": [
        (PROMPTS[0], GenerationParams(temperature=0.0, seed=0, max_new_tokens=20)),
        (PROMPTS[1], GenerationParams(temperature=0.0, seed=0, max_new_tokens=12)),
        (PROMPTS[2], GenerationParams(temperature=0.0, seed=0, max_new_tokens=16, repetition_penalty=1.3)),
    ],
    "sampled": [
        (PROMPTS[0], sampled(max_new_tokens=20, seed=1)),
        (PROMPTS[1], sampled(max_new_tokens=25, seed=2, top_k=50, n=3)),
        (PROMPTS[2], sampled(max_new_tokens=9, seed=3, temperature=0.7, n=2, repetition_penalty=1.2)),
    ],
    "same prompt and seed": [
        (PROMPTS[0], sampled(max_new_tokens=15, seed=7)),
        (PROMPTS[0], sampled(max_new_tokens=15, seed=7)),
        (PROMPTS[0], sampled(max_new_tokens=15, seed=8, n=2)),
    ],
}


@pytest.mark.parametrize("joins", [[0, 0, 0], [0, 3, 7], [0, 1, 12]], ids=["together", "staggered", "late"])
@pytest.mark.parametrize("case", list(CASES))
def test_batched_equals_unbatched(batched, unbatched, gate, case, joins):
    requests = CASES[case]
    outputs = run_staggered(batched, gate, requests, joins)
    for (text, params), (events, result) in zip(requests, outputs, strict=True):
        same_output(result, unbatched.generate(text, params))
        for completion in result.completions:  # each stream carries its own tokens, in order
            assert [e for e in events if e.index == completion.tokens[0].index] == completion.tokens
    assert max(gate.batch_sizes) > max(p.n for _, p in requests)  # rows of different requests shared a step


def test_a_request_wanting_only_its_result_is_handed_no_token_events(batched, unbatched, gate):
    """Engine.generate submits without a stream: its rows decode in the batch as any other's, but
    its consumer is handed the result alone, not woken for every token."""
    requests = CASES["sampled"]
    streams = []
    for index, ((text, params), runs_before) in enumerate(zip(requests, [0, 2, 5], strict=True)):
        gate.step(runs_before)
        streams.append(batched.scheduler.submit(text, params, stream=index != 1))
    gate.open()
    quiet = list(streams[1])
    assert len(quiet) == 1 and isinstance(quiet[0], GenerationResult)
    same_output(quiet[0], unbatched.generate(*requests[1]))
    for index in (0, 2):
        events, result = collect(streams[index])
        assert len(events) == result.completion_tokens
        same_output(result, unbatched.generate(*requests[index]))
    assert max(gate.batch_sizes) > 3  # the quiet request's rows decoded together with the others'


def test_stop_strings_end_rows_while_others_go_on(batched, unbatched, gate):
    plain = unbatched.generate(PROMPTS[0], GenerationParams(temperature=0.0, seed=0, max_new_tokens=20)).completions[0]
    stop = plain.text[len(plain.text) // 2 : len(plain.text) // 2 + 3]
    requests = [
        (PROMPTS[0], GenerationParams(temperature=0.0, seed=0, max_new_tokens=20, stop=(stop,))),
        (PROMPTS[2], sampled(max_new_tokens=30, seed=4, n=2, stop=("zz", "\n\n"))),
    ]
    outputs = run_staggered(batched, gate, requests, [0, 2])
    for (text, params), (_, result) in zip(requests, outputs, strict=True):
        same_output(result, unbatched.generate(text, params))
    assert outputs[0][1].completions[0].finish_reason == "stop"


def test_greedy_batch_equals_transformers_generate(batched, gate):
    if batched.info["quantization"] == "int8":
        pytest.skip("int8 rounds the weights: its oracle is the unbatched int8 engine, above")
    torch_model, tokenizer = build_tiny_torch_model(), load_gpt2_tokenizer()
    requests = [
        (text, GenerationParams(temperature=0.0, seed=0, max_new_tokens=new))
        for text, new in zip(PROMPTS, (18, 10, 14), strict=True)
    ]
    outputs = run_staggered(batched, gate, requests, [0, 4, 2])
    for (text, params), (_, result) in zip(requests, outputs, strict=True):
        prompt = [EOS, *tokenizer.encode(text)]
        with torch.no_grad():
            expected = torch_model.generate(
                torch.tensor([prompt]),
                attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                do_sample=False,
                max_new_tokens=params.max_new_tokens,
                pad_token_id=EOS,
            )
        assert ids(result)[0] == expected[0, len(prompt) :].tolist()


def test_a_cancelled_request_leaves_and_the_others_are_unaffected(batched, unbatched, gate):
    requests = [
        (PROMPTS[0], sampled(max_new_tokens=20, seed=11)),
        (PROMPTS[1], sampled(max_new_tokens=40, seed=12, n=2)),
        (PROMPTS[2], sampled(max_new_tokens=20, seed=13)),
    ]
    streams = [batched.stream(text, params) for text, params in requests]
    for _ in range(20):  # the three prefills, then steps until all four rows decode together
        gate.step()
        if gate.batch_sizes[-2:] == [4, 4]:
            break
    assert gate.batch_sizes[-2:] == [4, 4]
    streams[1].close()
    gate.step(1)  # the step that was already being prepared may still include it ...
    gate.step(1)  # ... but the one after it cannot
    assert gate.batch_sizes[-1] == 2
    gate.open()
    with pytest.raises(StopIteration):
        next(streams[1])
    for index in (0, 2):
        _, result = collect(streams[index])
        same_output(result, unbatched.generate(*requests[index]))


def test_closing_the_only_stream_stops_the_model(batched, gate):
    stream = batched.stream(PROMPTS[0], GenerationParams(max_new_tokens=50, seed=0))
    gate.step(5)
    events = [next(stream) for _ in range(4)]
    assert all(isinstance(e, TokenEvent) for e in events)
    stream.close()
    gate.open()
    assert batched.scheduler.wait_idle(WAIT)
    assert len(gate.batch_sizes) <= 6 and batched.scheduler.rows == 0


@pytest.mark.parametrize(
    "widths, lengths, kept",
    [
        ((5,), [5], [0]),
        ((3, 7), [3, 7], [0]),
        ((7, 3, 4), [7, 3, 4], [1, 2]),
        ((2, 9), [2, 9], [1, 0]),
    ],
)
def test_padded_cache_layout(widths, lengths, kept):
    """Left padding: a row's own columns are its last `length` ones, the mask is 1 exactly there
    (and on the fed token), and leaving rows take the columns only they needed with them."""
    rng = np.random.default_rng(0)
    caches = [KVCache([rng.standard_normal((1, 2, w, 4)).astype(np.float32) for _ in range(2)]) for w in widths]
    padded = PaddedCache()
    for cache in caches:
        padded.join(cache)
    assert padded.width == max(widths) and padded.lengths.tolist() == lengths
    mask = padded.attention_mask()
    for row, (cache, length) in enumerate(zip(caches, lengths, strict=True)):
        assert mask[row].tolist() == [0] * (padded.width - length) + [1] * (length + 1)
        for mine, theirs in zip(padded.tensors, cache.tensors, strict=True):
            np.testing.assert_array_equal(mine[row, :, padded.width - length :], theirs[0])
            assert not mine[row, :, : padded.width - length].any()
    padded.keep(kept)
    assert padded.width == max(lengths[r] for r in kept) and padded.lengths.tolist() == [lengths[r] for r in kept]
    for row, source in enumerate(kept):
        np.testing.assert_array_equal(
            padded.tensors[0][row, :, padded.width - lengths[source] :], caches[source].tensors[0][0]
        )


@pytest.mark.parametrize(
    ("widths", "joining", "can"),
    [((5,), 9, True), ((5,), 7, False), ((5, 9), 13, True), ((5, 9), 10, False), ((), 3, True)],
)
def test_rows_join_only_with_padding_a_multiple_of_the_alignment(widths, joining, can):
    padded = PaddedCache(align=4)
    for width in widths:
        padded.join(KVCache([np.ones((1, 2, width, 3), dtype=np.float32)]))
    assert padded.can_join(joining) is can
    if not can:
        with pytest.raises(ValueError, match="cannot join"):
            padded.join(KVCache([np.ones((1, 2, joining, 3), dtype=np.float32)]))
    else:
        padded.join(KVCache([np.ones((1, 2, joining, 3), dtype=np.float32)]))
        assert ((padded.width - padded.lengths) % 4 == 0).all()


def test_a_leave_drops_only_whole_alignment_units():
    padded = PaddedCache(align=4)
    for width in (3, 15):  # paddings 12 and 0
        padded.join(KVCache([np.ones((1, 2, width, 3), dtype=np.float32)]))
    padded.keep([0])  # 12 columns only the leaving row used: all 12 go
    assert padded.width == 3
    padded = PaddedCache(align=4)
    for width in (1, 13, 17):  # paddings 16, 4, 0
        padded.join(KVCache([np.ones((1, 2, width, 3), dtype=np.float32)]))
    padded.keep([0, 1])  # 4 columns unused by the kept rows: a multiple of 4, all go
    assert padded.width == 13 and ((padded.width - padded.lengths) % 4 == 0).all()


def test_the_alignment_unit_is_measured(tiny_unfused_model_dir):
    from backend.engine.padded_cache import measure_alignment

    unit = measure_alignment(DecoderSession(tiny_unfused_model_dir / "model.onnx"))
    assert unit in (1, 2, 4, 8, 16, 32, None)
    engine = Engine.load(tiny_unfused_model_dir)
    assert engine.info["batch_alignment"] == unit and engine.info["kv_cache"] == "left-padded"


def test_a_group_query_graph_decodes_in_place_with_rows_computed_as_alone(tiny_model_dir, tiny_row_coupled_model_dir):
    engine = Engine.load(tiny_model_dir)
    assert engine.info["kv_cache"] == "in-place" and engine.info["batch_alignment"] == 1
    assert computes_rows_alone(engine.session)
    # The check can fail: per-tensor activation scales make each row depend on the others.
    assert not computes_rows_alone(DecoderSession(tiny_row_coupled_model_dir / "model.onnx"))


def test_in_place_rows_read_only_their_own_columns(tiny_model_dir):
    """Columns after a row's length are never read, so a leave moves only each row's own columns
    and a join copies only its prefill: filled with NaN, they leave every logit as alone."""
    session = DecoderSession(tiny_model_dir / "model.onnx")
    rng = np.random.default_rng(1)
    slots, alone = SlotCache(), []
    for length in (4, 40, 11):
        logits, cache = session.prefill([int(t) for t in rng.integers(0, 256, length)])
        alone.append((np.array([int(logits[0].argmax())]), cache))
        slots.join(cache)
    slots.keep([0, 2])  # the middle row leaves: row 2 moves up over a longer row's columns
    del alone[1]
    for buffer in slots.buffers:
        for row, length in enumerate(slots.lengths):
            buffer[row, :, length:] = np.nan
    batched = slots.decode(session, np.concatenate([token for token, _ in alone]))
    for row, (token, cache) in enumerate(alone):
        np.testing.assert_array_equal(batched[row], session.decode(token, cache)[0][0])


@pytest.mark.parametrize(
    ("lengths", "kept"),
    [((5,), [0]), ((3, 70), [1]), ((7, 3, 4), [0, 2]), ((2, 9, 4), [2, 0]), ((6, 6), [])],
)
def test_slot_cache_layout(lengths, kept):
    """Right padding: a row's positions are its first `length` columns, whatever joins or leaves;
    buffers grow (70 positions > the first 64 columns) without moving them."""
    rng = np.random.default_rng(0)
    caches = [KVCache([rng.standard_normal((1, 2, n, 4)).astype(np.float32) for _ in range(2)]) for n in lengths]
    slots = SlotCache()
    for cache in caches:
        slots.join(cache)
    assert slots.lengths.tolist() == list(lengths)
    slots.keep(kept)
    assert slots.lengths.tolist() == [lengths[r] for r in kept]
    assert bool(slots.buffers) == bool(kept)  # an empty batch holds no memory
    for row, source in enumerate(kept):
        for buffer, tensor in zip(slots.buffers, caches[source].tensors, strict=True):
            assert buffer.shape[2] > lengths[source]
            np.testing.assert_array_equal(buffer[row, :, : lengths[source]], tensor[0])


def test_int8_with_per_tensor_activation_scales_is_not_batched_unless_forced(tiny_row_coupled_model_dir):
    """Per-tensor activation scales couple the rows of a batch, so seeds would not reproduce."""
    assert "DynamicQuantizeLinear" in Engine.load(tiny_row_coupled_model_dir).info["batching"]
    assert not Engine.load(tiny_row_coupled_model_dir).batches
    assert Engine.load(tiny_row_coupled_model_dir, batching="force").batches
    assert Engine.load(tiny_row_coupled_model_dir, batching="off").info["batching"] == "off (setting)"
    with pytest.raises(ValueError, match="batching must be one of on, off, force"):
        Engine.load(tiny_row_coupled_model_dir, batching="sometimes")


def test_int8_with_per_row_activation_scales_is_batched(tiny_model_dir):
    assert Engine.load(tiny_model_dir).batches
