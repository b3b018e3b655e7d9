"""The shipped model (models/distilgpt2-arxiv): a complete int8 model directory that loads in
seconds, writes English in the corpus's register, and scores held-out abstracts no worse than
its evaluation recorded.

The fixtures in tests/fixtures/shipped_model/ come from the dataset stage's test split (papers
the model never trained on); make_fixtures.py there rebuilds them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from backend.engine import Engine, GenerationParams

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "models" / "distilgpt2-arxiv"
FIXTURES = Path(__file__).parent / "fixtures" / "shipped_model"
# The committed model is the interim CPU-trained one (see its model card); its int8 perplexity on
# the committed sample measured 231.6 when it was shipped (223.6 on the whole test split). The
# bound leaves room for onnxruntime version drift only. The GPU-trained DistilGPT2 must reach 22.
MAX_SAMPLE_PERPLEXITY = 240.0


@pytest.fixture(scope="module")
def engine():
    return Engine.load(SHIPPED, intra_op_threads=1)


def words(text: str) -> list[str]:
    return [w.lower() for w in re.findall(r"[A-Za-z]+", text)]


def test_shipped_directory_is_a_complete_int8_model(engine):
    names = {p.name for p in SHIPPED.iterdir()}
    assert {"model.onnx", "config.json", "tokenizer.json", "generation_config.json", "README.md", "eval.json"} <= names
    assert engine.info["quantization"] == "int8"
    assert sum(p.stat().st_size for p in SHIPPED.iterdir()) < 100 * 1024 * 1024
    evaluation = json.loads((SHIPPED / "eval.json").read_text())
    assert set(evaluation["perplexity"]) == {"pytorch", "onnx_fp32", "onnx_int8"}
    card = (SHIPPED / "README.md").read_text()
    assert f"{evaluation['perplexity']['onnx_int8']:,.2f}" in card


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_seeded_completion_is_corpus_english(engine, seed):
    params = GenerationParams(max_new_tokens=40, temperature=0.8, top_p=0.95, seed=seed)
    first = engine.generate("We propose a method to", params).completions[0].text
    assert engine.generate("We propose a method to", params).completions[0].text == first  # seeded: repeatable
    vocabulary = set((FIXTURES / "test-split-words.txt").read_text().split())
    written = words(first)
    assert len(written) >= 10, first
    known = sum(w in vocabulary for w in written) / len(written)
    assert known >= 0.9, f"{known:.0%} of the words occur in the test split: {first!r}"
    four_grams = [tuple(written[i : i + 4]) for i in range(len(written) - 3)]
    assert len(four_grams) == len(set(four_grams)), f"a 4-gram repeats: {first!r}"


def test_int8_perplexity_on_held_out_abstracts():
    from model_creation.onnx_decoder import OnnxDecoder
    from model_creation.perplexity import document_ids, perplexity
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(SHIPPED / "tokenizer.json"))
    n_positions = json.loads((SHIPPED / "config.json").read_text())["n_positions"]
    rows = [json.loads(line) for line in (FIXTURES / "test-abstracts-sample.jsonl").read_text().splitlines()]
    documents = [document_ids(tokenizer, row["text"], n_positions) for row in rows]
    measured = perplexity(OnnxDecoder(SHIPPED / "model.onnx").logits, documents)
    assert measured.documents == len(rows)
    assert measured.perplexity < MAX_SAMPLE_PERPLEXITY
