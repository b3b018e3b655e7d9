"""Security headers on every response, and CORS, closed unless AUTOCOMPLETE_CORS_ORIGINS lists origins.

The Content-Security-Policy lets the page load only the app's own assets; style-src allows
inline styles because MUI (emotion) injects <style> tags at run time. CORS is the small subset
a browser needs: an allowed Origin is echoed back, and a preflight (OPTIONS with
Access-Control-Request-Method) is answered with the methods and headers the API accepts.
"""

from __future__ import annotations

from flask import Flask, Response, request

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self' data:; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cross-Origin-Opener-Policy": "same-origin",
}
CORS_METHODS = "GET, POST, OPTIONS"
CORS_HEADERS = "Content-Type, Authorization"
PREFLIGHT_MAX_AGE = "600"


def init_app(app: Flask) -> None:
    allowed = set(app.config["CORS_ORIGINS"])

    @app.after_request
    def add_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if allowed:
            origin = request.headers.get("Origin", "").rstrip("/")
            response.vary.add("Origin")  # the answer depends on the Origin header: caches must key on it
            if origin and ("*" in allowed or origin in allowed):
                response.headers["Access-Control-Allow-Origin"] = origin
                if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
                    response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
                    response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
                    response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
                else:
                    response.headers["Access-Control-Expose-Headers"] = "Retry-After"
        return response
