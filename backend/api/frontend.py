"""The built React app: GET / and its static files from AUTOCOMPLETE_FRONTEND_DIR, with an SPA fallback.

A browser navigating to a client-side route (e.g. /editor, Accept: text/html) gets index.html
so the app's router can take over; anything else that matches no file is a JSON 404, so a
mistyped API path never comes back as a web page. Vite puts content-hashed files under
assets/, which may be cached forever; index.html must be revalidated to pick up a new build.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, current_app, request, send_from_directory
from werkzeug.exceptions import NotFound
from werkzeug.routing import PathConverter

from backend.api.errors import ApiError

bp = Blueprint("frontend", __name__)

# First path segments the API owns: never served from the front end, so that a wrong method
# on an API path is a 405 and an unknown API path a JSON 404.
API_PREFIXES = ("generate", "v1", "health", "metrics", "openapi.json", "docs")
_API_PREFIX_PATTERN = "|".join(p.replace(".", r"\.") for p in API_PREFIXES)


class FrontendPath(PathConverter):
    """A path whose first segment is not one of the API's, in any letter case (/GENERATE is a
    mistyped API path: a JSON 404, not the editor)."""

    regex = rf"(?!(?i:{_API_PREFIX_PATTERN})(?:/|$))[^/].*?"


def init_app(app: Flask) -> None:
    app.url_map.converters["frontend_path"] = FrontendPath
    app.register_blueprint(bp)


def frontend_dir() -> Path:
    return Path(current_app.config["FRONTEND_DIR"])


def index_html():
    if not (frontend_dir() / "index.html").is_file():
        raise ApiError(404, f"the front end is not built (no index.html in {frontend_dir()}); run `make frontend`")
    response = send_from_directory(frontend_dir(), "index.html", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response


# The front end is GET (and HEAD) only: no automatic OPTIONS answering 200 for any path.
@bp.get("/", provide_automatic_options=False)
def index():
    return index_html()


@bp.get("/<frontend_path:path>", provide_automatic_options=False)
def static_or_app(path: str):
    try:
        response = send_from_directory(frontend_dir(), path)
    except NotFound:
        wants_page = "text/html" in request.accept_mimetypes.values()
        client_route = "." not in path.rsplit("/", 1)[-1]  # a missing file has an extension
        if wants_page and client_route:
            return index_html()
        raise
    if path.startswith("assets/"):
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response
