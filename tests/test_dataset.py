"""The dataset stage: hash splits, deduplication, packing, and token counts checked against an
independent tokenizer (tokenizers' ByteLevelBPETokenizer on the same vocabulary)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import gzip
import hashlib
import json
import lzma
import random
import re
from pathlib import Path

import pytest
from datasets import Dataset, load_from_disk
from tokenizers import ByteLevelBPETokenizer

from model_creation import dataset
from model_creation.stage_dir import StageError, read_metrics
from model_creation.tokenizer import ASSETS_DIR, load_gpt2_tokenizer

SAMPLE = Path(__file__).parent / "fixtures" / "corpus" / "ml-abstracts-sample.jsonl"
EOT = 50256
BLOCK = 64
FRACTIONS = dict(validation_fraction=0.15, test_fraction=0.15)


@pytest.fixture(scope="module")
def oracle() -> ByteLevelBPETokenizer:
    # Knows no special tokens: a literal "<|endoftext|>" in an abstract is plain text to it.
    return ByteLevelBPETokenizer.from_file(str(ASSETS_DIR / "vocab.json"), str(ASSETS_DIR / "merges.txt"))


def sample_rows() -> list[dict]:
    return [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]


def expected_split(row: dict, validation: float, test: float) -> str:
    """The split by the documented rule, computed here from scratch."""
    key = row["id"] or "title:" + re.sub(r"[\W_]+", "", row["title"].casefold())
    position = int(hashlib.sha1(key.encode()).hexdigest()[:16], 16) / 2**64
    return "test" if position < test else "validation" if position < test + validation else "train"


def build(tmp_path: Path, name: str, **overrides) -> Path:
    config = dict(inputs=[str(SAMPLE)], output_dir=str(tmp_path / name), block_size=BLOCK, **FRACTIONS)
    return dataset.run(dataset.Config(**{**config, **overrides}))


def documents(out: Path) -> dict[str, list[dict]]:
    dd = load_from_disk(str(out / "documents"))
    return {name: dd[name].to_list() for name in dataset.SPLITS}


def packed(out: Path) -> dict[str, list[list[int]]]:
    dd = load_from_disk(str(out / "packed"))
    return {name: dd[name]["input_ids"] for name in dataset.SPLITS}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("dataset"), "sample")


def test_every_paper_lands_in_its_hash_split(built):
    docs = documents(built)
    where = {(d["id"], d["text"]): name for name, split in docs.items() for d in split}
    rows = sample_rows()
    assert len(where) == len(rows) == 300
    for row in rows:
        assert where[(row["id"], row["title"] + "\n" + row["abstract"])] == expected_split(
            row, **{"validation": FRACTIONS["validation_fraction"], "test": FRACTIONS["test_fraction"]}
        )
    assert sum(d["id"] is None for split in docs.values() for d in split) == 4  # split by title hash
    for name in ("validation", "test"):
        assert 20 <= len(docs[name]) <= 70  # 15% of 300, give or take the hash's luck


def test_no_paper_in_two_splits(built):
    docs = documents(built)
    for a, b in [("train", "validation"), ("train", "test"), ("validation", "test")]:
        ids_a, ids_b = ({d["id"] for d in docs[s] if d["id"]} for s in (a, b))
        titles_a, titles_b = ({d["text"].split("\n")[0].casefold() for d in docs[s]} for s in (a, b))
        assert not ids_a & ids_b and not titles_a & titles_b


def test_same_split_on_rerun_and_for_any_input_order(built, tmp_path):
    rows = sample_rows()
    random.Random(0).shuffle(rows)
    shuffled = tmp_path / "shuffled.jsonl.gz"
    with gzip.open(shuffled, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    again = build(tmp_path, "shuffled", inputs=[str(shuffled)])
    assert documents(again) == documents(built)
    assert packed(again) == packed(built)


def oracle_stream(texts: list[str], oracle) -> list[int]:
    return [t for text in texts for t in [EOT] + oracle.encode(text).ids]


@pytest.mark.parametrize("split", dataset.SPLITS)
def test_blocks_are_the_token_stream_cut_into_block_size(built, oracle, split):
    texts = [d["text"] for d in documents(built)[split]]
    stream = oracle_stream(texts, oracle)
    blocks = packed(built)[split]
    assert blocks and all(len(block) == BLOCK for block in blocks)
    flat = [t for block in blocks for t in block]
    assert flat == stream[: len(flat)] and len(stream) - len(flat) < BLOCK
    assert flat[0] == EOT  # every document, the first included, starts after the marker


def test_token_counts_in_metrics_match_the_oracle(built, oracle):
    metrics = read_metrics(built)
    docs = documents(built)
    for name in dataset.SPLITS:
        tokens = len(oracle_stream([d["text"] for d in docs[name]], oracle))
        split = metrics["splits"][name]
        assert (split["documents"], split["tokens"]) == (len(docs[name]), tokens)
        assert (split["blocks"], split["tokens_dropped"]) == divmod(tokens, BLOCK)
    assert metrics["documents"] == 300 and metrics["block_size"] == BLOCK
    assert metrics["inputs"] == [str(SAMPLE)]
    assert (metrics["validation_fraction"], metrics["test_fraction"]) == (0.15, 0.15)


def test_output_directory_layout(built):
    assert {p.name for p in built.iterdir()} >= {"packed", "documents", "tokenizer", "metrics.json"}
    assert load_from_disk(str(built / "packed"))["train"].features["input_ids"].feature.dtype == "int32"
    assert {"tokenizer.json", "vocab.json", "merges.txt"} <= {p.name for p in (built / "tokenizer").iterdir()}


def write_text_halves(path: Path, rows: list[dict], trailing_blank: bool = True) -> None:
    body = "\n\n".join(r["title"] + "\n" + r["abstract"] for r in rows) + ("\n\n" if trailing_blank else "\n")
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "wt", encoding="utf-8") as f:
        f.write(body)


@pytest.mark.parametrize("name, trailing_blank", [("halves.txt.xz", True), ("halves.txt", False)])
def test_text_halves_input(tmp_path, oracle, name, trailing_blank):
    rows = sample_rows()[:120]
    write_text_halves(tmp_path / name, rows, trailing_blank)
    out = build(tmp_path, "halves", inputs=[str(tmp_path / name)], block_size=32)
    docs = documents(out)
    for row in rows:  # no ids: split by the normalised title
        row = {**row, "id": None}
        where = [n for n, split in docs.items() if {"id": None, "text": row["title"] + "\n" + row["abstract"]} in split]
        assert where == [expected_split(row, validation=0.15, test=0.15)]
    assert read_metrics(out)["splits"]["train"]["tokens"] == len(
        oracle_stream([d["text"] for d in docs["train"]], oracle)
    )


def test_the_same_paper_from_two_inputs_is_kept_once(tmp_path):
    rows = sample_rows()[:100]
    write_text_halves(tmp_path / "halves.txt.xz", rows)
    jsonl = tmp_path / "part.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = build(tmp_path, "both", inputs=[str(jsonl), str(tmp_path / "halves.txt.xz")], block_size=16)
    texts = [d["text"] for split in documents(out).values() for d in split]
    assert sorted(texts) == sorted(r["title"] + "\n" + r["abstract"] for r in rows)
    assert read_metrics(out)["counts"] == {"read": 200, "dropped_duplicate": 100}


def test_extra_train_inputs_go_to_train_only_and_never_repeat_a_paper(built, tmp_path):
    docs = documents(built)
    held_out = docs["test"][0]
    title, abstract = held_out["text"].split("\n", 1)
    extra = [
        {"id": None, "title": "A study of coral reef acoustics", "abstract": "Reefs are noisy. " * 20},
        {"id": "1999.00001", "title": "Ancient harbours of the Aegean", "abstract": "Harbours were built. " * 20},
        {"id": "1999.00002", "title": title.upper(), "abstract": abstract},  # a held-out paper under another id
    ]
    path = tmp_path / "other.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in extra))
    out = build(tmp_path, "extra", extra_train_inputs=[str(path)])
    new = documents(out)
    assert new["validation"] == docs["validation"] and new["test"] == docs["test"]
    added = [d for d in new["train"] if d not in docs["train"]]
    assert sorted(d["text"].split("\n")[0] for d in added) == [
        "A study of coral reef acoustics",
        "Ancient harbours of the Aegean",
    ]
    metrics = read_metrics(out)
    assert metrics["splits"]["train"]["extra_documents"] == 2 and metrics["counts"]["extra_dropped_duplicate"] == 1


def test_max_documents_keeps_a_reproducible_subset(built, tmp_path):
    out = build(tmp_path, "small", max_documents=100, block_size=16)
    small = documents(out)
    full = [d for split in documents(built).values() for d in split]
    assert sum(len(s) for s in small.values()) == 100
    assert all(d in full for split in small.values() for d in split)
    assert documents(build(tmp_path, "small-again", max_documents=100, block_size=16)) == small


def test_a_literal_end_of_text_in_an_abstract_is_text(tmp_path, oracle):
    rows = [
        {
            "id": f"2401.{i:05d}",
            "title": f"Paper {i}",
            "abstract": f"We prepend $<|endoftext|>$ to prompts, case {i}. " * 5,
        }
        for i in range(40)
    ]
    path = tmp_path / "eot.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = build(tmp_path, "eot", inputs=[str(path)], block_size=8, validation_fraction=0.0, test_fraction=0.0)
    flat = [t for block in packed(out)["train"] for t in block]
    assert flat == oracle_stream([d["text"] for d in documents(out)["train"]], oracle)[: len(flat)]
    assert flat.count(EOT) == 40  # one per document, none from the abstracts


def test_tokenizing_with_worker_processes_gives_the_same_ids():
    texts = [r["title"] + "\n" + r["abstract"] for r in sample_rows()] * 7  # 2100 documents: 2 workers
    docs = Dataset.from_dict({"id": [None] * len(texts), "text": texts}, features=dataset.DOCUMENT_FEATURES)
    tokenizer = load_gpt2_tokenizer()
    one = dataset.tokenize(docs, tokenizer, num_proc=1, desc="one")["input_ids"]
    two = dataset.tokenize(docs, tokenizer, num_proc=2, desc="two")["input_ids"]
    assert one == two and len(one) == 2100


def test_refuses_to_overwrite_a_finished_run(built):
    before = read_metrics(built)
    with pytest.raises(StageError, match="already holds a finished run"):
        dataset.run(dataset.Config(inputs=[str(SAMPLE)], output_dir=str(built), block_size=BLOCK, **FRACTIONS))
    assert read_metrics(built) == before


def test_overwrite_replaces_a_finished_run(tmp_path):
    out = build(tmp_path, "twice", block_size=16)
    build(tmp_path, "twice", block_size=32, overwrite=True)
    assert read_metrics(out)["block_size"] == 32


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"inputs": []}, "inputs must name at least one file"),
        ({"inputs": ["/nonexistent/abstracts.jsonl"]}, "input /nonexistent/abstracts.jsonl does not exist"),
        ({"inputs": [str(SAMPLE.with_name("make_sample.py"))]}, "unknown format"),
        ({"extra_train_inputs": ["/nonexistent/other.jsonl"]}, "input /nonexistent/other.jsonl does not exist"),
        ({"block_size": 1}, "block_size must be >= 2, got 1"),
        ({"validation_fraction": -0.1}, "validation_fraction must be >= 0 and < 1, got -0.1"),
        ({"test_fraction": 1.0}, "test_fraction must be >= 0 and < 1, got 1.0"),
        ({"validation_fraction": 0.5, "test_fraction": 0.5}, "validation_fraction + test_fraction must be < 1"),
        ({"max_documents": 0}, "max_documents must be >= 1 or None, got 0"),
        ({"num_proc": 0}, "num_proc must be >= 1, got 0"),
        ({"tokenizer": "sentencepiece"}, "tokenizer must be one of ['gpt2', 'bpe'], got 'sentencepiece'"),
        ({"tokenizer": "bpe", "bpe_vocab_size": 256}, "bpe_vocab_size must be >= 257 and <= 65535, got 256"),
        ({"tokenizer": "bpe", "bpe_vocab_size": 65536}, "bpe_vocab_size must be >= 257 and <= 65535, got 65536"),
    ],
)
def test_bad_config_is_a_clear_error_before_any_output(tmp_path, overrides, message):
    with pytest.raises(StageError, match=re.escape(message)):
        build(tmp_path, "bad", **overrides)
    assert not (tmp_path / "bad").exists()


def test_a_malformed_line_names_the_file_and_line(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(sample_rows()[0]) + "\n" + json.dumps({"id": "1", "title": "no abstract"}) + "\n")
    with pytest.raises(StageError, match=re.escape(f"{path}:2 is not an abstract record")):
        build(tmp_path, "broken", inputs=[str(path)])


def test_a_split_too_small_for_one_block_is_a_clear_error(tmp_path):
    with pytest.raises(StageError, match=r"the test split has \d+ tokens, less than one block of 1024"):
        build(tmp_path, "tiny", block_size=1024, validation_fraction=0.01, test_fraction=0.01)


def test_a_scrape_output_directory_is_an_input(tmp_path):
    scrape_dir = tmp_path / "scrape"
    scrape_dir.mkdir()
    (scrape_dir / "abstracts.jsonl").write_text(SAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    out = build(tmp_path, "from-scrape", inputs=[str(scrape_dir)], block_size=16)
    assert read_metrics(out)["documents"] == 300


def test_command_line_runs_the_stage(tmp_path, capsys):
    from model_creation.__main__ import main

    out = tmp_path / "cli"
    code = main(
        [
            "dataset",
            "--inputs",
            str(SAMPLE),
            "--output-dir",
            str(out),
            "--block-size",
            "32",
            "--validation-fraction",
            "0.1",
            "--test-fraction",
            "0.1",
            "--max-documents",
            "150",
        ]
    )
    assert code == 0 and capsys.readouterr().out.strip().endswith(str(out))
    metrics = read_metrics(out)
    assert (metrics["documents"], metrics["block_size"], metrics["test_fraction"]) == (150, 32, 0.1)
    assert main(["dataset", "--inputs", str(SAMPLE), "--output-dir", str(out)]) == 2
    assert "already holds a finished run" in capsys.readouterr().err
