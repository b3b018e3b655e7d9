"""The scrape stage rerun over its own output, against recorded arXiv API responses: resuming adds
only new papers, a half-written last line is cut, finished date windows are skipped, duplicates by
id and by title are dropped; and the text rules (shared with the dataset stage) behind them."""

import json

import pytest

from model_creation import scrape
from model_creation.stage_dir import read_metrics
from model_creation.text_cleaning import is_withdrawn, normalise_whitespace, strip_version, title_key
from tests.arxiv_replay import TESTING_PAGES, oracle_entries, read_lines, recording, replay_config

pytestmark = pytest.mark.usefixtures("no_network")


def test_resume_adds_only_new_papers(tmp_path, api):
    first = read_lines(scrape.run(replay_config(tmp_path, max_results=30)))
    assert len(first) == 30 and len(api.calls) == 3
    out = scrape.run(replay_config(tmp_path, max_results=60))
    lines = read_lines(out)
    assert lines[:30] == first
    assert [line["id"] for line in lines] == [e["id"] for p in TESTING_PAGES for e in oracle_entries(p)]
    metrics = read_metrics(out)
    assert (metrics["already_in_file"], metrics["fetched"], metrics["kept"], metrics["total_in_file"]) == (
        30,
        60,
        30,
        60,
    )
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


def test_finished_windows_are_not_fetched_again(tmp_path, api):
    config = scrape.Config(
        output_dir=str(tmp_path / "scrape"),
        start_date="2020-01-01",
        end_date="2020-01-14",
        window_days=7,
        page_size=100,
        delay_seconds=0.0,
    )
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
    [
        ("  a\n b\t\tc  ", "a b c"),
        ("line one\r\nline two", "line one line two"),
        ("\u00a0nbsp\u2009thin ", "nbsp thin"),
        ("", ""),
    ],
)
def test_normalise_whitespace(raw, clean):
    assert normalise_whitespace(raw) == clean


@pytest.mark.parametrize(
    "a, b, same",
    [
        ("Attention Is All You Need", "attention is all you need.", True),
        (
            "BERT: Pre-training of Deep Bidirectional Transformers",
            "BERT -- pre-training of deep bidirectional transformers",
            True,
        ),
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
