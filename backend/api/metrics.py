"""Prometheus metrics: one registry per app, served at GET /metrics.

A registry per app (not prometheus_client's global one) lets tests build many apps in one
process. Under gunicorn, gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR, prometheus_client then
keeps every value in per-process files, and /metrics sums all live workers, so a scrape that
lands on any worker sees the whole server.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

if TYPE_CHECKING:  # no engine (onnxruntime) import for a module the metrics setup may load early
    from backend.engine.schema import GenerationResult

bp = Blueprint("metrics", __name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
TOKEN_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1)


def multiprocess_mode() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "autocomplete_http_requests",
            "HTTP requests by endpoint, method and status.",
            ["endpoint", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "autocomplete_http_request_duration_seconds",
            "Time from request to the last byte of the response (streams included).",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.time_per_token = Histogram(
            "autocomplete_time_per_token_seconds",
            "Mean decoding time per generated token, one observation per generation.",
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter("autocomplete_prompt_tokens", "Prompt tokens read.", registry=r)
        self.cached_prompt_tokens = Counter(
            "autocomplete_prompt_tokens_cached",
            "Prompt tokens whose KV cache was reused from a recent prompt instead of computed again.",
            registry=r,
        )
        self.tokens = Counter("autocomplete_generated_tokens", "Tokens generated (all completions).", registry=r)
        # livesum: in multiprocess mode, the sum over live workers (a dead worker's count goes away).
        self.in_flight = Gauge(
            "autocomplete_generations_in_flight", "Generations running now.", registry=r, multiprocess_mode="livesum"
        )
        self.queued = Gauge(
            "autocomplete_generations_queued",
            "Requests waiting for a generation slot.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.rejections = Counter(
            "autocomplete_rejections",
            "Requests turned away by reason (queue_full, queue_timeout, model_unavailable).",
            ["reason"],
            registry=r,
        )
        self.cancelled = Counter(
            "autocomplete_streams_cancelled",
            "Streams whose client went away before the generation finished.",
            registry=r,
        )

    def admission_changed(self, active: int, waiting: int) -> None:
        self.in_flight.set(active)
        self.queued.set(waiting)

    def generation_finished(self, result: GenerationResult) -> None:
        self.prompt_tokens.inc(result.prompt_tokens)
        self.cached_prompt_tokens.inc(result.cached_prompt_tokens)
        self.tokens.inc(result.completion_tokens)
        if result.completion_tokens:
            self.time_per_token.observe(result.timings["per_token_ms"] / 1000)

    def exposition(self) -> bytes:
        if multiprocess_mode():
            merged = CollectorRegistry()
            MultiProcessCollector(merged)
            return generate_latest(merged)
        return generate_latest(self.registry)


def endpoint_label() -> str:
    # The route pattern, not the path, so arbitrary 404 paths cannot blow up the label set.
    return request.url_rule.rule if request.url_rule is not None else "unmatched"


def init_app(app: Flask) -> ServiceMetrics:
    metrics = ServiceMetrics()
    app.extensions["metrics"] = metrics

    @app.before_request
    def start_timer():
        g.request_started = time.perf_counter()

    @app.after_request
    def count_request(response: Response) -> Response:
        started = g.get("request_started", time.perf_counter())
        endpoint, method, status = endpoint_label(), request.method, str(response.status_code)
        reason = g.get("rejection_reason")
        if reason:
            metrics.rejections.labels(reason).inc()
        # Counted now, before the first byte goes out, so a client that has its answer can rely on
        # /metrics including it (counting on close raced with a client's next request).
        metrics.requests.labels(endpoint, method, status).inc()

        def record() -> None:  # on close: a streamed response is only done when its last byte is sent
            metrics.latency.labels(endpoint).observe(time.perf_counter() - started)

        response.call_on_close(record)
        return response

    app.register_blueprint(bp)
    return metrics


@bp.get("/metrics")
def metrics_text():
    body = current_app.extensions["metrics"].exposition()
    return Response(body, content_type=CONTENT_TYPE_LATEST)
