"""backend.engine.detokenize: incremental byte-level detokenisation that never splits a character.

The oracle is the `tokenizers` library's own decode of the whole id sequence, and transformers'
GPT-2 byte alphabet.
"""

from __future__ import annotations

import numpy as np
import pytest
from tokenizers import Tokenizer
from transformers.models.gpt2.tokenization_gpt2 import bytes_to_unicode

from backend.engine.detokenize import IncrementalDecoder, byte_level_alphabet, token_bytes_table
from model_creation.tokenizer import save_tokenizer


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> Tokenizer:
    directory = tmp_path_factory.mktemp("tokenizer")
    save_tokenizer(directory)
    return Tokenizer.from_file(str(directory / "tokenizer.json"))


@pytest.fixture(scope="module")
def table(tokenizer) -> list[bytes]:
    return token_bytes_table(tokenizer)


def decode_pieces(table: list[bytes], ids: list[int]) -> list[str]:
    decoder = IncrementalDecoder(table)
    return [decoder.add(i) for i in ids] + [decoder.flush()]


def test_alphabet_is_gpt2s():
    assert byte_level_alphabet() == {char: byte for byte, char in bytes_to_unicode().items()}


def test_table_covers_the_vocabulary(tokenizer, table):
    assert len(table) == 50257
    assert table[50256] == b""  # <|endoftext|> is skipped, as tokenizer.decode does
    assert table[tokenizer.token_to_id("Ġmodel")] == b" model"


TEXTS = [
    "We propose a method to learn representations.",
    "Emoji split across tokens: 🤖🧠 and 👩‍🔬 done",
    "CJK: 深度学习模型的泛化能力 and 日本語のテキスト",
    "Accents and maths: naïve Bayes, α-β pruning, ∑ᵢ xᵢ ≤ ε, Schrödinger",
    "  leading spaces, tabs\tand\nnewlines\n\n kept exactly ",
]


@pytest.mark.parametrize("text", TEXTS)
def test_pieces_are_whole_characters_and_join_to_the_text(tokenizer, table, text):
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    pieces = decode_pieces(table, ids)
    assert "\ufffd" not in "".join(pieces)  # no half character was ever emitted
    assert "".join(pieces) == tokenizer.decode(ids) == text


def test_a_character_spanning_tokens_is_held_until_complete(tokenizer, table):
    ids = tokenizer.encode("🤖", add_special_tokens=False).ids
    assert len(ids) > 1  # the emoji's 4 bytes span several GPT-2 tokens
    pieces = decode_pieces(table, ids)
    assert pieces[:-2] == [""] * (len(ids) - 1) and pieces[-2] == "🤖"


@pytest.mark.parametrize("seed", range(5))
def test_arbitrary_ids_decode_like_tokenizers(tokenizer, table, seed):
    """Random ids include byte tokens that never form valid UTF-8: both sides use U+FFFD."""
    rng = np.random.default_rng(seed)
    byte_tokens = [tokenizer.token_to_id(c) for c in bytes_to_unicode().values()]
    ids = [int(i) for i in rng.choice(np.r_[rng.integers(0, 50256, 30), byte_tokens], size=60)]
    assert "".join(decode_pieces(table, ids)) == tokenizer.decode(ids)


def test_end_of_text_is_skipped(tokenizer, table):
    ids = tokenizer.encode("a b", add_special_tokens=False).ids + [50256]
    assert "".join(decode_pieces(table, ids)) == tokenizer.decode(ids) == "a b"


def test_a_corpus_tokenizer_with_end_of_text_at_id_0():
    """Issue 10: a byte-level BPE trained on abstracts, <|endoftext|> first (id 0). Every piece
    still adds up to tokenizers' own decode, the special token has no text wherever it sits, and
    an id past the tokenizer (a model vocab padded beyond it) decodes to nothing."""
    from tests.small_vocab_model import train_tokenizer

    small = train_tokenizer()
    table = token_bytes_table(small)
    assert len(table) == small.get_vocab_size() and table[0] == b""
    ids = small.encode("Deep networks généralisent 🙂 well.", add_special_tokens=False).ids
    rng = np.random.default_rng(0)
    for sequence in (ids, [0, *ids, 0, *ids[:3]], rng.integers(0, len(table), 200).tolist()):
        assert "".join(decode_pieces(table, sequence)) == small.decode(sequence)
    assert decode_pieces(table, [len(table), len(table) + 5]) == ["", "", ""]
