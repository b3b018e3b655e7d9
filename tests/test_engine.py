"""backend.engine end to end on the tiny model: ONNX KV-cache loop vs transformers' generate.

Oracles: transformers `generate` on the same PyTorch weights (greedy tokens, raw logits), a
plain onnxruntime loop that recomputes the whole sequence every step (no cache), the
`transformers` tokenizer, and a count of onnxruntime runs.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from backend.engine import Completion, Engine, GenerationParams, GenerationResult, ModelLoadError, TokenEvent
from backend.engine.decode_loop import StopStrings, fit_context
from model_creation import export
from model_creation.stage_dir import write_metrics
from model_creation.tokenizer import load_gpt2_tokenizer, save_tokenizer
from tests.tiny_model import TINY, build_tiny_torch_model

EOS = 50256
PROMPTS = ["We propose a method to", "Deep networks generalize", "Graph 🤖 transformers für naïve CJK 深度学习"]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", params=["tiny_fp32_model_dir", "tiny_fused_fp32_model_dir"], ids=["export", "fused"])
def fp32_model_dir(request) -> Path:
    """The exported graph as it is, and as the optimized-* quantize variants rewrite it."""
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def fp32(fp32_model_dir) -> Engine:
    return Engine.load(fp32_model_dir)


@pytest.fixture(scope="module")
def int8(tiny_model_dir) -> Engine:
    return Engine.load(tiny_model_dir)


@pytest.fixture(scope="module")
def torch_model():
    return build_tiny_torch_model()


@pytest.fixture(scope="module")
def hf_tokenizer():
    return load_gpt2_tokenizer()


class CountingSession:
    """Wraps the onnxruntime session to count model runs (plain, or in place through an IOBinding)."""

    def __init__(self, session):
        self._session, self.runs = session, 0

    def run(self, *args, **kwargs):
        self.runs += 1
        return self._session.run(*args, **kwargs)

    def run_with_iobinding(self, *args, **kwargs):
        self.runs += 1
        return self._session.run_with_iobinding(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._session, name)


@pytest.fixture
def counted(monkeypatch):
    def wrap(engine: Engine) -> CountingSession:
        proxy = CountingSession(engine.session.session)
        monkeypatch.setattr(engine.session, "session", proxy)
        return proxy

    return wrap


def greedy(**kwargs) -> GenerationParams:
    return GenerationParams(temperature=0.0, **kwargs)


def token_ids(completion: Completion) -> list[int]:
    return [t.token_id for t in completion.tokens]


def torch_generate(model, ids: list[int], max_new_tokens: int, **kwargs):
    input_ids = torch.tensor([ids])
    with torch.no_grad():
        return model.generate(
            input_ids,
            attention_mask=torch.ones_like(input_ids),
            do_sample=False,
            max_new_tokens=max_new_tokens,
            pad_token_id=EOS,
            **kwargs,
        )


@pytest.mark.parametrize("penalty", [1.0, 1.3])
@pytest.mark.parametrize("prompt", PROMPTS)
def test_greedy_equals_transformers_generate(fp32, torch_model, hf_tokenizer, prompt, penalty):
    prompt_ids = hf_tokenizer.encode(prompt)
    result = fp32.generate(prompt, greedy(max_new_tokens=30, repetition_penalty=penalty))
    expected = torch_generate(torch_model, [EOS, *prompt_ids], 30, repetition_penalty=penalty)[0, len(prompt_ids) + 1 :]
    assert token_ids(result.completions[0]) == expected.tolist()
    assert result.prompt_tokens == len(prompt_ids) and not result.truncated


def test_logprobs_are_the_raw_model_log_softmax(fp32, torch_model, hf_tokenizer):
    prompt_ids = hf_tokenizer.encode(PROMPTS[0])
    out = torch_generate(torch_model, [EOS, *prompt_ids], 12, output_logits=True, return_dict_in_generate=True)
    tokens = fp32.generate(PROMPTS[0], greedy(max_new_tokens=12, logprobs=True)).completions[0].tokens
    for step, token in enumerate(tokens):
        expected = torch.log_softmax(out.logits[step][0].double(), dim=-1)[token.token_id].item()
        assert token.logprob == pytest.approx(expected, abs=1e-4)


def no_cache_greedy(model_dir: Path, ids: list[int], steps: int) -> list[int]:
    """Greedy decoding that feeds the whole sequence every step with an empty past."""
    session = ort.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    heads, head_dim = TINY["n_head"], TINY["n_embd"] // TINY["n_head"]
    ids = list(ids)
    for _ in range(steps):
        feed = {n: np.zeros((1, heads, 0, head_dim), np.float32) for n in names if n.startswith("past_key_values.")}
        feed["input_ids"] = np.array([ids], dtype=np.int64)
        feed["attention_mask"] = np.ones((1, len(ids)), dtype=np.int64)
        if "position_ids" in names:
            feed["position_ids"] = np.arange(len(ids), dtype=np.int64)[None, :]
        logits = session.run(["logits"], feed)[0]  # [1, seq, vocab]
        ids.append(int(np.argmax(logits[0, -1])))
    return ids[-steps:]


def test_kv_cache_equals_recomputing_the_sequence(fp32, fp32_model_dir, hf_tokenizer):
    prompt_ids = hf_tokenizer.encode(PROMPTS[1])
    result = fp32.generate(PROMPTS[1], greedy(max_new_tokens=25))
    assert token_ids(result.completions[0]) == no_cache_greedy(fp32_model_dir, [EOS, *prompt_ids], 25)


def test_int8_generates_valid_text(int8, hf_tokenizer):
    assert int8.info["quantization"] == "int8"
    result = int8.generate(PROMPTS[0], GenerationParams(max_new_tokens=20, seed=0, n=2))
    for completion in result.completions:
        ids = token_ids(completion)
        assert len(ids) == 20 and all(0 <= i < 50257 for i in ids)
        assert completion.text == hf_tokenizer.decode(ids) and completion.finish_reason == "length"


def test_n_completions_share_one_prefill_and_decode_as_a_batch(fp32, counted):
    single = token_ids(fp32.generate(PROMPTS[0], greedy(max_new_tokens=15)).completions[0])
    session = counted(fp32)
    result = fp32.generate(PROMPTS[0], greedy(max_new_tokens=15, n=3))
    # One prefill run, then one batched run per further token: never a run per completion.
    assert session.runs == 15
    assert [token_ids(c) for c in result.completions] == [single] * 3
    assert result.completion_tokens == 45

    sampled = fp32.generate(PROMPTS[0], GenerationParams(max_new_tokens=15, n=3, seed=5, temperature=1.0))
    texts = [c.text for c in sampled.completions]
    assert len(set(texts)) == 3


def test_seed_reproduces_and_different_seeds_differ(fp32):
    params = GenerationParams(max_new_tokens=20, seed=123)
    first, again = fp32.generate(PROMPTS[0], params), fp32.generate(PROMPTS[0], params)
    assert first.seed == 123 and token_ids(first.completions[0]) == token_ids(again.completions[0])
    other = fp32.generate(PROMPTS[0], GenerationParams(max_new_tokens=20, seed=124))
    assert token_ids(other.completions[0]) != token_ids(first.completions[0])
    drawn = fp32.generate(PROMPTS[0], GenerationParams(max_new_tokens=20))
    replay = fp32.generate(PROMPTS[0], GenerationParams(max_new_tokens=20, seed=drawn.seed))
    assert token_ids(drawn.completions[0]) == token_ids(replay.completions[0])


def spanning_stop(completion: Completion) -> tuple[str, int]:
    """A stop string that straddles a token boundary and first occurs there, and where it starts."""
    text, offset = completion.text, 0
    for token in completion.tokens[:-1]:
        offset += len(token.text)
        candidate = text[offset - 2 : offset + 2]
        if offset >= 2 and len(candidate) == 4 and text.find(candidate) == offset - 2:
            return candidate, offset - 2
    raise AssertionError(f"no token boundary to test in {text!r}")


def test_stop_string_spanning_tokens_cuts_the_text(fp32):
    full = fp32.generate(PROMPTS[0], greedy(max_new_tokens=40)).completions[0]
    stop, at = spanning_stop(full)
    result = fp32.generate(PROMPTS[0], greedy(max_new_tokens=40, stop=("never appears", stop)))
    completion = result.completions[0]
    assert completion.finish_reason == "stop" and completion.text == full.text[:at]
    assert stop not in completion.text


def test_streamed_text_never_shows_a_pending_stop_string(fp32):
    full = fp32.generate(PROMPTS[0], greedy(max_new_tokens=40)).completions[0]
    stop, at = spanning_stop(full)
    shown = ""
    for item in fp32.stream(PROMPTS[0], greedy(max_new_tokens=40, stop=(stop,))):
        if isinstance(item, TokenEvent):
            shown += item.text
            assert full.text[:at].startswith(shown)  # nothing of the stop string ever leaves
    assert shown == item.completions[0].text == full.text[:at]


def test_earliest_stop_string_wins(fp32):
    full = fp32.generate(PROMPTS[0], greedy(max_new_tokens=40)).completions[0]
    early, late = full.text[3:6], full.text[20:24]
    completion = fp32.generate(PROMPTS[0], greedy(max_new_tokens=40, stop=(late, early))).completions[0]
    assert completion.text == full.text[: full.text.find(early)] and completion.finish_reason == "stop"


@pytest.mark.parametrize(
    "stops, pieces, released, stopped",
    [
        # pieces are (text, final): the last piece of a completion releases whatever is held
        (("\n\n",), [("a\n", False), ("\nb", False)], ["a", ""], [False, True]),  # held "\n" was part of the stop
        (("\n\n",), [("a\n", False), ("b", False)], ["a", "\nb"], [False, False]),  # released once it cannot be one
        (("END",), [("xE", False), ("N", False), ("Dy", False)], ["x", "", ""], [False, False, True]),
        (("END",), [("xEN", True)], ["xEN"], [False]),
        (("ab", "b"), [("xab", False)], ["x"], [True]),  # the earliest match wins
        ((), [("plain", False)], ["plain"], [False]),
    ],
)
def test_stop_strings_table(stops, pieces, released, stopped):
    matcher = StopStrings(stops)
    results = [matcher.push(piece, final=final) for piece, final in pieces]
    assert [r[0] for r in results] == released and [r[1] for r in results] == stopped


@pytest.mark.parametrize(
    "prompt_len, max_new, n_positions, expected",
    [
        (10, 40, 128, (10, 40, False)),
        (100, 40, 128, (87, 40, True)),  # keep the 87 most recent prompt tokens
        (10, 512, 128, (10, 117, False)),  # the prompt stays whole; new tokens fill the window
        (5, 512, 256, (5, 250, False)),  # issue 14: this kept 1 prompt token and generated 254
        (100, 512, 128, (63, 64, True)),  # a long prompt keeps half the window (127 // 2 = 63)
        (100, 64, 128, (63, 64, True)),
        (100, 65, 128, (63, 64, True)),  # reserve capped at half the window: 64 of the 65 fit
        (0, 40, 128, (0, 40, False)),
        (1, 1, 2, (0, 1, True)),  # a window of BOS + 1 token: only the new token fits
    ],
)
def test_fit_context_table(prompt_len, max_new, n_positions, expected):
    ids = list(range(prompt_len))
    kept, new, truncated = fit_context(ids, max_new, n_positions)
    assert (len(kept), new, truncated) == expected and kept == ids[len(ids) - len(kept) :]


def test_long_prompt_keeps_its_most_recent_tokens(fp32, torch_model, hf_tokenizer):
    prompt = " ".join(f"word{i}" for i in range(120))
    prompt_ids = hf_tokenizer.encode(prompt)
    assert len(prompt_ids) > 128
    result = fp32.generate(prompt, greedy(max_new_tokens=20))
    assert result.truncated and result.prompt_tokens == 128 - 1 - 20
    kept = prompt_ids[-result.prompt_tokens :]
    expected = torch_generate(torch_model, [EOS, *kept], 20)[0, len(kept) + 1 :]
    assert token_ids(result.completions[0]) == expected.tolist()


@pytest.mark.parametrize("seed", range(4))
def test_events_join_to_the_decoded_text(fp32, hf_tokenizer, seed):
    """High-temperature sampling reaches odd byte tokens; no half character ever leaves."""
    params = GenerationParams(max_new_tokens=60, temperature=2.0, top_p=1.0, seed=seed, n=2)
    items = list(fp32.stream(PROMPTS[2], params))
    result = items[-1]
    assert isinstance(result, GenerationResult) and all(isinstance(i, TokenEvent) for i in items[:-1])
    for completion in result.completions:
        streamed = "".join(e.text for e in items[:-1] if e.index == completion.tokens[0].index)
        ids = [i for i in token_ids(completion) if i != EOS]
        assert streamed == completion.text == hf_tokenizer.decode(ids)


def test_closing_the_stream_stops_the_model(fp32_model_dir, counted):
    """Unbatched, the stream is the generation loop itself (tests/test_batching.py has the batched case)."""
    engine = Engine.load(fp32_model_dir, batching="off")
    session = counted(engine)
    stream = engine.stream(PROMPTS[0], GenerationParams(max_new_tokens=50, seed=0))
    events = [next(stream) for _ in range(5)]
    assert all(isinstance(e, TokenEvent) for e in events)
    runs = session.runs
    stream.close()
    assert session.runs == runs <= 5
    with pytest.raises(StopIteration):
        next(stream)


@pytest.fixture(scope="module")
def eos_engine(tmp_path_factory) -> Engine:
    """A tiny model whose next-token distribution is fixed with p(<|endoftext|>) = 0.25: the final
    layer norm outputs a constant vector v, and EOS's (tied) embedding is scaled along v."""
    model = build_tiny_torch_model(seed=1)
    with torch.no_grad():
        v = torch.randn(TINY["n_embd"], generator=torch.Generator().manual_seed(0))
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.copy_(v)
        others = torch.logsumexp(model.transformer.wte.weight[:EOS] @ v, dim=0)
        model.transformer.wte.weight[EOS] = v * (others + np.log(0.25 / 0.75)) / v.dot(v)
    hf_dir = tmp_path_factory.mktemp("eos-hf")
    model.save_pretrained(hf_dir)
    save_tokenizer(hf_dir)
    write_metrics(hf_dir, {"stage": "train", "note": "constant distribution, p(EOS)=0.25"})
    out = tmp_path_factory.mktemp("eos-onnx")
    export.run(export.Config(input_dir=str(hf_dir), output_dir=str(out), overwrite=True, parity_new_tokens=2))
    return Engine.load(out)


def test_eos_ends_a_completion(eos_engine, hf_tokenizer):
    result = eos_engine.generate(
        PROMPTS[0], GenerationParams(max_new_tokens=100, temperature=1.0, top_p=1.0, seed=3, n=4)
    )
    lengths = []
    for completion in result.completions:
        ids = token_ids(completion)
        assert completion.finish_reason == "eos" and ids[-1] == EOS and EOS not in ids[:-1]
        assert completion.text == hf_tokenizer.decode(ids[:-1])
        lengths.append(len(ids))
    assert max(lengths) > 1 and result.completion_tokens == sum(lengths)
    # Greedy: p(EOS) = 0.25 while the other 50,256 tokens share 0.75, so EOS is the argmax at once.
    first = eos_engine.generate(PROMPTS[0], greedy(max_new_tokens=10)).completions[0]
    assert token_ids(first) == [EOS] and first.text == "" and first.finish_reason == "eos"


def test_max_new_tokens_ends_with_length(fp32):
    completion = fp32.generate(PROMPTS[0], greedy(max_new_tokens=5)).completions[0]
    assert completion.finish_reason == "length" and len(completion.tokens) == 5


def test_info_describes_the_model(fp32, int8, torch_model, fp32_model_dir):
    expected_parameters = sum(p.numel() for p in torch_model.parameters())  # tied head counted once
    for engine, quantization in [(fp32, "fp32"), (int8, "int8")]:
        info = engine.info
        assert info["quantization"] == quantization and info["parameters"] == expected_parameters
        assert info["context_length"] == 128 and info["vocab_size"] == 50257 and info["load_seconds"] >= 0
    assert fp32.info["name"] == Path(fp32_model_dir).name


def test_distilgpt2_parameter_count():
    from transformers import GPT2Config, GPT2LMHeadModel

    from backend.engine.engine import gpt2_parameter_count

    config = GPT2Config.from_json_file(str(REPO / "model_creation/assets/gpt2/distilgpt2-config.json"))
    with torch.device("meta"):
        model = GPT2LMHeadModel(config)
    expected = sum(p.numel() for p in model.parameters())
    assert gpt2_parameter_count(config.n_layer, config.n_embd, config.n_positions, config.vocab_size) == expected


def corrupt(name: str, content: bytes | None):
    def apply(directory: Path) -> None:
        if content is None:
            (directory / name).unlink()
        else:
            (directory / name).write_bytes(content)

    return apply


@pytest.mark.parametrize(
    "damage, message",
    [
        (corrupt("model.onnx", None), "model.onnx is missing"),
        (corrupt("model.onnx", b"not a protobuf"), "could not be loaded by onnxruntime"),
        (corrupt("tokenizer.json", None), "tokenizer.json is missing"),
        (corrupt("tokenizer.json", b"{oops"), "not a valid tokenizer file"),
        (corrupt("config.json", None), "config.json is missing"),
        (corrupt("config.json", b"{"), "not valid JSON"),
        (corrupt("config.json", json.dumps({"n_layer": 2}).encode()), "lacks integer field(s) n_head"),
        (corrupt("config.json", json.dumps({**TINY, "n_layer": 3}).encode()), "missing past_key_values.2.key"),
        # A config.json that disagrees with the graph must fail the load, not every request (issue 14).
        (corrupt("config.json", json.dumps({**TINY, "n_head": 4}).encode()), "test generation .*n_head=4"),
        (corrupt("config.json", json.dumps({**TINY, "n_embd": 32}).encode()), "test generation .*n_embd=32"),
        (corrupt("config.json", json.dumps({**TINY, "vocab_size": 50000}).encode()), "vocab_size 50000"),
        (corrupt("config.json", json.dumps({**TINY, "vocab_size": 60000}).encode()), r"logits are \[1, 50257\]"),
        (
            corrupt("config.json", json.dumps({**TINY, "n_positions": 256}).encode()),
            "test generation .*n_positions=256",
        ),
        (corrupt("config.json", json.dumps({**TINY, "eos_token_id": 60000}).encode()), "end of text 60000"),
    ],
)
def test_broken_model_directory_raises_model_load_error(tiny_model_dir, tmp_path, damage, message):
    broken = shutil.copytree(tiny_model_dir, tmp_path / "model")
    damage(broken)
    pattern = message if ".*" in message or "\\[" in message else re.escape(message)
    with pytest.raises(ModelLoadError, match=pattern):
        Engine.load(broken)


def test_missing_directory_raises_model_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        Engine.load(tmp_path / "nowhere")


def test_serving_imports_neither_torch_nor_transformers(tiny_model_dir):
    script = textwrap.dedent(
        f"""
        import sys
        from backend.engine import Engine, GenerationParams
        engine = Engine.load({str(tiny_model_dir)!r})
        result = engine.generate("We propose", GenerationParams(max_new_tokens=5, seed=0))
        assert len(result.completions[0].tokens) == 5
        heavy = sorted(m for m in ("torch", "transformers", "optimum", "onnx") if m in sys.modules)
        assert not heavy, heavy
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
