"""Tokenizers of the pipeline: GPT-2's byte-level BPE, or one trained on the corpus itself.

GPT-2's is built offline from the vocabulary shipped in the repo. The arXiv one is a byte-level
BPE of a chosen size trained by the dataset stage on its training split; `<|endoftext|>` keeps
its three roles (document separator, BOS, EOS) in both, but its id differs (50256 in GPT-2's,
0 in a trained one), so every stage reads it with `end_of_text_id`. A tokenizer travels with
the data and the model as a directory (tokenizer.json, vocab.json, merges.txt, ...): the dataset
stage writes one, and train, export, quantize and evaluate carry it along. No stage ever reaches
for the Hugging Face Hub.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from transformers import GPT2TokenizerFast, PreTrainedTokenizerFast

ASSETS_DIR = Path(__file__).resolve().parent / "assets" / "gpt2"
END_OF_TEXT = "<|endoftext|>"
END_OF_TEXT_ID = 50256  # in GPT-2's vocabulary only; other tokenizers: end_of_text_id()
MODEL_MAX_LENGTH = 1024
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json")


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


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int, length: int | None = None) -> GPT2TokenizerFast:
    """A byte-level BPE with GPT-2's pre-tokenisation, trained on `texts`: `vocab_size` entries,
    `<|endoftext|>` (id 0) among them. Byte-level, so any text still encodes (no unknown token)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes, seen or not
        show_progress=True,
    )
    core.train_from_iterator(texts, trainer, length=length)
    return _wrap(core)


def _wrap(core) -> GPT2TokenizerFast:
    """A `tokenizers.Tokenizer` as a GPT2TokenizerFast with GPT-2's special-token roles."""
    wrapped = GPT2TokenizerFast(
        tokenizer_object=core,
        bos_token=END_OF_TEXT,
        eos_token=END_OF_TEXT,
        unk_token=END_OF_TEXT,
        model_max_length=MODEL_MAX_LENGTH,
        add_prefix_space=False,
    )
    return wrapped


def load_tokenizer(directory: str | Path) -> GPT2TokenizerFast:
    """The tokenizer saved in `directory` (GPT-2's or a trained one), from its tokenizer.json."""
    from tokenizers import Tokenizer

    core = Tokenizer.from_file(str(Path(directory) / "tokenizer.json"))
    return _wrap(core)


def end_of_text_id(tokenizer) -> int:
    """The id of `<|endoftext|>` in a `tokenizers.Tokenizer` or a transformers fast tokenizer."""
    token_id = getattr(tokenizer, "backend_tokenizer", tokenizer).token_to_id(END_OF_TEXT)
    if token_id is None:
        raise ValueError(f"the tokenizer has no {END_OF_TEXT} token")
    return int(token_id)


def save_tokenizer(directory: str | Path, tokenizer: PreTrainedTokenizerFast | None = None) -> None:
    """Write TOKENIZER_FILES for `tokenizer` (default: GPT-2's) into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = tokenizer or load_gpt2_tokenizer()
    tokenizer.save_pretrained(str(directory))
    # vocab.json + merges.txt as well, so that any GPT-2 BPE loader reads a trained tokenizer too.
    tokenizer.backend_tokenizer.model.save(str(directory))
