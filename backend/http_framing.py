"""Where an HTTP/1.1 request ends, found from bytes as they arrive, before anything parses it.

The gunicorn worker (backend/worker.py) reads every request in its event loop and hands it to a
thread only once it is complete, so a client that sends half a request holds a socket, not a
thread. RequestFraming decides "complete" from the framing alone: the head ends at the first
blank line; a body follows by Content-Length or by chunked transfer coding. It does not judge
anything else: a head whose framing is malformed or ambiguous (a bad or repeated Content-Length,
both Content-Length and Transfer-Encoding, an unknown coding, a bad chunk size) is handed over
at once so that gunicorn's parser rejects it, and a body over the size limit is handed over as
soon as that is known so that the application answers 413 without waiting for the rest.
"""

from __future__ import annotations

import enum
import re

HEAD_ENDS = (b"\r\n\r\n", b"\n\n")  # a bare-LF head is complete too: the parser then rejects it
CHUNK_SIZE_LINE_MAX = 1024  # hex digits plus extensions; longer is malformed
_DIGITS = re.compile(rb"[0-9]+")
_HEX = re.compile(rb"[0-9A-Fa-f]+")


class Verdict(enum.Enum):
    NEED_MORE = "need more bytes"
    COMPLETE = "complete request"
    HAND_OVER = "malformed framing: let the parser reject it"
    BODY_TOO_LARGE = "body over the limit: let the application answer 413"
    HEAD_TOO_LARGE = "head over the limit without ending"


class RequestFraming:
    """Feed bytes; the verdict says whether one whole request (head and body) has arrived."""

    def __init__(self, max_head_bytes: int, max_body_bytes: int):
        self.max_head = max_head_bytes
        self.max_body = max_body_bytes
        self.buffer = bytearray()
        self.head_end: int | None = None  # offset just past the blank line
        self.expects_continue = False
        self._content_length: int | None = None
        self._chunked = False
        self._chunk_pos = 0  # next unread framing byte of a chunked body
        self._chunk_body = 0  # decoded body bytes of the chunks read whole
        self._in_trailers = False
        self._verdict = Verdict.NEED_MORE

    def feed(self, data: bytes) -> Verdict:
        if self._verdict is not Verdict.NEED_MORE:
            self.buffer += data
            return self._verdict
        searched_to = max(0, len(self.buffer) - 3)
        self.buffer += data
        if self.head_end is None:
            self._verdict = self._find_head(searched_to)
            if self.head_end is None:
                return self._verdict
        self._verdict = self._body_verdict()
        return self._verdict

    def _find_head(self, start: int) -> Verdict:
        ends = [(i, len(marker)) for marker in HEAD_ENDS if (i := self.buffer.find(marker, start)) >= 0]
        if not ends:
            return Verdict.HEAD_TOO_LARGE if len(self.buffer) > self.max_head else Verdict.NEED_MORE
        index, length = min(ends)
        self.head_end = index + length
        if self.head_end > self.max_head:
            return Verdict.HEAD_TOO_LARGE
        return self._read_framing_headers(bytes(self.buffer[:index]))

    def _read_framing_headers(self, head: bytes) -> Verdict:
        lengths, codings = [], []
        request_line, *lines = head.split(b"\n")
        for line in lines:
            name, colon, value = line.partition(b":")
            if not colon:
                continue
            name, value = name.strip().lower(), value.strip()
            if name == b"content-length":
                lengths.append(value)
            elif name == b"transfer-encoding":
                codings += [coding.strip() for coding in value.lower().split(b",")]
            elif name == b"expect":
                self.expects_continue = value.lower() == b"100-continue" and request_line.rstrip().endswith(b"/1.1")
        if codings:
            if lengths or codings[-1] != b"chunked":  # the parser refuses both
                return Verdict.HAND_OVER
            self._chunked = True
            self._chunk_pos = self.head_end
            return Verdict.NEED_MORE
        if len(lengths) > 1 or (lengths and not _DIGITS.fullmatch(lengths[0])):
            return Verdict.HAND_OVER
        self._content_length = int(lengths[0]) if lengths else 0
        return Verdict.NEED_MORE

    def _body_verdict(self) -> Verdict:
        if self._verdict is not Verdict.NEED_MORE:
            return self._verdict
        if self._chunked:
            return self._scan_chunks()
        if self._content_length > self.max_body:
            return Verdict.BODY_TOO_LARGE
        if len(self.buffer) - self.head_end >= self._content_length:
            return Verdict.COMPLETE
        return Verdict.NEED_MORE

    def _scan_chunks(self) -> Verdict:
        """Walk chunk-size lines and chunk data as far as the buffer goes. Only bytes that have
        arrived count towards the limit, so a handed-over body is already there to be read."""
        while True:
            line_end = self.buffer.find(b"\n", self._chunk_pos, self._chunk_pos + CHUNK_SIZE_LINE_MAX)
            if line_end < 0:
                too_long = len(self.buffer) - self._chunk_pos >= CHUNK_SIZE_LINE_MAX
                return Verdict.HAND_OVER if too_long else Verdict.NEED_MORE
            line = bytes(self.buffer[self._chunk_pos : line_end]).rstrip(b"\r")
            if self._in_trailers:  # after the last chunk: optional trailer fields, then an empty line
                self._chunk_pos = line_end + 1
                if not line:
                    return Verdict.COMPLETE
                continue
            size_text = line.split(b";", 1)[0].strip()
            if not _HEX.fullmatch(size_text):
                return Verdict.HAND_OVER
            size = int(size_text, 16)
            data_start = line_end + 1
            arrived = min(size, len(self.buffer) - data_start)
            if self._chunk_body + arrived > self.max_body:
                return Verdict.BODY_TOO_LARGE
            if size == 0:
                self._in_trailers = True
            elif len(self.buffer) < data_start + size + 2:  # the data and its CRLF
                return Verdict.NEED_MORE  # this size line is read again when more arrives
            self._chunk_body += size
            self._chunk_pos = data_start + (size + 2 if size else 0)
