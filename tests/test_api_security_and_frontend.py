"""What the API answers around generation: JSON errors for unknown routes and wrong methods and a
bare 500 for unexpected exceptions, security headers on every response, CORS for listed origins
only, and serving the front-end build with its single-page-app fallback."""

from __future__ import annotations

import logging

import pytest

PROMPT = "We propose a method to"


# --- errors for routes and methods, and the catch-all ---


@pytest.mark.parametrize(
    "method, path, status, allowed",
    [
        ("GET", "/nope", 404, None),
        ("GET", "/generate/nope", 404, None),
        ("GET", "/generate", 405, "OPTIONS, POST"),
        ("PUT", "/generate", 405, "OPTIONS, POST"),
        ("DELETE", "/generate/stream", 405, "OPTIONS, POST"),
        ("POST", "/health", 405, "GET, HEAD, OPTIONS"),
        ("POST", "/metrics", 405, "GET, HEAD, OPTIONS"),
        ("GET", "/v1/completions", 405, "OPTIONS, POST"),
        ("PATCH", "/v1/models", 405, "GET, HEAD, OPTIONS"),
    ],
)
def test_unknown_routes_and_wrong_methods_are_json(client, method, path, status, allowed):
    response = client.open(path, method=method)
    assert response.status_code == status and response.is_json
    error = response.get_json()["error"]
    if path.startswith("/v1"):
        assert error["code"] == ("not_found" if status == 404 else "method_not_allowed")
    else:
        assert error["type"] == ("not_found" if status == 404 else "method_not_allowed")
    if allowed:
        assert set(response.headers["Allow"].split(", ")) == set(allowed.split(", "))
        assert method in error["message"]


@pytest.fixture
def app_with_a_second_openai_family(make_app):
    """The app plus a blueprint at /elsewhere that chose OpenAI's error shape, as openai_routes does."""
    from flask import Blueprint

    from backend.api.errors import ApiError, openai_document, register_error_handlers

    blueprint = Blueprint("elsewhere", __name__, url_prefix="/elsewhere")
    register_error_handlers(blueprint, openai_document)

    @blueprint.get("/refuse")
    def refuse():
        raise ApiError(422, "n must be >= 1 and <= 4, got 9", field="n")

    app = make_app()
    app.register_blueprint(blueprint)
    return app


@pytest.mark.parametrize(
    "method, path, status, shape",
    [
        ("GET", "/elsewhere/refuse", 400, "openai"),  # raised in the blueprint's view
        ("GET", "/elsewhere/nope", 404, "openai"),  # under its prefix, reaching no view
        ("POST", "/elsewhere/refuse", 405, "openai"),
        ("GET", "/v1/nope", 404, "openai"),
        ("GET", "/elsewhere-not", 404, "service"),  # a prefix is a whole path segment
        ("GET", "/nope", 404, "service"),
    ],
)
def test_a_blueprint_owns_the_shape_of_its_errors(app_with_a_second_openai_family, method, path, status, shape):
    response = app_with_a_second_openai_family.test_client().open(path, method=method)
    assert response.status_code == status
    error = response.get_json()["error"]
    assert set(error) == ({"message", "type", "param", "code"} if shape == "openai" else {"message", "type"})


@pytest.mark.parametrize(
    "path, shape",
    [
        ("/elsewhere/x", "openai"),
        ("/v1/completions", "openai"),
        ("/v1", "openai"),
        ("/generate", "service"),
        ("", "service"),
    ],
)
def test_errors_before_flask_take_the_shape_of_the_family_that_owns_the_path(
    app_with_a_second_openai_family, path, shape
):
    # What backend/worker.py sends for a request gunicorn refused before the app saw it.
    from backend.api.errors import ApiError, error_document

    status, document = error_document(
        ApiError(414, "the request line is too long"), path, app_with_a_second_openai_family
    )
    assert status == 414
    expected = (
        {
            "message": "the request line is too long",
            "type": "invalid_request_error",
            "param": None,
            "code": "uri_too_long",
        }
        if shape == "openai"
        else {"type": "uri_too_long", "message": "the request line is too long"}
    )
    assert document == {"error": expected}


def test_unexpected_exception_is_a_bare_json_500(app, caplog):
    def explode():
        raise RuntimeError("secret internal detail")

    app.add_url_rule("/explode", view_func=explode)
    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/explode")
    assert response.status_code == 500
    assert response.get_json() == {"error": {"type": "internal", "message": "internal server error"}}
    assert "secret" not in response.get_data(as_text=True)
    assert any("secret internal detail" in (r.exc_text or "") for r in caplog.records)


# --- security headers and CORS ---


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("GET", "/health", None),
        ("GET", "/docs", None),
        ("GET", "/nope", None),
        ("POST", "/generate", {"text": PROMPT, "max_new_tokens": 1}),
        ("POST", "/generate", {"text": ""}),
        ("POST", "/generate/stream", {"text": PROMPT, "max_new_tokens": 1}),
    ],
)
def test_security_headers_on_every_response(client, method, path, body):
    with client.open(path, method=method, json=body) as response:
        headers = response.headers
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"
        csp = headers["Content-Security-Policy"]
        for directive in (
            "default-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ):
            assert directive in csp
        assert "Access-Control-Allow-Origin" not in headers  # CORS is closed by default


@pytest.mark.parametrize(
    "origins, origin, allowed",
    [
        ([], "http://localhost:5173", False),
        (["http://localhost:5173"], "http://localhost:5173", True),
        (["http://localhost:5173"], "http://evil.example", False),
        (["https://a.example", "https://b.example"], "https://b.example", True),
        (["*"], "http://anything.example", True),
    ],
)
def test_cors_only_for_listed_origins(make_app, origins, origin, allowed):
    client = make_app(CORS_ORIGINS=origins).test_client()
    response = client.post("/generate", json={"text": PROMPT, "max_new_tokens": 1}, headers={"Origin": origin})
    assert response.status_code == 200
    assert response.headers.get("Access-Control-Allow-Origin") == (origin if allowed else None)
    preflight = client.options(
        "/generate",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    if allowed:
        assert preflight.headers["Access-Control-Allow-Origin"] == origin
        assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
        assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]
        assert "Origin" in preflight.headers["Vary"]
    else:
        assert "Access-Control-Allow-Origin" not in preflight.headers


# --- the front end ---


@pytest.fixture
def frontend_client(make_app, tmp_path):
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><div id=root></div>")
    (dist / "assets" / "index-3f2a.js").write_text("console.log('app')")
    (tmp_path / "secret.txt").write_text("not for the web")
    return make_app(FRONTEND_DIR=str(dist)).test_client()


HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


@pytest.mark.parametrize(
    "path, headers, status, expect",
    [
        ("/", {}, 200, "index"),
        ("/assets/index-3f2a.js", {}, 200, "asset"),
        ("/editor", HTML, 200, "index"),  # a client-side route, navigated to by a browser
        ("/papers/42/edit", HTML, 200, "index"),
        ("/editor", {"Accept": "application/json"}, 404, "json"),
        ("/assets/missing.js", HTML, 404, "json"),
        ("/v1/unknown", HTML, 404, "json"),
        ("/generate/unknown", HTML, 404, "json"),
        ("/../secret.txt", HTML, 404, "json"),
        ("/%2e%2e/secret.txt", {}, 404, "json"),
    ],
)
def test_frontend_files_and_spa_fallback(frontend_client, path, headers, status, expect):
    response = frontend_client.get(path, headers=headers)
    assert response.status_code == status
    body = response.get_data(as_text=True)
    assert "not for the web" not in body
    if expect == "index":
        assert "<div id=root>" in body and response.headers["Cache-Control"] == "no-cache"
    elif expect == "asset":
        assert body == "console.log('app')" and "immutable" in response.headers["Cache-Control"]
    else:
        error = response.get_json()["error"]
        assert (error["code"] if path.startswith("/v1") else error["type"]) == "not_found"


def test_root_without_a_build_says_how_to_build(client):
    response = client.get("/")
    assert response.status_code == 404 and "make frontend" in response.get_json()["error"]["message"]
