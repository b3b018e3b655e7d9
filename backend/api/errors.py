"""JSON error responses for everything that can go wrong, in the service's or OpenAI's shape.

Every failure a client can cause ends here as a small JSON body with a stable `type`, never an
HTML page or a traceback. Paths under /v1 answer in OpenAI's error shape so the official client
raises its usual exception classes. Unexpected exceptions are logged with their traceback and
answered with a bare 500 that reveals nothing about the server.
"""

from __future__ import annotations

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

ERROR_TYPES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    417: "expectation_failed",
    422: "validation",
    429: "overloaded",
    431: "headers_too_large",
    499: "client_closed_request",
    500: "internal",
    501: "not_implemented",
    503: "unavailable",
}

# OpenAI's client maps status codes to exception classes and reads error.type for display.
OPENAI_TYPES = {429: "rate_limit_error", 500: "server_error", 503: "server_error"}


class ApiError(Exception):
    """A request the service refuses; `status` and `type` decide the response."""

    def __init__(self, status: int, message: str, *, field: str | None = None,
                 headers: dict[str, str] | None = None, reason: str | None = None):
        super().__init__(message)
        self.status = status
        self.type = ERROR_TYPES.get(status, "bad_request" if status < 500 else "internal")
        self.message = message
        self.field = field
        self.headers = headers or {}
        # Why a well-formed request was turned away (counted by /metrics), e.g. "queue_full".
        self.reason = reason


class ValidationError(ApiError):
    """A field is missing, of the wrong type, or out of its bound (422)."""

    def __init__(self, field: str, message: str):
        super().__init__(422, message, field=field)


def is_openai_path(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def error_document(error: ApiError, path: str) -> tuple[int, dict]:
    """(status, JSON body) of `error` for a request to `path`: OpenAI's shape under /v1, ours
    elsewhere. Pure, so the gunicorn worker (backend/worker.py) renders the errors it raises
    before Flask sees a request in the same shape."""
    if is_openai_path(path):
        # OpenAI answers invalid parameters with 400 and names them in `param`.
        status = 400 if error.status == 422 else error.status
        body = {"message": error.message, "type": OPENAI_TYPES.get(status, "invalid_request_error"),
                "param": error.field, "code": error.type}
    else:
        status = error.status
        body = {"type": error.type, "message": error.message}
        if error.field is not None:
            body["field"] = error.field
    return status, {"error": body}


def error_response(error: ApiError) -> Response:
    """Render `error` for the current request's API family."""
    if error.reason:
        g.rejection_reason = error.reason
    status, document = error_document(error, request.path)
    response = jsonify(document)
    response.status_code = status
    response.headers.update(error.headers)
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def handle_api_error(error: ApiError):
        return error_response(error)

    @app.errorhandler(HTTPException)
    def handle_http_exception(error: HTTPException):
        status = error.code or 500
        message = error.description or error.name
        if status == 413:
            message = f"request body is larger than the limit of {app.config['MAX_CONTENT_LENGTH']} bytes"
        elif status == 404:
            message = f"no such endpoint: {request.path}"
        elif status == 405:
            allowed = ", ".join(sorted(error.valid_methods or [])) if hasattr(error, "valid_methods") else ""
            message = f"method {request.method} is not allowed on {request.path}; allowed: {allowed}"
        response = error_response(ApiError(status, message))
        # Keep what werkzeug adds for the status, e.g. 405's Allow header.
        for name, value in error.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception):
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(ApiError(500, "internal server error"))
