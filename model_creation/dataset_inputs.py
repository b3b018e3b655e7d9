"""The dataset stage's inputs: abstract files read into Documents, deduplicated, in hash order.

Inputs are JSONL files (plain, .gz or .xz; a scrape output directory means its abstracts.jsonl)
with `id`, `title`, `abstract`, or "text halves" files (*.txt, *.txt.gz, *.txt.xz) holding
documents `title\\nabstract` separated by one blank line and no ids.

A paper's place in [0, 1) is a hash of its arXiv id (of its normalised title when it has no id);
it decides the paper's split (split_of) and its order, so a rerun, or the same papers in another
order, gives the same result. Duplicates (same id or same normalised title) are dropped here,
before any split, so no paper sits in two splits. dataset.py tokenises and packs what this reads.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import lzma
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from model_creation.stage_dir import ABSTRACTS_FILE, StageError
from model_creation.text_cleaning import normalise_whitespace, title_key


@dataclass(frozen=True)
class Document:
    id: str | None
    title: str
    abstract: str

    @property
    def text(self) -> str:
        return self.title + "\n" + self.abstract

    @property
    def title_key(self) -> str:
        # A title with no letters or digits identifies nothing; fall back to the whole text.
        return title_key(self.title) or self.text

    @property
    def split_key(self) -> str:
        return self.id if self.id else "title:" + self.title_key

    @property
    def position(self) -> float:
        """Where the paper falls in [0, 1): decides its split and its place within the split."""
        digest = hashlib.sha1(self.split_key.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") / 2**64


def split_of(position: float, validation_fraction: float, test_fraction: float) -> str:
    if position < test_fraction:
        return "test"
    if position < test_fraction + validation_fraction:
        return "validation"
    return "train"


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    if path.suffix == ".xz":
        return lzma.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _read_jsonl(path: Path) -> Iterator[Document]:
    with _open_text(path) as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                yield Document(
                    row.get("id") or None, normalise_whitespace(row["title"]), normalise_whitespace(row["abstract"])
                )
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                raise StageError(
                    f"{path}:{number} is not an abstract record with title and abstract ({exc!r})"
                ) from None


def _read_text_halves(path: Path) -> Iterator[Document]:
    with _open_text(path) as f:
        lines: list[str] = []
        for line in [*f, "\n"]:  # the extra blank line ends a last document that lacks one
            if line.strip():
                lines.append(line)
            elif lines:
                yield Document(None, normalise_whitespace(lines[0]), normalise_whitespace(" ".join(lines[1:])))
                lines = []


def read_documents(source: str | Path) -> Iterator[Document]:
    """The documents of one input, whatever its form."""
    path = Path(source)
    if path.is_dir():
        path = path / ABSTRACTS_FILE
    if not path.is_file():
        raise StageError(
            f"input {source} does not exist (expected a JSONL file, a scrape output directory or a .txt file)"
        )
    form = path.name.removesuffix(".gz").removesuffix(".xz")
    if form.endswith((".jsonl", ".json")):
        return _read_jsonl(path)
    if form.endswith(".txt"):
        return _read_text_halves(path)
    raise StageError(f"input {source}: unknown format; use .jsonl, .txt, optionally compressed as .gz or .xz")


def collect(sources: list[str], exclude: set[str] = frozenset()) -> tuple[list[Document], Counter]:
    """Distinct documents of `sources` in hash order, minus those whose id or title key is in `exclude`.

    Duplicates are resolved in hash order, not input order, so the result does not depend on
    which file (or line) came first.
    """
    counts: Counter = Counter()
    documents = []
    for source in sources:
        for doc in tqdm(read_documents(source), desc=f"read {Path(source).name}", unit=" docs"):
            counts["read"] += 1
            if doc.title and doc.abstract:
                documents.append(doc)
            else:
                counts["dropped_empty"] += 1
    documents.sort(key=lambda d: (d.position, d.split_key))
    seen, kept = set(exclude), []
    for doc in documents:
        keys = {doc.title_key} | ({doc.id} if doc.id else set())
        if keys & seen:
            counts["dropped_duplicate"] += 1
            continue
        seen |= keys
        kept.append(doc)
    return kept, counts
