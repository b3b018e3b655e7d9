"""Text rules shared by the scrape and dataset stages: whitespace, title keys, withdrawn notices.

Both stages must agree on what "the same title" means (scrape drops duplicate titles, dataset
hashes the title of papers without an arXiv id to pick their split), so the rules live here once.
"""

from __future__ import annotations

import re

_WHITESPACE = re.compile(r"\s+")
_NOT_ALNUM = re.compile(r"[\W_]+")
_VERSION_SUFFIX = re.compile(r"v\d+$")

# arXiv replaces a withdrawn paper's abstract (or comment) with a notice such as "This paper has
# been withdrawn by the author due to an error" or just "Withdrawn." The patterns are anchored on
# the paper itself so that abstracts merely *about* withdrawal ("a drug has been withdrawn",
# "papers withdrawn from arXiv") are kept.
_WITHDRAWN = re.compile(
    r"^\W*withdrawn\b"
    r"|\b(?:this|the)\s+(?:paper|article|manuscript|submission|preprint|work|version|report)\s+"
    r"(?:has\s+been|have\s+been|is\s+being|is|was)\s+withdrawn\b"
    r"|\b(?:paper|article|manuscript|submission|preprint)\s+withdrawn\b"
    r"|\bwithdrawn\s+by\s+(?:the\s+)?(?:authors?|submitter|arxiv)",
    re.IGNORECASE,
)


def normalise_whitespace(text: str) -> str:
    """Collapse every run of whitespace (newlines included) to one space and strip the ends."""
    return _WHITESPACE.sub(" ", text).strip()


def title_key(title: str) -> str:
    """A title reduced to what identifies it: casefolded letters and digits only."""
    return _NOT_ALNUM.sub("", title.casefold())


def strip_version(arxiv_id: str) -> str:
    """'2101.00001v3' -> '2101.00001'; 'hep-th/9901001v1' -> 'hep-th/9901001'."""
    return _VERSION_SUFFIX.sub("", arxiv_id)


def is_withdrawn(abstract: str, comment: str | None = None) -> bool:
    """True when the abstract or the author comment is a withdrawal notice."""
    return bool(_WITHDRAWN.search(abstract) or (comment and _WITHDRAWN.search(comment)))
