"""The train stage's data: packed token blocks in memory and seeded random windows of them.

A split is read once from the dataset stage's Arrow files into one uint16 array (vocabularies
are below 65,536 tokens), a quarter of int64's memory; batches are drawn from it by a
torch.Generator whose state the checkpoint keeps, so a resumed run draws the same batches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from model_creation.perplexity import document_ids, gpt2_token_count
from model_creation.tokenizer import load_gpt2_tokenizer
from model_creation.training.config import Config


def load_split(dataset_dir: Path, split: str) -> np.ndarray:
    """One split of the packed dataset as a [blocks, block_len] uint16 array."""
    from datasets import load_from_disk

    table = load_from_disk(str(dataset_dir / "packed"))[split].data.column("input_ids").combine_chunks()
    width = table.type.list_size if hasattr(table.type, "list_size") and table.type.list_size > 0 else None
    flat = table.flatten().to_numpy(zero_copy_only=False)  # [blocks * block_len]
    if width is None:  # a variable-length list column (older datasets): every block has the same length
        width = len(table[0]) if len(table) else 0
    return flat.astype(np.uint16).reshape(len(table), width)


def sample_batch(blocks: np.ndarray, config: Config, generator: torch.Generator) -> torch.Tensor:
    """`batch_size` random blocks [batch, block_size], a random window of each if blocks are longer."""
    rows = torch.randint(len(blocks), (config.batch_size,), generator=generator).numpy()
    spare = blocks.shape[1] - config.block_size
    starts = torch.randint(spare + 1, (config.batch_size,), generator=generator).numpy()
    batch = np.stack([blocks[r, s : s + config.block_size] for r, s in zip(rows, starts, strict=True)])
    return torch.from_numpy(batch.astype(np.int64))


def gpt2_tokens_per_model_token(dataset_dir: Path, split: str, tokenizer) -> float:
    """GPT-2 tokens per model token over a split's documents, each counted with its <|endoftext|>.

    A loss in nats per model token divided by this is nats per GPT-2 token, which compares
    models whatever their tokenizer (exactly 1 for GPT-2's own).
    """
    from datasets import load_from_disk

    texts = list(load_from_disk(str(dataset_dir / "documents"))[split]["text"])
    if not texts:
        return 1.0
    gpt2 = load_gpt2_tokenizer()
    model_tokens = sum(len(document_ids(tokenizer, text)) - 1 for text in texts)  # as evaluate counts them
    gpt2_tokens = sum(gpt2_token_count(gpt2, text) for text in texts)
    return gpt2_tokens / model_tokens
