"""The prefix cache (backend/engine/prefix_cache.py): a prompt extending a recent one prefills only
its new tokens, and nothing about its output changes.

Oracle: the same model directory loaded with no prefix cache and no batching, which prefills every
prompt whole. What the model was fed is read from the onnxruntime session's own inputs.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from backend import create_app
from backend.engine import Engine, GenerationParams, GenerationResult
from backend.engine.prefix_cache import MIN_FED, PrefixCache, prefill, splits_exactly
from backend.engine.session import DecoderSession, KVCache

EOS = 50256
# A person typing an abstract, pausing after each piece; then a deletion and another abstract.
TYPING = [
    "We propose a method to",
    "We propose a method to learn",
    "We propose a method to learn graph representations",
    "We propose a method to learn graph representations with naïve 🤖 transformers. We",
    "We propose a method to learn graph",
    "Deep networks generalize because",
]
PARAMS = {
    "greedy": GenerationParams(temperature=0.0, seed=0, max_new_tokens=8),
    "sampled, n=2": GenerationParams(temperature=1.0, top_p=0.9, seed=5, max_new_tokens=10, n=2),
}


class FedTokens:
    """Wraps an onnxruntime session; records how many tokens each prefill (session.run) fed."""

    def __init__(self, session):
        self._session = session
        self.prefills: list[int] = []

    def run(self, output_names, feed, *args):
        if feed["input_ids"].shape[1] > 1 or feed[next(n for n in feed if n.startswith("past"))].shape[2] == 0:
            self.prefills.append(feed["input_ids"].shape[1])
        return self._session.run(output_names, feed, *args)

    def __getattr__(self, name):
        return getattr(self._session, name)


def prompt_ids(engine: Engine, text: str) -> list[int]:
    return [EOS, *engine.tokenizer.encode(text)]


def common_length(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def assert_same(got: GenerationResult, want: GenerationResult) -> None:
    for mine, theirs in zip(got.completions, want.completions, strict=True):
        assert [t.token_id for t in mine.tokens] == [t.token_id for t in theirs.tokens]
        assert (mine.text, mine.finish_reason) == (theirs.text, theirs.finish_reason)
        assert [t.logprob for t in mine.tokens] == [t.logprob for t in theirs.tokens]  # bit for bit
    assert (got.prompt_tokens, got.seed, got.truncated) == (want.prompt_tokens, want.seed, want.truncated)


@pytest.mark.parametrize("params", list(PARAMS.values()), ids=list(PARAMS))
@pytest.mark.parametrize("batching", ["on", "off"])
@pytest.mark.parametrize("model", ["tiny_model_dir", "tiny_unfused_model_dir"], ids=["in-place", "left-padded"])
def test_typing_on_prefills_only_the_new_tokens_and_changes_no_output(model, batching, params, request):
    model_dir = request.getfixturevalue(model)
    cached = Engine.load(model_dir, batching=batching, prefix_cache_mb=16)
    whole = Engine.load(model_dir, batching="off")
    assert cached.info["prefix_cache_mb"] == 16
    fed = FedTokens(cached.session.session)
    cached.session.session = fed
    seen: list[list[int]] = []
    for text in TYPING:
        ids = prompt_ids(cached, text)
        reusable = min(max((common_length(ids, old) for old in seen), default=0), len(ids) - MIN_FED)
        result = cached.generate(text, params)
        assert_same(result, whole.generate(text, params))
        assert fed.prefills[-1] == len(ids) - reusable  # the model read only what no recent prompt had
        assert result.cached_prompt_tokens == max(0, reusable - 1)  # BOS is not a prompt token
        seen.append(ids)
    assert fed.prefills[1] <= 3  # typed on by a word
    assert fed.prefills[-1] == len(prompt_ids(cached, TYPING[-1])) - 1  # another abstract shares only BOS


def test_streams_of_a_batch_reuse_prefixes_too(tiny_model_dir):
    cached = Engine.load(tiny_model_dir, prefix_cache_mb=16)
    whole = Engine.load(tiny_model_dir, batching="off")
    params = PARAMS["sampled, n=2"]
    first, second = cached.stream(TYPING[2], params), cached.stream(TYPING[3], params)
    results = [list(stream)[-1] for stream in (first, second)]
    assert results[1].cached_prompt_tokens > 0
    for text, result in zip(TYPING[2:4], results, strict=True):
        assert_same(result, whole.generate(text, params))


def test_a_graph_whose_logits_change_when_a_prompt_is_split_keeps_no_prefix_cache(tiny_row_coupled_model_dir):
    """Per-tensor activation scales are computed over the whole fed chunk, so a split prompt rounds differently."""
    assert not splits_exactly(DecoderSession(tiny_row_coupled_model_dir / "model.onnx"))
    engine = Engine.load(tiny_row_coupled_model_dir, batching="off", prefix_cache_mb=16)
    assert engine.prefixes is None and engine.info["prefix_cache_mb"] == 0
    engine.generate(TYPING[0], PARAMS["greedy"])
    assert engine.generate(TYPING[1], PARAMS["greedy"]).cached_prompt_tokens == 0


@pytest.mark.parametrize(
    "model", ["tiny_model_dir", "tiny_unfused_model_dir", "tiny_fp32_model_dir", "tiny_fused_fp32_model_dir"]
)
def test_these_graphs_split_prompts_exactly(model, request):
    assert splits_exactly(DecoderSession(request.getfixturevalue(model) / "model.onnx"))


@pytest.mark.parametrize("model", ["tiny_model_dir", "tiny_unfused_model_dir"], ids=["in-place", "left-padded"])
def test_a_stored_cache_is_never_written_by_the_runs_that_read_it(model, request):
    """A whole stored entry is handed out without a copy, and the request's own decode reads it as
    its past: the stored tensors must come out of both unchanged."""
    session = DecoderSession(request.getfixturevalue(model) / "model.onnx")
    prefixes = PrefixCache(max_bytes=2**24)
    ids = [EOS, 464, 2746, 318, 257]
    _, cache, reused = prefill(session, ids, prefixes)
    stored = [t.copy() for t in cache.tensors]
    session.decode(np.array([1332]), cache)
    _, _, reused = prefill(session, [*ids, 1332, 13], prefixes)
    assert reused == len(ids)
    assert all(np.array_equal(now, then) for now, then in zip(cache.tensors, stored, strict=True))


def cache_of(length: int, fill: float) -> KVCache:
    """A fake one-layer cache [1, 1, length, 2] whose values say which prompt it came from (8 bytes per position)."""
    return KVCache([np.full((1, 1, length, 2), fill, dtype=np.float32)])


def ids(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


@pytest.mark.parametrize(
    "stored, asked, reused, fill",
    [
        ([(ids(1, 2, 3, 4), 1.0)], ids(1, 2, 3, 4, 5, 6), 4, 1.0),  # typed on: the whole stored prompt
        ([(ids(1, 2, 3, 4), 1.0)], ids(1, 2, 3, 9, 5), 3, 1.0),  # the last word re-tokenised
        ([(ids(1, 2, 3, 4), 1.0)], ids(1, 2, 3), 1, 1.0),  # deleted: at least MIN_FED tokens still fed
        ([(ids(1, 2, 3, 4), 1.0)], ids(1, 2), 0, None),
        ([(ids(7, 8, 9), 1.0)], ids(1, 2, 3, 4), 0, None),
        ([(ids(1, 2, 7, 7), 1.0), (ids(5, 5, 5, 5), 3.0), (ids(1, 2, 3, 7, 7), 2.0)], ids(1, 2, 3, 4, 5), 3, 2.0),
    ],
)
def test_the_longest_shared_prefix_is_reused(stored, asked, reused, fill):
    prefixes = PrefixCache(max_bytes=10_000)
    for known, value in stored:
        prefixes.add(known, cache_of(len(known), value))
    n, cache = prefixes.longest_prefix(asked)
    assert n == reused
    if fill is None:
        assert cache is None
    else:
        assert cache.length == reused and np.all(cache.tensors[0] == fill) and cache.tensors[0].flags.c_contiguous


def test_the_budget_drops_the_least_recently_used_and_a_prompt_covering_another_replaces_it():
    prefixes = PrefixCache(max_bytes=8 * 30)  # room for 30 positions of the fake cache
    prefixes.add(ids(*range(10)), cache_of(10, 1.0))
    prefixes.add(ids(*range(100, 110)), cache_of(10, 2.0))
    prefixes.add(ids(*range(10), 42, 43), cache_of(12, 3.0))  # covers the first: it goes
    assert len(prefixes) == 2 and prefixes.bytes == 8 * 22
    prefixes.longest_prefix(ids(*range(100, 105)))  # the second is now the most recently used
    prefixes.add(ids(*range(200, 212)), cache_of(12, 4.0))  # 34 positions: the third goes
    assert prefixes.longest_prefix(ids(*range(10), 42, 43, 44))[0] == 0
    assert prefixes.longest_prefix(ids(*range(100, 110), 7, 7))[0] == 10
    prefixes.add(ids(*range(300, 340)), cache_of(40, 5.0))  # larger than the budget: kept nowhere
    assert len(prefixes) == 0 and prefixes.bytes == 0


@pytest.mark.parametrize(
    "mb, line", [(64, "prefix cache 64 MiB"), (0, "no prefix cache (AUTOCOMPLETE_PREFIX_CACHE_MB=0)")]
)
def test_the_service_reuses_prefixes_and_counts_them(tiny_model_dir, caplog, mb, line):
    """Through the API: the same answers with and without the cache, and /metrics counts the
    prompt tokens the cache supplied."""
    with caplog.at_level(logging.INFO):
        app = create_app(
            {"TESTING": True, "MODEL_DIR": str(tiny_model_dir), "INTRA_OP_THREADS": 1, "PREFIX_CACHE_MB": mb}
        )
    assert any("loaded model" in r.getMessage() and line in r.getMessage() for r in caplog.records)
    client = app.test_client()
    answers = []
    for text in TYPING[:3]:
        response = client.post("/generate", json={"text": text, "max_new_tokens": 6, "seed": 3, "logprobs": True})
        assert response.status_code == 200
        answers.append(response.get_json()["completions"])
    metrics = {
        s.name: s.value
        for family in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))
        for s in family.samples
    }
    engine = Engine.load(tiny_model_dir, batching="off")
    typed = [prompt_ids(engine, text) for text in TYPING[:3]]  # each extends the one before
    reused = [min(common_length(new, old), len(new) - MIN_FED) for old, new in zip(typed[:-1], typed[1:], strict=True)]
    assert metrics["autocomplete_prompt_tokens_cached_total"] == (sum(reused) - len(reused) if mb else 0)  # BOS: no
    for text, completions in zip(TYPING[:3], answers, strict=True):
        want = engine.generate(text, GenerationParams(max_new_tokens=6, seed=3))
        assert [c["text"] for c in completions] == [c.text for c in want.completions]
        assert [t["logprob"] for t in completions[0]["tokens"]] == [t.logprob for t in want.completions[0].tokens]
