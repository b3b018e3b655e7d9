"""The scrape stage's normal runs against recorded arXiv API responses: paging across requests, the
corpus schema of every written line, text and id handling, the abstract-length filter, date-window
searches, and the command line."""

import re
import xml.etree.ElementTree as ET
from datetime import date

import pytest

from model_creation import scrape
from model_creation.stage_dir import read_metrics
from tests.arxiv_replay import ATOM, TESTING_PAGES, oracle_entries, read_lines, recording, replay_config

pytestmark = pytest.mark.usefixtures("no_network")


def test_pages_across_several_requests(tmp_path, api):
    out = scrape.run(replay_config(tmp_path))
    assert api.urls() == [recording(p)["url"] for p in TESTING_PAGES]
    expected = [e for p in TESTING_PAGES for e in oracle_entries(p)]
    assert len(expected) == 60
    lines = read_lines(out)
    assert [{k: line[k] for k in expected[0]} for line in lines] == expected
    metrics = read_metrics(out)
    assert (metrics["fetched"], metrics["kept"], metrics["total_in_file"]) == (60, 60, 60)
    assert metrics["dropped"] == {reason: 0 for reason in scrape.DROP_REASONS}


def test_every_line_has_the_corpus_schema(tmp_path, api):
    lines = read_lines(scrape.run(replay_config(tmp_path)))
    assert any("\n" in raw_summaries(p) for p in TESTING_PAGES)  # arXiv wraps abstracts over lines
    for line in lines:
        assert set(line) == {"id", "title", "abstract", "categories", "published", "announced"}
        assert re.fullmatch(r"\d{4}\.\d{4,5}|[a-z\-]+(\.[A-Z]{2})?/\d{7}", line["id"]), line["id"]
        assert date.fromisoformat(line["published"]).isoformat() == line["published"]
        assert isinstance(line["categories"], list) and all(isinstance(c, str) for c in line["categories"])
        for text in (line["title"], line["abstract"]):
            assert text == text.strip() and "  " not in text and "\n" not in text
    # The one old-style id in these pages keeps its archive prefix.
    assert "cs/0503050" in {line["id"] for line in lines}


def raw_summaries(prefix: str) -> str:
    root = ET.fromstring(recording(prefix)["body"].encode("latin-1"))
    return "".join(e.findtext(f"{ATOM}summary") for e in root.findall(f"{ATOM}entry"))


def test_utf8_text_survives(tmp_path, api):
    titles = [line["title"] for line in read_lines(scrape.run(replay_config(tmp_path, max_results=30)))]
    assert "$ω$Test: WebView-Oriented Testing for Android Applications" in titles


@pytest.mark.parametrize("min_chars", [0, 800, 1200, 1600, 100_000])
def test_min_abstract_length_is_configurable(tmp_path, api, min_chars):
    out = scrape.run(replay_config(tmp_path, max_results=30, min_abstract_chars=min_chars))
    expected = [e["id"] for p in TESTING_PAGES[:3] for e in oracle_entries(p) if len(e["abstract"]) >= min_chars]
    assert [line["id"] for line in read_lines(out)] == expected
    assert read_metrics(out)["dropped"]["too_short"] == 30 - len(expected)


def test_empty_result_terminates_cleanly(tmp_path, api):
    out = scrape.run(replay_config(tmp_path, query=None, id_list=["0000.0000"], page_size=100, max_results=None))
    assert len(api.calls) == 1
    assert (out / "abstracts.jsonl").read_text() == ""
    metrics = read_metrics(out)
    assert (metrics["fetched"], metrics["kept"], metrics["total_in_file"]) == (0, 0, 0)


@pytest.mark.parametrize(
    "requested, expected_id, published",
    [("quant-ph/0201082v1", "quant-ph/0201082", "2002-01-18"), ("astro-ph/0601001", "astro-ph/0601001", "2006-01-02")],
)
def test_old_style_ids_lose_only_the_version(tmp_path, api, requested, expected_id, published):
    out = scrape.run(replay_config(tmp_path, query=None, id_list=[requested], page_size=100, max_results=None))
    (line,) = read_lines(out)
    assert (line["id"], line["published"]) == (expected_id, published)


# --- date windows ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "start, end, days, expected",
    [
        ("2024-01-01", "2024-01-01", 7, [("2024-01-01", "2024-01-01")]),
        ("2024-01-01", "2024-01-14", 7, [("2024-01-01", "2024-01-07"), ("2024-01-08", "2024-01-14")]),
        (
            "2024-02-26",
            "2024-03-05",
            3,
            [("2024-02-26", "2024-02-28"), ("2024-02-29", "2024-03-02"), ("2024-03-03", "2024-03-05")],
        ),
        ("2024-12-30", "2025-01-02", 30, [("2024-12-30", "2025-01-02")]),
    ],
)
def test_date_windows_cover_the_range_without_gaps(start, end, days, expected):
    windows = scrape.date_windows(date.fromisoformat(start), date.fromisoformat(end), days)
    assert [(a.isoformat(), b.isoformat()) for a, b in windows] == expected


def test_window_query_uses_arxiv_syntax():
    query = scrape.window_query(["cs.LG", "stat.ML"], date(2024, 3, 1), date(2024, 3, 7))
    assert query == "(cat:cs.LG OR cat:stat.ML) AND submittedDate:[202403010000 TO 202403072359]"


def test_window_searches_and_which_may_complete(tmp_path):
    config = scrape.Config(
        output_dir=str(tmp_path), start_date="2024-01-01", end_date="2024-01-10", window_days=5, max_results=50
    )
    searches = scrape.planned_searches(config)
    assert [s.query for s, _ in searches] == [
        scrape.window_query(scrape.DEFAULT_CATEGORIES, date(2024, 1, 1), date(2024, 1, 5)),
        scrape.window_query(scrape.DEFAULT_CATEGORIES, date(2024, 1, 6), date(2024, 1, 10)),
    ]
    assert all(settles and s.max_results == 50 for s, settles in searches)
    today = scrape.planned_searches(scrape.Config(output_dir=str(tmp_path), start_date=date.today().isoformat()))
    assert [settles for _, settles in today] == [False]  # still being announced


# --- the command line -----------------------------------------------------------------------


def test_command_line_runs_the_stage(tmp_path, api, capsys):
    from model_creation.__main__ import main

    out = tmp_path / "cli"
    code = main(
        [
            "scrape",
            "--output-dir",
            str(out),
            "--query",
            "testing",
            "--sort-by",
            "relevance",
            "--sort-order",
            "descending",
            "--page-size",
            "10",
            "--max-results",
            "20",
            "--delay-seconds",
            "0",
        ]
    )
    assert code == 0 and capsys.readouterr().out.strip() == str(out)
    assert len(read_lines(out)) == 20 and len(api.calls) == 2
