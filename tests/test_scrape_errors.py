"""The scrape stage's failures against recorded arXiv API responses: a corrupt existing file, HTTP
errors, timeouts and retries of stalled requests, refused network access, and bad configuration
(from Python and from the command line), each a clear error."""

import re

import pytest
import requests

from model_creation import scrape
from model_creation.stage_dir import StageError
from tests.arxiv_replay import read_lines, recording, replay_config

pytestmark = pytest.mark.usefixtures("no_network")


def test_corrupt_existing_file_is_a_clear_error(tmp_path, api):
    out = tmp_path / "scrape"
    out.mkdir()
    (out / "abstracts.jsonl").write_text('{"id": "1", "title": "t", "abstract": "a"}\nnot json\n')
    with pytest.raises(StageError, match=r"abstracts.jsonl:2 is not a paper record"):
        scrape.run(replay_config(tmp_path))


@pytest.mark.parametrize("num_retries", [0, 2])
def test_http_400_feed_raises_a_clear_error_after_the_retries(tmp_path, api, num_retries):
    config = replay_config(
        tmp_path, query=None, id_list=["abc"], page_size=100, max_results=None, num_retries=num_retries
    )
    with pytest.raises(StageError) as info:
        scrape.run(config)
    message = str(info.value)
    assert (
        "HTTP 400" in message
        and "incorrect id format for abc" in message
        and f"after {num_retries + 1} tries" in message
    )
    assert api.urls() == [recording("id_abc_s0_m100")["url"]] * (num_retries + 1)
    assert not (tmp_path / "scrape" / "metrics.json").exists()


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


# --- configuration --------------------------------------------------------------------------


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


def test_command_line_reports_a_bad_value_without_a_traceback(tmp_path, capsys):
    from model_creation.__main__ import main

    assert main(["scrape", "--output-dir", str(tmp_path / "cli"), "--page-size", "5000"]) == 2
    assert capsys.readouterr().err.strip() == "error: page_size must be between 1 and 2000, got 5000"
