"""Stage 1, scrape: pull ML abstracts from the arXiv API into `<output_dir>/abstracts.jsonl`.

One line per paper: {"id", "title", "abstract", "categories", "published", "announced"}, the
schema of the shared corpus (the API does not report the announcement day, so `announced` is
null). By default the stage asks for the configured categories one window of submission dates
at a time, because the arXiv API will not page deep into one huge result set.

Unlike the other stages this one RESUMES instead of refusing a used output directory: a rerun
appends to abstracts.jsonl, skips papers whose id (or title) the file already holds, and skips
date windows that a previous run fetched to the end (recorded in progress.json). metrics.json is
removed at the start and rewritten at the end, so it still means "the last run finished".
"""

from __future__ import annotations

import dataclasses
import json
import os
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import arxiv
import requests
from tqdm.auto import tqdm

from model_creation.stage_dir import ABSTRACTS_FILE, METRICS_FILE, StageError, write_metrics
from model_creation.text_cleaning import is_withdrawn, normalise_whitespace, strip_version, title_key

DEFAULT_CATEGORIES = ["cs.LG", "cs.AI", "cs.CL", "cs.CV", "cs.NE", "stat.ML"]
PROGRESS_FILE = "progress.json"
DROP_REASONS = ("duplicate_id", "duplicate_title", "withdrawn", "too_short")
# Papers reach the API only once announced, a day or more after submission; a window this close
# to today may still grow, so it is never recorded as complete.
ANNOUNCEMENT_LAG_DAYS = 3


@dataclass
class Config:
    output_dir: str = "runs/scrape"  # resumed if it already exists (see module docstring)
    categories: list[str] = field(default_factory=lambda: list(DEFAULT_CATEGORIES))  # any of them matches
    start_date: str = "2024-01-01"  # first submission day, YYYY-MM-DD
    end_date: str | None = None  # last submission day (inclusive), YYYY-MM-DD; None = today (UTC)
    window_days: int = 7  # one API search per window; ~2-3k ML papers a week stays far below arXiv's paging limit
    query: str | None = None  # raw arXiv search query used INSTEAD of categories and date windows
    id_list: list[str] | None = None  # fetch exactly these papers (combined with `query`, arXiv intersects them)
    max_results: int | None = None  # cap per search (window); None = everything
    sort_by: str = "submittedDate"  # relevance | lastUpdatedDate | submittedDate
    sort_order: str = "ascending"  # ascending | descending
    page_size: int = 1000  # results per request; the API allows at most 2000
    delay_seconds: float = 3.0  # between requests: arXiv's terms ask for one request every 3 s
    num_retries: int = 3  # extra tries for a failed or unexpectedly empty page
    timeout_seconds: float = 60.0  # per HTTP request; arxiv.Client itself sets none
    min_abstract_chars: int = 200  # shorter abstracts (after whitespace normalisation) are dropped


class TimeoutSession(requests.Session):
    """A requests session with a default timeout, which arxiv.Client's own session lacks.

    arxiv.Client retries connection errors but not read timeouts, so a timeout is re-raised as a
    ConnectionError to get the same retries. The last response is kept so that an HTTP error can
    be reported with the message arXiv put in its body.
    """

    def __init__(self, timeout: float):
        super().__init__()
        self.timeout = timeout
        self.last_response: requests.Response | None = None

    def request(self, method, url, *args, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.exceptions.Timeout as exc:
            raise requests.exceptions.ConnectionError(f"no answer within {kwargs['timeout']} s from {url}") from exc
        self.last_response = response
        return response


def make_client(config: Config) -> arxiv.Client:
    client = arxiv.Client(
        page_size=config.page_size, delay_seconds=config.delay_seconds, num_retries=config.num_retries
    )
    # arxiv 4.x builds a bare requests.Session and offers no hook to replace it.
    client._session = TimeoutSession(config.timeout_seconds)
    return client


def _parse_day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise StageError(f"{name} must be a date YYYY-MM-DD, got {value!r}") from None


def validate(config: Config) -> None:
    """Reject a config the API would choke on, naming the field and the bound."""
    if not 1 <= config.page_size <= 2000:
        raise StageError(f"page_size must be between 1 and 2000, got {config.page_size}")
    if config.max_results is not None and config.max_results < 1:
        raise StageError(f"max_results must be >= 1 or None, got {config.max_results}")
    if config.window_days < 1:
        raise StageError(f"window_days must be >= 1, got {config.window_days}")
    if config.num_retries < 0 or config.delay_seconds < 0 or config.timeout_seconds <= 0:
        raise StageError("num_retries and delay_seconds must be >= 0 and timeout_seconds > 0")
    if config.sort_by not in {c.value for c in arxiv.SortCriterion}:
        raise StageError(f"sort_by must be one of relevance, lastUpdatedDate, submittedDate, got {config.sort_by!r}")
    if config.sort_order not in {o.value for o in arxiv.SortOrder}:
        raise StageError(f"sort_order must be ascending or descending, got {config.sort_order!r}")
    if config.query is None and not config.id_list:
        if not config.categories:
            raise StageError("categories must name at least one arXiv category (or give query / id_list)")
        start, end = _parse_day(config.start_date, "start_date"), _end_day(config)
        if start > end:
            raise StageError(f"start_date {start} is after end_date {end}")


def _end_day(config: Config) -> date:
    return _parse_day(config.end_date, "end_date") if config.end_date else datetime.now(UTC).date()


def date_windows(start: date, end: date, days: int) -> list[tuple[date, date]]:
    """Consecutive [first, last] day ranges of `days` days covering start..end (the last may be shorter)."""
    windows = []
    while start <= end:
        last = min(start + timedelta(days=days - 1), end)
        windows.append((start, last))
        start = last + timedelta(days=1)
    return windows


def window_query(categories: list[str], first: date, last: date) -> str:
    """The arXiv search query for papers in any of `categories` submitted from `first` to `last` (inclusive)."""
    any_category = " OR ".join(f"cat:{c}" for c in categories)
    return f"({any_category}) AND submittedDate:[{first:%Y%m%d}0000 TO {last:%Y%m%d}2359]"


def planned_searches(config: Config) -> list[tuple[arxiv.Search, bool]]:
    """Each search to run, with whether it may be recorded as complete once fetched to the end."""
    sort = dict(sort_by=arxiv.SortCriterion(config.sort_by), sort_order=arxiv.SortOrder(config.sort_order))
    if config.query is not None or config.id_list:
        # An open-ended query keeps growing, so it is always fetched again (known ids are skipped).
        search = arxiv.Search(query=config.query or "", id_list=config.id_list, max_results=config.max_results, **sort)
        return [(search, False)]
    settled_before = datetime.now(UTC).date() - timedelta(days=ANNOUNCEMENT_LAG_DAYS)
    return [
        (
            arxiv.Search(query=window_query(config.categories, first, last), max_results=config.max_results, **sort),
            last < settled_before,
        )
        for first, last in date_windows(
            _parse_day(config.start_date, "start_date"), _end_day(config), config.window_days
        )
    ]


def paper_record(result: arxiv.Result) -> dict:
    """One line of abstracts.jsonl from an API result."""
    return {
        "id": strip_version(result.get_short_id()),
        "title": normalise_whitespace(result.title),
        "abstract": normalise_whitespace(result.summary),
        "categories": list(result.categories),
        "published": result.published.date().isoformat(),
        "announced": None,
    }


class PaperFilter:
    """Decides which papers to keep; remembers kept ids and titles to drop later duplicates."""

    def __init__(self, min_abstract_chars: int):
        self.min_abstract_chars = min_abstract_chars
        self.ids: set[str] = set()
        self.titles: set[str] = set()

    def remember(self, record: dict) -> None:
        self.ids.add(record["id"])
        self.titles.add(title_key(record["title"]))

    def drop_reason(self, record: dict, comment: str | None = None) -> str | None:
        """Why `record` must be dropped (one of DROP_REASONS), or None to keep it."""
        if record["id"] in self.ids:
            return "duplicate_id"
        if is_withdrawn(record["abstract"], comment):
            return "withdrawn"
        if len(record["abstract"]) < self.min_abstract_chars:
            return "too_short"
        if title_key(record["title"]) in self.titles:
            return "duplicate_title"
        return None


def load_existing(path: Path, paper_filter: PaperFilter) -> int:
    """Register the papers already in abstracts.jsonl; cut off a last line an interrupted run left half-written."""
    if not path.exists():
        return 0
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        path.write_bytes(data)
    lines = data.decode("utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        try:
            paper_filter.remember(json.loads(line))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise StageError(
                f"{path}:{number} is not a paper record ({exc}); fix or delete the file to resume"
            ) from None
    return len(lines)


def _read_progress(path: Path) -> set[str]:
    return set(json.loads(path.read_text())["completed_queries"]) if path.exists() else set()


def _write_progress(path: Path, completed: set[str]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"completed_queries": sorted(completed)}, indent=1) + "\n")
    os.replace(tmp, path)


def api_error_detail(response: requests.Response | None) -> str:
    """The message arXiv writes into an error feed (its entry's summary), else the start of the body."""
    if response is None:
        return "no response"
    try:
        summary = ET.fromstring(response.content).find(
            "{http://www.w3.org/2005/Atom}entry/{http://www.w3.org/2005/Atom}summary"
        )
    except ET.ParseError:
        summary = None
    return summary.text.strip() if summary is not None and summary.text else response.text[:200]


def _fetch(client: arxiv.Client, search: arxiv.Search, config: Config):
    """Yield the search's results, turning the client's failures into one clear StageError."""
    tries = config.num_retries + 1
    try:
        yield from client.results(search)
    except arxiv.HTTPError as exc:
        detail = api_error_detail(client._session.last_response)
        raise StageError(f"arXiv API answered HTTP {exc.status} after {tries} tries ({detail}): {exc.url}") from exc
    except arxiv.UnexpectedEmptyPageError as exc:
        raise StageError(f"arXiv API kept returning an empty page after {tries} tries: {exc.url}") from exc
    except requests.exceptions.ConnectionError as exc:
        raise StageError(f"arXiv API unreachable after {tries} tries: {exc}") from exc


def run(config: Config) -> Path:
    validate(config)
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / METRICS_FILE).unlink(missing_ok=True)  # unfinished until this run ends
    abstracts, progress = out / ABSTRACTS_FILE, out / PROGRESS_FILE
    paper_filter = PaperFilter(config.min_abstract_chars)
    already = load_existing(abstracts, paper_filter)
    completed = _read_progress(progress)
    searches = planned_searches(config)
    todo = [(s, settles) for s, settles in searches if s.query not in completed or not settles]
    client = make_client(config)
    fetched, kept, dropped = 0, 0, Counter({reason: 0 for reason in DROP_REASONS})
    with abstracts.open("a", encoding="utf-8") as sink, tqdm(desc="scrape", unit=" papers") as bar:
        for number, (search, settles) in enumerate(todo, start=1):
            bar.set_description(f"scrape {number}/{len(todo)}")
            seen = 0
            for result in _fetch(client, search, config):
                seen += 1
                record = paper_record(result)
                reason = paper_filter.drop_reason(record, result.comment)
                if reason:
                    dropped[reason] += 1
                else:
                    paper_filter.remember(record)
                    sink.write(json.dumps(record, ensure_ascii=False) + "\n")
                    sink.flush()  # an interruption loses at most the line being written
                    kept += 1
                bar.update(1)
                bar.set_postfix(kept=kept)
            fetched += seen
            exhausted = search.max_results is None or seen < search.max_results
            if settles and exhausted:
                completed.add(search.query)
                _write_progress(progress, completed)
    write_metrics(
        out,
        {
            "fetched": fetched,
            "kept": kept,
            "dropped": dict(dropped),
            "total_in_file": already + kept,
            "already_in_file": already,
            "searches_run": len(todo),
            "searches_skipped_complete": len(searches) - len(todo),
            "config": dataclasses.asdict(config),
        },
    )
    return out
