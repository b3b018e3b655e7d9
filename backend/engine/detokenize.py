"""Incremental detokenisation for GPT-2's byte-level BPE that never emits half a UTF-8 character.

A GPT-2 token is a run of bytes (spelled in a printable byte-level alphabet), and one character
can span several tokens (emoji, CJK). Each token's bytes go into a buffer; only the longest
prefix that decodes as UTF-8 is released, the incomplete tail waits for the next token. Invalid
bytes become U+FFFD, as `tokenizers`' ByteLevel decoder does, so the concatenation of all pieces
equals `tokenizer.decode(ids)`.
"""

from __future__ import annotations

import codecs

from tokenizers import Tokenizer


def byte_level_alphabet() -> dict[str, int]:
    """GPT-2's printable spelling of the 256 bytes: character -> byte value."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = {b: chr(b) for b in printable}
    shift = 0
    for b in range(256):
        if b not in chars:  # control bytes, space and a few others move to U+0100 and up
            chars[b] = chr(256 + shift)
            shift += 1
    return {c: b for b, c in chars.items()}


def token_bytes_table(tokenizer: Tokenizer) -> list[bytes]:
    """The bytes of every token id; special tokens (<|endoftext|>) map to b"" because the
    decoder skips them, as `tokenizer.decode` does by default."""
    alphabet = byte_level_alphabet()
    vocab = tokenizer.get_vocab(with_added_tokens=True)
    table = [b""] * (max(vocab.values()) + 1)
    special = {t.content for t in tokenizer.get_added_tokens_decoder().values() if t.special}
    for spelling, token_id in vocab.items():
        if spelling not in special:
            table[token_id] = bytes(alphabet[c] for c in spelling)
    return table


class IncrementalDecoder:
    """Feed token ids one at a time; get back the text each one completes."""

    def __init__(self, table: list[bytes]):
        self._table = table
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def add(self, token_id: int) -> str:
        """Text made complete by this token ("" while a character is still incomplete). An id past
        the tokenizer's vocabulary (a model whose vocab_size was padded beyond it) has no text."""
        return self._utf8.decode(self._table[token_id] if token_id < len(self._table) else b"")

    def flush(self) -> str:
        """Whatever is pending at the end (an incomplete character becomes U+FFFD)."""
        return self._utf8.decode(b"", final=True)
