"""Stage 2, dataset: abstracts -> train/validation/test documents and packed GPT-2 token blocks.

Inputs are JSONL files (plain, .gz or .xz; a scrape output directory means its abstracts.jsonl)
with `id`, `title`, `abstract`, or "text halves" files (*.txt, *.txt.gz, *.txt.xz) holding
documents `title\\nabstract` separated by one blank line and no ids; dataset_inputs.py reads them.

A paper's split comes from a hash of its arXiv id (of its normalised title when it has no id),
so a rerun, or the same papers in another order, gives the same split. Duplicates (same id or
same normalised title) are dropped first, so no paper sits in two splits. Within a split the
documents are ordered by that hash too, which mixes dates and topics reproducibly.

Each document is `title + "\\n" + abstract`, preceded by <|endoftext|>, tokenised with GPT-2's
tokenizer (`tokenizer="gpt2"`) or with a byte-level BPE of `bpe_vocab_size` entries trained on
the training split only (`tokenizer="bpe"`, so no validation or test text shapes the
vocabulary); a split's documents are concatenated and cut into blocks of `block_size` tokens
(the incomplete last block is dropped).

Output: packed/ (DatasetDict train/validation/test, column input_ids: int32 x block_size),
documents/ (DatasetDict, columns id, text), tokenizer/ (the one the ids come from), metrics.json.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
from datasets import Dataset, DatasetDict, Features, List, Value

from model_creation.dataset_inputs import Document, collect, read_documents, split_of
from model_creation.stage_dir import StageError, prepare_output_dir, write_metrics
from model_creation.tokenizer import end_of_text_id, load_gpt2_tokenizer, save_tokenizer, train_bpe_tokenizer

SPLITS = ("train", "validation", "test")
TOKENIZERS = ("gpt2", "bpe")
TOKENIZE_BATCH = 1000
TOKEN_FEATURES = Features({"input_ids": List(Value("int32"))})  # half the memory of the inferred int64
# Stated, not inferred: a split whose papers all lack an id (or that is empty) would otherwise get a null-typed column.
DOCUMENT_FEATURES = Features({"id": Value("string"), "text": Value("string")})


@dataclass
class Config:
    inputs: list[str] = field(
        default_factory=lambda: ["runs/scrape"]
    )  # JSONL(.gz/.xz) files, scrape dirs, or text halves *.txt(.gz/.xz)
    output_dir: str = "runs/dataset"
    block_size: int = 1024  # tokens per packed training example (DistilGPT2's context length)
    tokenizer: str = "gpt2"  # "gpt2": GPT-2's 50,257-token BPE; "bpe": a byte-level BPE trained on the train split
    bpe_vocab_size: int = 16384  # entries of the trained BPE, <|endoftext|> included (tokenizer="bpe" only)
    validation_fraction: float = 0.01  # share of papers (by id hash) held out for validation
    test_fraction: float = 0.01  # share held out for the final evaluation
    max_documents: int | None = None  # keep only this many papers (a hash-chosen uniform subset), for quick runs
    extra_train_inputs: list[str] | None = (
        None  # more documents for TRAIN only (e.g. non-ML abstracts); any that repeat a paper above are dropped
    )
    num_proc: int = 1  # tokenizer processes; the Rust tokenizer already uses every core within one
    overwrite: bool = False


def validate(config: Config) -> None:
    if not config.inputs:
        raise StageError("inputs must name at least one file or directory")
    if config.block_size < 2:
        raise StageError(f"block_size must be >= 2, got {config.block_size}")
    for name in ("validation_fraction", "test_fraction"):
        if not 0 <= getattr(config, name) < 1:
            raise StageError(f"{name} must be >= 0 and < 1, got {getattr(config, name)}")
    if config.validation_fraction + config.test_fraction >= 1:
        raise StageError("validation_fraction + test_fraction must be < 1 so that something is left to train on")
    if config.max_documents is not None and config.max_documents < 1:
        raise StageError(f"max_documents must be >= 1 or None, got {config.max_documents}")
    if config.tokenizer not in TOKENIZERS:
        raise StageError(f"tokenizer must be one of {list(TOKENIZERS)}, got {config.tokenizer!r}")
    if config.tokenizer == "bpe" and not 257 <= config.bpe_vocab_size <= 65535:
        # 256 bytes + <|endoftext|> at least; ids are stored as uint16 for training.
        raise StageError(f"bpe_vocab_size must be >= 257 and <= 65535, got {config.bpe_vocab_size}")
    if config.num_proc < 1:
        raise StageError(f"num_proc must be >= 1, got {config.num_proc}")
    for source in [*config.inputs, *(config.extra_train_inputs or [])]:
        read_documents(source)  # raises for a missing input or an unknown format before any work


def build_tokenizer(config: Config, train_texts: list[str]):
    """GPT-2's tokenizer, or a BPE trained on the training split's texts."""
    if config.tokenizer == "gpt2":
        return load_gpt2_tokenizer()
    return train_bpe_tokenizer(train_texts, config.bpe_vocab_size, length=len(train_texts))


def tokenize(documents: Dataset, tokenizer, num_proc: int, desc: str) -> Dataset:
    """Per document: [<|endoftext|>] + the ids of its text."""
    eot = end_of_text_id(tokenizer)

    def encode(batch):
        # A literal "<|endoftext|>" inside an abstract is text, not a document boundary.
        ids = tokenizer(batch["text"], split_special_tokens=True)["input_ids"]
        return {"input_ids": [[eot] + x for x in ids]}

    # Worker processes pay off only with a few batches each; small splits stay in this process.
    workers = min(num_proc, len(documents) // TOKENIZE_BATCH)
    return documents.map(
        encode,
        batched=True,
        batch_size=TOKENIZE_BATCH,
        num_proc=workers if workers > 1 else None,
        remove_columns=documents.column_names,
        features=TOKEN_FEATURES,
        desc=desc,
    )


def pack(tokenized: Dataset, block_size: int) -> tuple[Dataset, int, int]:
    """The split's token stream cut into full blocks; also the stream's length and the tokens dropped."""
    if len(tokenized) == 0:  # an empty split (fraction 0): map() leaves it without columns
        stream = np.zeros(0, dtype=np.int32)
    else:
        column = tokenized.data.column("input_ids").combine_chunks()
        stream = column.flatten().to_numpy(zero_copy_only=False).astype(np.int32)  # [tokens]
    n_blocks = len(stream) // block_size
    blocks = pa.FixedSizeListArray.from_arrays(
        pa.array(stream[: n_blocks * block_size]), block_size
    )  # [n_blocks, block_size]
    return Dataset(pa.table({"input_ids": blocks})), len(stream), len(stream) - n_blocks * block_size


def _save(splits: DatasetDict, path: Path) -> None:
    # datasets writes an empty split as zero shards, which load_from_disk then cannot read back.
    splits.save_to_disk(str(path), num_shards={name: 1 if len(ds) == 0 else None for name, ds in splits.items()})


def read_splits(config: Config) -> tuple[dict[str, list[Document]], int, Counter]:
    """The papers of `config.inputs` in their hash splits, with the extra training documents added to
    train; also how many extra documents there were, and the read counts."""
    documents, counts = collect(config.inputs)
    if config.max_documents is not None:
        documents = documents[: config.max_documents]  # hash order: a uniform, reproducible subset
    splits: dict[str, list[Document]] = {name: [] for name in SPLITS}
    for doc in documents:
        splits[split_of(doc.position, config.validation_fraction, config.test_fraction)].append(doc)
    extra: list[Document] = []
    if config.extra_train_inputs:
        taken = {doc.title_key for doc in documents} | {doc.id for doc in documents if doc.id}
        extra, extra_counts = collect(config.extra_train_inputs, exclude=taken)
        counts.update({f"extra_{k}": v for k, v in extra_counts.items()})
        splits["train"] = sorted(splits["train"] + extra, key=lambda d: (d.position, d.split_key))
    return splits, len(extra), counts


def document_texts(splits: dict[str, list[Document]]) -> DatasetDict:
    """The documents/ output: each split's ids and texts."""
    return DatasetDict(
        {
            name: Dataset.from_dict(
                {"id": [d.id for d in docs], "text": [d.text for d in docs]}, features=DOCUMENT_FEATURES
            )
            for name, docs in splits.items()
        }
    )


def tokenize_and_pack(config: Config, texts: DatasetDict, tokenizer) -> tuple[dict[str, Dataset], dict[str, dict]]:
    """Each split's packed blocks, and its documents, tokens, blocks and dropped tokens."""
    packed, per_split = {}, {}
    for name in SPLITS:
        tokenized = tokenize(texts[name], tokenizer, config.num_proc, f"tokenize {name}")
        packed[name], tokens, dropped = pack(tokenized, config.block_size)
        fraction = {"train": 1, "validation": config.validation_fraction, "test": config.test_fraction}[name]
        if fraction > 0 and len(packed[name]) == 0:
            raise StageError(
                f"the {name} split has {tokens} tokens, less than one block of {config.block_size}; "
                f"use more documents, a smaller block_size or a larger {name}_fraction"
            )
        per_split[name] = {
            "documents": len(texts[name]),
            "tokens": tokens,
            "blocks": len(packed[name]),
            "tokens_dropped": dropped,
        }
    return packed, per_split


def metrics(config: Config, per_split: dict[str, dict], tokenizer, counts: Counter, seconds: dict) -> dict:
    """The stage's metrics.json."""
    return {
        "splits": per_split,
        "documents": sum(s["documents"] for s in per_split.values()),
        "tokens": sum(s["tokens"] for s in per_split.values()),
        "block_size": config.block_size,
        "tokenizer": {
            "kind": config.tokenizer,
            "vocab_size": len(tokenizer),
            "end_of_text_id": end_of_text_id(tokenizer),
        },
        "inputs": list(config.inputs),
        "extra_train_inputs": list(config.extra_train_inputs or []),
        "validation_fraction": config.validation_fraction,
        "test_fraction": config.test_fraction,
        "counts": dict(counts),
        "seconds": seconds,
        "config": dataclasses.asdict(config),
    }


def run(config: Config) -> Path:
    validate(config)
    out = prepare_output_dir(config.output_dir, config.overwrite)
    clock = [time.perf_counter()]

    def lap() -> float:  # seconds since the previous lap, for the per-phase timings in metrics
        clock.append(time.perf_counter())
        return round(clock[-1] - clock[-2], 2)

    splits, extra_documents, counts = read_splits(config)
    seconds = {"read": lap()}
    texts = document_texts(splits)
    tokenizer = build_tokenizer(config, [d.text for d in splits["train"]])
    seconds["tokenizer"] = lap()
    packed, per_split = tokenize_and_pack(config, texts, tokenizer)
    per_split["train"]["extra_documents"] = extra_documents
    seconds["tokenize_and_pack"] = lap()

    _save(DatasetDict(packed), out / "packed")
    _save(texts, out / "documents")
    save_tokenizer(out / "tokenizer", tokenizer)
    seconds["save"] = lap()
    write_metrics(
        out, metrics(config, per_split, tokenizer, counts, {**seconds, "total": round(clock[-1] - clock[0], 2)})
    )
    return out
