"""RequestFraming, byte by byte: when a request is whole, when it must be handed over as is."""

from __future__ import annotations

import pytest

from backend.http_framing import RequestFraming, Verdict

HEAD = b"POST /generate HTTP/1.1\r\nHost: x\r\n"


def verdicts(raw: bytes, max_head: int = 1024, max_body: int = 100) -> list[Verdict]:
    """The verdict after each byte of `raw`, fed one at a time."""
    framing = RequestFraming(max_head, max_body)
    return [framing.feed(raw[i : i + 1]) for i in range(len(raw))]


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
        HEAD + b"Content-Length: 5\r\n\r\nhello",
        HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\n\r\n",
        HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n",
        HEAD + b"transfer-encoding: gzip, Chunked\r\n\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\nHost: x\n\n",  # bare LF: whole, and gunicorn's parser then refuses it
    ],
)
def test_complete_exactly_at_the_last_byte(raw):
    seen = verdicts(raw)
    assert seen[-1] is Verdict.COMPLETE
    assert all(v is Verdict.NEED_MORE for v in seen[:-1])


def test_bytes_after_a_complete_request_stay_with_it():
    framing = RequestFraming(1024, 100)
    raw = HEAD + b"Content-Length: 2\r\n\r\n{}GET / HTTP/1.1\r\n"  # the next request, pipelined
    assert framing.feed(raw) is Verdict.COMPLETE and bytes(framing.buffer) == raw


@pytest.mark.parametrize(
    "headers",
    [
        b"Content-Length: -1\r\n",
        b"Content-Length: 5\r\nContent-Length: 5\r\n",
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: chunked, gzip\r\n",
        b"Content-Length: 0x10\r\n",
    ],
)
def test_ambiguous_framing_is_handed_over_when_the_head_ends(headers):
    raw = HEAD + headers + b"\r\n"
    seen = verdicts(raw)
    assert seen[-1] is Verdict.HAND_OVER and Verdict.HAND_OVER not in seen[:-1]


def test_a_bad_chunk_size_is_handed_over():
    assert verdicts(HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n")[-1] is Verdict.HAND_OVER


def test_a_content_length_over_the_limit_is_known_from_the_head():
    assert verdicts(HEAD + b"Content-Length: 101\r\n\r\n")[-1] is Verdict.BODY_TOO_LARGE
    assert verdicts(HEAD + b"Content-Length: 100\r\n\r\n")[-1] is Verdict.NEED_MORE


def test_a_chunked_body_is_over_the_limit_once_more_than_the_limit_has_arrived():
    framing = RequestFraming(1024, 100)
    assert framing.feed(HEAD + b"Transfer-Encoding: chunked\r\n\r\n1000\r\n") is Verdict.NEED_MORE
    assert framing.feed(b"a" * 100) is Verdict.NEED_MORE  # announced 4096, only 100 here
    assert framing.feed(b"a") is Verdict.BODY_TOO_LARGE
    split = RequestFraming(1024, 100)  # the same over many small chunks
    body = b"".join(b"a\r\n" + b"x" * 10 + b"\r\n" for _ in range(11))
    assert split.feed(HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + body) is Verdict.BODY_TOO_LARGE


def test_a_head_that_does_not_end_within_the_limit():
    framing = RequestFraming(64, 100)
    assert framing.feed(b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 7) is Verdict.NEED_MORE
    assert framing.feed(b"X: y\r\n" * 2) is Verdict.HEAD_TOO_LARGE


def test_expect_continue_is_noticed_for_http_1_1_only():
    for version, expected in ((b"1.1", True), (b"1.0", False)):
        framing = RequestFraming(1024, 100)
        framing.feed(b"POST / HTTP/" + version + b"\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n")
        assert framing.expects_continue is expected
