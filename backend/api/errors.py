"""JSON error responses for everything that can go wrong, in the service's or OpenAI's shape.

Every failure a client can cause ends here as a small JSON body with a stable `type`, never an
HTML page or a traceback. Each API family owns its shape: the app answers in the service's
shape, and a blueprint that registers its own (openai_routes.py: OpenAI's, so the official
client raises its usual exception classes) answers in that one, for its views and for requests
under its url_prefix that reach no view. Unexpected exceptions are logged with their traceback
and answered with a bare 500 that reveals nothing about the server.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
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
SHAPES_KEY = "error_shapes"  # app.extensions: url_prefix -> ErrorDocument, filled by blueprints


class ApiError(Exception):
    """A request the service refuses; `status` and `type` decide the response."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        reason: str | None = None,
    ):
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


# (status, JSON body) of an ApiError in one API family's shape.
ErrorDocument = Callable[[ApiError], tuple[int, dict]]


def service_document(error: ApiError) -> tuple[int, dict]:
    """The service's own shape: {"error": {"type", "message", "field"?}}."""
    body = {"type": error.type, "message": error.message}
    if error.field is not None:
        body["field"] = error.field
    return error.status, {"error": body}


def openai_document(error: ApiError) -> tuple[int, dict]:
    """OpenAI's shape, so its client raises its usual exception classes; OpenAI answers invalid
    parameters with 400 and names them in `param`."""
    status = 400 if error.status == 422 else error.status
    body = {
        "message": error.message,
        "type": OPENAI_TYPES.get(status, "invalid_request_error"),
        "param": error.field,
        "code": error.type,
    }
    return status, {"error": body}


def error_document(error: ApiError, path: str, app: Flask | None) -> tuple[int, dict]:
    """(status, JSON body) of `error` for a request to `path` that reached no view: a 404, a 405,
    or a request the gunicorn worker (backend/worker.py) refused before Flask saw it. The shape
    is that of the blueprint whose url_prefix holds `path` (as it registered with
    register_error_handlers), else the service's own."""
    shapes: dict[str, ErrorDocument] = app.extensions.get(SHAPES_KEY, {}) if app is not None else {}
    owners = [prefix for prefix in shapes if path == prefix or path.startswith(prefix + "/")]
    document = shapes[max(owners, key=len)] if owners else service_document
    return document(error)


def error_response(error: ApiError, document: ErrorDocument) -> Response:
    """Render `error` in `document`'s shape, keeping why it was refused for /metrics."""
    if error.reason:
        g.rejection_reason = error.reason
    status, body = document(error)
    response = jsonify(body)
    response.status_code = status
    response.headers.update(error.headers)
    return response


def http_error(error: HTTPException) -> ApiError:
    """werkzeug's exception as an ApiError whose message says what to change."""
    status = error.code or 500
    message = error.description or error.name
    if status == 413:
        message = f"request body is larger than the limit of {current_app.config['MAX_CONTENT_LENGTH']} bytes"
    elif status == 404:
        message = f"no such endpoint: {request.path}"
    elif status == 405:
        allowed = ", ".join(sorted(error.valid_methods or [])) if hasattr(error, "valid_methods") else ""
        message = f"method {request.method} is not allowed on {request.path}; allowed: {allowed}"
    return ApiError(status, message)


def register_error_handlers(target: Flask | Blueprint, document: ErrorDocument | None = None) -> None:
    """Answer every error of `target`'s views as JSON in `document`'s shape. On the app (no
    `document`), errors outside any blueprint that registered here take the shape of the
    blueprint whose url_prefix holds the path (error_document), else the service's own."""

    def render(error: ApiError) -> Response:
        if document is not None:
            return error_response(error, document)
        return error_response(error, lambda e: error_document(e, request.path, current_app))

    def handle_http_exception(error: HTTPException) -> Response:
        response = render(http_error(error))
        # Keep what werkzeug adds for the status, e.g. 405's Allow header.
        for name, value in error.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    def handle_unexpected(error: Exception) -> Response:
        current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return render(ApiError(500, "internal server error"))

    target.register_error_handler(ApiError, render)
    target.register_error_handler(HTTPException, handle_http_exception)
    target.register_error_handler(Exception, handle_unexpected)
    if isinstance(target, Blueprint) and document is not None:
        target.record_once(
            lambda state: state.app.extensions.setdefault(SHAPES_KEY, {}).__setitem__(state.url_prefix or "", document)
        )
