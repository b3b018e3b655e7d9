"""Replaying recorded arXiv API responses (tests/fixtures/arxiv-api) in place of the network.

Shared by the test_scrape_*.py modules: the recordings by URL, an ElementTree oracle for their
entries, the replaying mock behind the `api` fixture (tests/conftest.py), and small helpers to
configure a scrape against the recordings and read back what it wrote.
"""

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import requests
import responses

from model_creation import scrape

FIXTURES = Path(__file__).parent / "fixtures" / "arxiv-api"
ATOM = "{http://www.w3.org/2005/Atom}"
API = re.compile(r"https://export\.arxiv\.org/api/query\?.*")
TESTING_PAGES = [f"q_testing_s{start}_m10" for start in range(0, 60, 10)]


def _recordings() -> dict[str, dict]:
    return {
        json.loads(p.read_text())["url"]: {"name": p.name, **json.loads(p.read_text())} for p in FIXTURES.glob("*.json")
    }


RECORDINGS = _recordings()


def recording(prefix: str) -> dict:
    (match,) = [r for r in RECORDINGS.values() if r["name"].startswith(prefix + "_")]
    return match


def oracle_entries(prefix: str) -> list[dict]:
    """The feed's entries read straight from the Atom XML with ElementTree (not through the arxiv package)."""
    root = ET.fromstring(recording(prefix)["body"].encode("latin-1"))
    return [
        {
            "id": re.sub(r"v\d+$", "", e.findtext(f"{ATOM}id").split("/abs/")[1]),
            "title": " ".join(e.findtext(f"{ATOM}title").split()),
            "abstract": " ".join(e.findtext(f"{ATOM}summary").split()),
            "categories": [c.get("term") for c in e.findall(f"{ATOM}category")],
            "published": e.findtext(f"{ATOM}published")[:10],
        }
        for e in root.findall(f"{ATOM}entry")
    ]


class ReplayedApi:
    """Serves recorded bodies by exact URL; an unrecorded URL fails the test."""

    def __init__(self, mock: responses.RequestsMock):
        self.calls: list[tuple[str, object]] = []  # (url, timeout) per request
        self.failures_before_success: dict[str, int] = {}
        self.aliases: dict[str, str] = {}  # requested URL -> recorded URL whose body answers it
        mock.add_callback(responses.GET, API, callback=self._reply)

    def _reply(self, request):
        self.calls.append((request.url, request.req_kwargs.get("timeout")))
        if self.failures_before_success.get(request.url, 0) > 0:
            self.failures_before_success[request.url] -= 1
            raise requests.exceptions.ReadTimeout("recorded server stalled")
        url = self.aliases.get(request.url, request.url)
        assert url in RECORDINGS, f"no recording for {request.url}"
        rec = RECORDINGS[url]
        # Bodies were stored decoded as ISO-8859-1; encoding back gives arXiv's exact UTF-8 bytes.
        return (
            rec["status_code"],
            {"Content-Type": "application/atom+xml; charset=UTF-8"},
            rec["body"].encode("latin-1"),
        )

    def urls(self) -> list[str]:
        return [url for url, _ in self.calls]


def replay_config(tmp_path, **overrides) -> scrape.Config:
    base = dict(
        output_dir=str(tmp_path / "scrape"),
        query="testing",
        sort_by="relevance",
        sort_order="descending",
        page_size=10,
        max_results=60,
        delay_seconds=0.0,
        num_retries=1,
        timeout_seconds=7.5,
    )
    return scrape.Config(**{**base, **overrides})


def read_lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "abstracts.jsonl").read_text(encoding="utf-8").splitlines()]
