"""The scrape stage against real recorded arXiv API responses, replayed in place of the network."""

import json
import re
import socket
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

import pytest
import requests
import responses

from model_creation import scrape
from model_creation.stage_dir import StageError, read_metrics
from model_creation.text_cleaning import is_withdrawn, normalise_whitespace, strip_version, title_key

FIXTURES = Path(__file__).parent / "fixtures" / "arxiv-api"
ATOM = "{http://www.w3.org/2005/Atom}"
API = re.compile(r"https://export\.arxiv\.org/api/query\?.*")
TESTING_PAGES = [f"q_testing_s{start}_m10" for start in range(0, 60, 10)]


def _recordings() -> dict[str, dict]:
    return {json.loads(p.read_text())["url"]: {"name": p.name, **json.loads(p.read_text())} for p in FIXTURES.glob("*.json")}


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
        return rec["status_code"], {"Content-Type": "application/atom+xml; charset=UTF-8"}, rec["body"].encode("latin-1")

    def urls(self) -> list[str]:
        return [url for url, _ in self.calls]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any real connection attempt is recorded and refused; the test then fails."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield
    assert attempts == [], f"a test tried to reach the network: {attempts}"


@pytest.fixture
def api():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield ReplayedApi(mock)


def replay_config(tmp_path, **overrides) -> scrape.Config:
    base = dict(output_dir=str(tmp_path / "scrape"), query="testing", sort_by="relevance", sort_order="descending",
                page_size=10, max_results=60, delay_seconds=0.0, num_retries=1, timeout_seconds=7.5)
    return scrape.Config(**{**base, **overrides})


def read_lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "abstracts.jsonl").read_text(encoding="utf-8").splitlines()]


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


def test_resume_adds_only_new_papers(tmp_path, api):
    first = read_lines(scrape.run(replay_config(tmp_path, max_results=30)))
    assert len(first) == 30 and len(api.calls) == 3
    out = scrape.run(replay_config(tmp_path, max_results=60))
    lines = read_lines(out)
    assert lines[:30] == first
    assert [line["id"] for line in lines] == [e["id"] for p in TESTING_PAGES for e in oracle_entries(p)]
    metrics = read_metrics(out)
    assert (metrics["already_in_file"], metrics["fetched"], metrics["kept"], metrics["total_in_file"]) == (30, 60, 30, 60)
    assert metrics["dropped"]["duplicate_id"] == 30


def test_identical_rerun_adds_nothing(tmp_path, api):
    out = scrape.run(replay_config(tmp_path, max_results=20))
    before = (out / "abstracts.jsonl").read_bytes()
    scrape.run(replay_config(tmp_path, max_results=20))
    assert (out / "abstracts.jsonl").read_bytes() == before
    assert read_metrics(out)["kept"] == 0 and read_metrics(out)["total_in_file"] == 20


def test_resume_cuts_a_half_written_last_line(tmp_path, api):
    out = scrape.run(replay_config(tmp_path, max_results=10))
    path = out / "abstracts.jsonl"
    data = path.read_bytes()
    cut = data[: data.rstrip(b"\n").rfind(b"\n") + 1] + b'{"id": "2202.1'  # interrupted mid-line
    path.write_bytes(cut)
    scrape.run(replay_config(tmp_path, max_results=10))
    assert path.read_bytes() == data  # the cut line is gone and its paper fetched again


def test_corrupt_existing_file_is_a_clear_error(tmp_path, api):
    out = tmp_path / "scrape"
    out.mkdir()
    (out / "abstracts.jsonl").write_text('{"id": "1", "title": "t", "abstract": "a"}\nnot json\n')
    with pytest.raises(StageError, match=r"abstracts.jsonl:2 is not a paper record"):
        scrape.run(replay_config(tmp_path))


def test_duplicates_by_id_and_by_title_are_dropped(tmp_path, api):
    page = oracle_entries("q_testing_s0_m10")
    out = tmp_path / "scrape"
    out.mkdir()
    same_id = {**page[0], "title": "An unrelated title"}
    # Another id, same title up to case, punctuation and spacing.
    same_title = {**page[1], "id": "9999.99999", "title": page[1]["title"].upper().replace(" ", "  -  ") + "!"}
    (out / "abstracts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in (same_id, same_title)))
    scrape.run(replay_config(tmp_path, max_results=10))
    lines = read_lines(out)
    assert [line["id"] for line in lines] == [same_id["id"], "9999.99999"] + [e["id"] for e in page[2:]]
    metrics = read_metrics(out)
    assert metrics["dropped"]["duplicate_id"] == 1 and metrics["dropped"]["duplicate_title"] == 1
    assert (metrics["kept"], metrics["total_in_file"]) == (8, 10)


@pytest.mark.parametrize("min_chars", [0, 800, 1200, 1600, 100_000])
def test_min_abstract_length_is_configurable(tmp_path, api, min_chars):
    out = scrape.run(replay_config(tmp_path, max_results=30, min_abstract_chars=min_chars))
    expected = [e["id"] for p in TESTING_PAGES[:3] for e in oracle_entries(p) if len(e["abstract"]) >= min_chars]
    assert [line["id"] for line in read_lines(out)] == expected
    assert read_metrics(out)["dropped"]["too_short"] == 30 - len(expected)


@pytest.mark.parametrize("num_retries", [0, 2])
def test_http_400_feed_raises_a_clear_error_after_the_retries(tmp_path, api, num_retries):
    config = replay_config(tmp_path, query=None, id_list=["abc"], page_size=100, max_results=None, num_retries=num_retries)
    with pytest.raises(StageError) as info:
        scrape.run(config)
    message = str(info.value)
    assert "HTTP 400" in message and "incorrect id format for abc" in message and f"after {num_retries + 1} tries" in message
    assert api.urls() == [recording("id_abc_s0_m100")["url"]] * (num_retries + 1)
    assert not (tmp_path / "scrape" / "metrics.json").exists()


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


def test_every_request_has_the_configured_timeout(tmp_path, api):
    scrape.run(replay_config(tmp_path, max_results=30, timeout_seconds=4.25))
    assert [timeout for _, timeout in api.calls] == [4.25] * 3


def test_a_stalled_request_is_retried(tmp_path, api):
    api.failures_before_success[recording("q_testing_s10_m10")["url"]] = 1
    out = scrape.run(replay_config(tmp_path, max_results=30, num_retries=1))
    assert len(read_lines(out)) == 30 and len(api.calls) == 4


def test_a_server_that_keeps_stalling_is_a_clear_error(tmp_path, api):
    api.failures_before_success[recording("q_testing_s0_m10")["url"]] = 10
    with pytest.raises(StageError, match=r"unreachable after 3 tries"):
        scrape.run(replay_config(tmp_path, num_retries=2))
    assert len(api.calls) == 3


def test_unrecorded_url_never_reaches_the_network(api):
    with pytest.raises(AssertionError, match="no recording"):
        requests.get("https://export.arxiv.org/api/query?search_query=unrecorded", timeout=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get("https://example.org/", timeout=1)  # outside the API: refused by the mock


# --- date windows and configuration ---------------------------------------------------------

@pytest.mark.parametrize(
    "start, end, days, expected",
    [
        ("2024-01-01", "2024-01-01", 7, [("2024-01-01", "2024-01-01")]),
        ("2024-01-01", "2024-01-14", 7, [("2024-01-01", "2024-01-07"), ("2024-01-08", "2024-01-14")]),
        ("2024-02-26", "2024-03-05", 3, [("2024-02-26", "2024-02-28"), ("2024-02-29", "2024-03-02"), ("2024-03-03", "2024-03-05")]),
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
    config = scrape.Config(output_dir=str(tmp_path), start_date="2024-01-01", end_date="2024-01-10", window_days=5,
                           max_results=50)
    searches = scrape.planned_searches(config)
    assert [s.query for s, _ in searches] == [
        scrape.window_query(scrape.DEFAULT_CATEGORIES, date(2024, 1, 1), date(2024, 1, 5)),
        scrape.window_query(scrape.DEFAULT_CATEGORIES, date(2024, 1, 6), date(2024, 1, 10)),
    ]
    assert all(settles and s.max_results == 50 for s, settles in searches)
    today = scrape.planned_searches(scrape.Config(output_dir=str(tmp_path), start_date=date.today().isoformat()))
    assert [settles for _, settles in today] == [False]  # still being announced


def test_finished_windows_are_not_fetched_again(tmp_path, api):
    config = scrape.Config(output_dir=str(tmp_path / "scrape"), start_date="2020-01-01", end_date="2020-01-14",
                           window_days=7, page_size=100, delay_seconds=0.0)
    searches = scrape.planned_searches(config)
    client = scrape.make_client(config)
    empty = recording("id_0000.0000_s0_m100")["url"]  # arXiv's real answer for a search with no results
    for search, _ in searches:
        api.aliases[client._format_url(search, 0, config.page_size)] = empty
    out = scrape.run(config)
    assert len(api.calls) == 2
    assert json.loads((out / "progress.json").read_text())["completed_queries"] == sorted(s.query for s, _ in searches)
    scrape.run(config)
    assert len(api.calls) == 2  # both windows were complete: nothing requested
    assert (read_metrics(out)["searches_run"], read_metrics(out)["searches_skipped_complete"]) == (0, 2)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"page_size": 0}, "page_size must be between 1 and 2000, got 0"),
        ({"page_size": 2001}, "page_size must be between 1 and 2000, got 2001"),
        ({"max_results": 0}, "max_results must be >= 1"),
        ({"window_days": 0}, "window_days must be >= 1, got 0"),
        ({"start_date": "2024/01/01"}, "start_date must be a date YYYY-MM-DD, got '2024/01/01'"),
        ({"start_date": "2024-02-01", "end_date": "2024-01-01"}, "start_date 2024-02-01 is after end_date 2024-01-01"),
        ({"categories": []}, "categories must name at least one arXiv category"),
        ({"sort_by": "date"}, "sort_by must be one of"),
        ({"sort_order": "up"}, "sort_order must be ascending or descending, got 'up'"),
        ({"timeout_seconds": 0}, "timeout_seconds > 0"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path, overrides, message):
    with pytest.raises(StageError, match=re.escape(message)):
        scrape.run(scrape.Config(output_dir=str(tmp_path / "out"), **overrides))
    assert not (tmp_path / "out").exists()


# --- text rules shared with the dataset stage -----------------------------------------------

@pytest.mark.parametrize(
    "text, withdrawn",
    [
        ("This paper has been withdrawn by the author due to a crucial error in Theorem 2.", True),
        ("Withdrawn.", True),
        ("withdrawn due to a mistake in the proof", True),
        ("This submission has been withdrawn by arXiv administrators because of a copyright claim.", True),
        ("The manuscript was withdrawn for revision.", True),
        ("Paper withdrawn", True),
        ("Utilizing papers withdrawn from arXiv, we validated our proposed methods.", False),
        ("The model notices that a drug has been withdrawn yet suppresses this in the answer.", False),
        ("Four interaction types: Cooperative, Dependent, Withdrawn, and Adversarial.", False),
        ("We study electron-withdrawing groups and the withdrawal of needles.", False),
    ],
)
def test_withdrawn_notices(text, withdrawn):
    assert is_withdrawn(text) is withdrawn
    assert is_withdrawn("A long and ordinary abstract.", comment=text) is withdrawn


@pytest.mark.parametrize(
    "raw, clean",
    [("  a\n b\t\tc  ", "a b c"), ("line one\r\nline two", "line one line two"), ("\u00a0nbsp\u2009thin ", "nbsp thin"), ("", "")],
)
def test_normalise_whitespace(raw, clean):
    assert normalise_whitespace(raw) == clean


@pytest.mark.parametrize(
    "a, b, same",
    [
        ("Attention Is All You Need", "attention is all you need.", True),
        ("BERT: Pre-training of Deep Bidirectional Transformers", "BERT -- pre-training of deep bidirectional transformers", True),
        ("Straße", "STRASSE", True),
        ("GPT-2", "GPT-3", False),
    ],
)
def test_title_key(a, b, same):
    assert (title_key(a) == title_key(b)) is same


@pytest.mark.parametrize(
    "raw, clean", [("2101.00001v3", "2101.00001"), ("hep-th/9901001v1", "hep-th/9901001"), ("2101.00001", "2101.00001")]
)
def test_strip_version(raw, clean):
    assert strip_version(raw) == clean


def test_command_line_runs_the_stage(tmp_path, api, capsys):
    from model_creation.__main__ import main

    out = tmp_path / "cli"
    code = main(["scrape", "--output-dir", str(out), "--query", "testing", "--sort-by", "relevance", "--sort-order",
                 "descending", "--page-size", "10", "--max-results", "20", "--delay-seconds", "0"])
    assert code == 0 and capsys.readouterr().out.strip() == str(out)
    assert len(read_lines(out)) == 20 and len(api.calls) == 2


def test_command_line_reports_a_bad_value_without_a_traceback(tmp_path, capsys):
    from model_creation.__main__ import main

    assert main(["scrape", "--output-dir", str(tmp_path / "cli"), "--page-size", "5000"]) == 2
    assert capsys.readouterr().err.strip() == "error: page_size must be between 1 and 2000, got 5000"
