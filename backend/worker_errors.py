"""The HTTP responses the gunicorn worker (worker.py) writes itself, for requests Flask never sees.

A request gunicorn cannot parse (a malformed request line or header, a header or URL over
gunicorn's limits), or one the worker's event loop refuses (a head over MAX_HEAD_BYTES, a
request not complete in time), is answered here in the API's JSON error shape, not gunicorn's
HTML: the shape of the API family that owns the path (backend/api/errors.py), OpenAI's under
/v1, with `Connection: close` and the same security headers as every other response.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from flask import Flask
from gunicorn.http import errors as http_errors

from backend.api.errors import ApiError, error_document
from backend.api.security import SECURITY_HEADERS

SERVER_NAME = "abstract-autocomplete"  # the Server header of these responses and (worker.py sets it) gunicorn's
STATUS_OF = {  # gunicorn's parse errors that are not a plain 400
    http_errors.LimitRequestLine: 414,
    http_errors.LimitRequestHeaders: 431,
    http_errors.ExpectationFailed: 417,
    http_errors.UnsupportedTransferCoding: 501,
    http_errors.ForbiddenProxyRequest: 403,
}
MESSAGE_OF = {
    414: "the request line (method and URL) is too long",
    431: "the request has too many header fields, or one that is too long",
    417: "only 'Expect: 100-continue' is supported",
    501: "the request's transfer coding is not supported (only chunked)",
    403: "request refused",
}


def error_bytes(status: int, message: str, path: str, app: Flask | None) -> bytes:
    """A whole HTTP/1.1 response carrying the API's JSON error document, in the shape of the API
    family that owns `path` in `app` (OpenAI's under /v1)."""
    status, document = error_document(ApiError(status, message), path, app)
    body = json.dumps(document).encode()
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    lines = [
        f"HTTP/1.1 {status} {phrase}",
        f"Server: {SERVER_NAME}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in SECURITY_HEADERS.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def request_path(head: bytes) -> str:
    """The path of a request line such as b"POST /v1/completions HTTP/1.1" ("" if there is none)."""
    parts = head.split(b"\n", 1)[0].split()
    return parts[1].split(b"?", 1)[0].decode("latin-1") if len(parts) >= 2 else ""


def parse_error_response(exc: Exception, path: str, app: Flask | None) -> tuple[int, bytes]:
    """(status, response bytes) for an exception gunicorn raised while parsing a request."""
    if not isinstance(exc, http_errors.ParseException) or isinstance(
        exc,
        (http_errors.ConfigurationProblem, http_errors.InvalidResponseHeader, http_errors.InvalidResponseHeaderName),
    ):
        return 500, error_bytes(500, "internal server error", path, app)
    status = next((code for kind, code in STATUS_OF.items() if isinstance(exc, kind)), 400)
    detail = str(exc)
    detail = detail if len(detail) <= 120 else detail[:120] + "..."  # never echo a 9 KB URL back
    message = MESSAGE_OF.get(status, "malformed HTTP request")
    return status, error_bytes(status, f"{message} ({detail})" if detail else message, path, app)
