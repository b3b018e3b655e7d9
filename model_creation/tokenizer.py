"""The GPT-2 byte-level BPE tokenizer, built offline from the vocabulary shipped in the repo.

Every stage that turns text into ids (dataset, train, evaluate) and the model directories the
backend loads get their tokenizer from here, so there is exactly one definition of it and no
stage ever reaches for the Hugging Face Hub.
"""

from __future__ import annotations

from pathlib import Path

from transformers import GPT2TokenizerFast

ASSETS_DIR = Path(__file__).resolve().parent / "assets" / "gpt2"
END_OF_TEXT = "<|endoftext|>"
END_OF_TEXT_ID = 50256
MODEL_MAX_LENGTH = 1024


def load_gpt2_tokenizer() -> GPT2TokenizerFast:
    """GPT-2's fast tokenizer from assets/gpt2 (vocab.json + merges.txt), no network."""
    tokenizer = GPT2TokenizerFast(
        vocab_file=str(ASSETS_DIR / "vocab.json"),
        merges_file=str(ASSETS_DIR / "merges.txt"),
        bos_token=END_OF_TEXT,
        eos_token=END_OF_TEXT,
        unk_token=END_OF_TEXT,
        model_max_length=MODEL_MAX_LENGTH,
        # GPT-2 never adds a prefix space; training and serving both rely on the raw text.
        add_prefix_space=False,
    )
    # The vocabulary maps the marker to 50256; fail loudly if the assets were ever swapped.
    assert tokenizer.eos_token_id == END_OF_TEXT_ID, tokenizer.eos_token_id
    return tokenizer


def save_tokenizer(directory: str | Path) -> None:
    """Write tokenizer.json, vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    load_gpt2_tokenizer().save_pretrained(str(directory))
