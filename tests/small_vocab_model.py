"""A tiny GPT-2 whose vocabulary is not GPT-2's: a byte-level BPE trained on a few sentences, with
<|endoftext|> at id 0, as a corpus tokenizer may have it (issue 10). Exported with optimum's ONNX
exporter as the export stage does (without its GPT-2-specific parity check), fp32."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

END_OF_TEXT = "<|endoftext|>"
SENTENCES = [
    "We propose a method to learn representations of graphs.",
    "Deep networks generalize well when they are trained with noise.",
    "In this paper, we study the convergence of stochastic gradient descent.",
    "Large language models have shown strong results on reasoning benchmarks.",
] * 8
SHAPE = dict(n_layer=1, n_embd=32, n_head=2, n_positions=64)


def train_tokenizer(vocab_size: int = 320):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(SENTENCES, trainer)
    assert tokenizer.token_to_id(END_OF_TEXT) == 0
    return tokenizer


def build_torch_model(vocab_size: int, seed: int = 0):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(**SHAPE, vocab_size=vocab_size, initializer_range=0.2, bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(config).eval()


def build_small_vocab_model_dir(dest: Path) -> Path:
    """`dest`/hf (the PyTorch model) and `dest`/model (what the server loads); returns the latter."""
    from optimum.exporters.onnx import main_export

    tokenizer = train_tokenizer()
    hf_dir, model_dir = Path(dest) / "hf", Path(dest) / "model"
    build_torch_model(tokenizer.get_vocab_size()).save_pretrained(hf_dir)
    tokenizer.save(str(hf_dir / "tokenizer.json"))
    main_export(
        str(hf_dir),
        model_dir,
        task="text-generation-with-past",
        do_validation=False,
        no_post_process=True,
        local_files_only=True,
    )
    tokenizer.save(str(model_dir / "tokenizer.json"))
    return model_dir
