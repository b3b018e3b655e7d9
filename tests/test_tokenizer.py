"""The pipeline's GPT-2 tokenizer against the `tokenizers` library's own byte-level BPE (the oracle)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
from tokenizers import ByteLevelBPETokenizer, Tokenizer

from model_creation.tokenizer import ASSETS_DIR, END_OF_TEXT_ID, load_gpt2_tokenizer, save_tokenizer

SAMPLES = [
    "We propose a method to",
    "Deep neural networks (DNNs) achieve 99.7% accuracy on ImageNet-1k.",
    "  leading spaces,\ttabs\nand newlines\n\n",
    "Unicode: café, naïve, Schrödinger, 東京, emoji 🤖, math ∇θ L(θ) ≤ ε",
    "",
]


@pytest.fixture(scope="module")
def oracle() -> ByteLevelBPETokenizer:
    return ByteLevelBPETokenizer.from_file(str(ASSETS_DIR / "vocab.json"), str(ASSETS_DIR / "merges.txt"))


@pytest.mark.parametrize("text", SAMPLES)
def test_ids_match_byte_level_bpe(oracle, text):
    assert load_gpt2_tokenizer()(text)["input_ids"] == oracle.encode(text).ids


@pytest.mark.parametrize("text", SAMPLES)
def test_decode_round_trips(text):
    tokenizer = load_gpt2_tokenizer()
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


def test_special_token_and_lengths():
    tokenizer = load_gpt2_tokenizer()
    assert tokenizer.eos_token_id == tokenizer.bos_token_id == tokenizer.unk_token_id == END_OF_TEXT_ID
    assert tokenizer.model_max_length == 1024
    assert len(tokenizer) == 50257
    # The marker is one token, not the 6 pieces its characters would otherwise become.
    assert tokenizer("a<|endoftext|>b")["input_ids"] == [64, END_OF_TEXT_ID, 65]


def test_saved_directory_reloads_with_identical_ids(tmp_path):
    save_tokenizer(tmp_path / "tok")
    names = {p.name for p in (tmp_path / "tok").iterdir()}
    assert {"tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"} <= names
    reloaded = Tokenizer.from_file(str(tmp_path / "tok" / "tokenizer.json"))
    tokenizer = load_gpt2_tokenizer()
    for text in SAMPLES + ["title\nabstract<|endoftext|>next"]:
        assert reloaded.encode(text).ids == tokenizer(text)["input_ids"]
    assert reloaded.token_to_id("<|endoftext|>") == END_OF_TEXT_ID
