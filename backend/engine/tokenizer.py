"""The serving tokenizer: tokenizer.json from the model directory, loaded with `tokenizers` only."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer

from backend.engine.detokenize import IncrementalDecoder, token_bytes_table
from backend.engine.schema import ModelLoadError

END_OF_TEXT = "<|endoftext|>"  # document separator, start of every prompt, end of a completion


class TextTokenizer:
    """Text -> ids for prompts, and ids -> text incrementally for completions."""

    def __init__(self, model_dir: Path):
        path = model_dir / "tokenizer.json"
        if not path.is_file():
            raise ModelLoadError("tokenizer.json is missing: the model directory needs the fast tokenizer file")
        try:
            self._tokenizer = Tokenizer.from_file(str(path))
        except Exception as error:  # tokenizers raises a bare Exception on malformed files
            raise ModelLoadError(f"tokenizer.json is not a valid tokenizer file: {error}") from error
        self._bytes = token_bytes_table(self._tokenizer)

    @property
    def vocab_size(self) -> int:
        return len(self._bytes)

    def token_id(self, token: str) -> int | None:
        """The id of `token` (e.g. "<|endoftext|>"), None if the vocabulary lacks it."""
        return self._tokenizer.token_to_id(token)

    def encode(self, text: str) -> list[int]:
        """The ids of `text` exactly as written (no BOS; the engine adds <|endoftext|> itself)."""
        return self._tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        return self._tokenizer.decode(ids)

    def decoder(self) -> IncrementalDecoder:
        """A fresh incremental decoder for one completion."""
        return IncrementalDecoder(self._bytes)
