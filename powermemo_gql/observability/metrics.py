"""Prometheus metrics, served at /metrics."""

from __future__ import annotations

import hmac
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from powermemo_gql.observability.gc_pauses import BUCKETS
from powermemo_gql.projects.auth import bearer_token
from powermemo_gql.settings import Settings


class Metrics:
    """One registry per app, so that several apps in one process (tests) do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "powermemo_http_requests",
            "HTTP requests answered.",
            ["method", "path", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "powermemo_http_request_seconds",
            "Time to answer an HTTP request.",
            ["path"],
            registry=self.registry,
        )
        self.flushes = Counter(
            "powermemo_flushes", "Flushes finished.", ["status"], registry=self.registry
        )
        self.llm_calls = Counter(
            "powermemo_llm_calls", "LLM requests.", ["purpose", "outcome"], registry=self.registry
        )
        self.llm_tokens = Counter(
            "powermemo_llm_tokens", "LLM tokens.", ["direction"], registry=self.registry
        )
        self.embedding_calls = Counter(
            "powermemo_embedding_calls",
            "Embedding requests (one per batch of texts).",
            ["purpose", "outcome"],
            registry=self.registry,
        )
        self.embedding_tokens = Counter(
            "powermemo_embedding_tokens",
            "Input tokens of embedding requests, as the provider counted them.",
            registry=self.registry,
        )
        self.buffer_backlog = Gauge(
            "powermemo_buffer_backlog_items",
            "Buffer items waiting for a flush (idle), as of the last scheduler pass.",
            registry=self.registry,
        )

        self.subscription_streams = Gauge(
            "powermemo_subscription_streams",
            "Shared subscription executions running on this instance.",
            registry=self.registry,
        )
        self.subscription_followers = Gauge(
            "powermemo_subscription_followers",
            "Subscriptions following a shared execution on this instance.",
            registry=self.registry,
        )
        self.subscription_results = Counter(
            "powermemo_subscription_results",
            "Results shared subscriptions executed and encoded, once for all their followers.",
            registry=self.registry,
        )

        self.gc_pauses = Histogram(
            "powermemo_gc_pause_seconds",
            "Garbage collections, by generation, and how long each stopped the process.",
            ["generation"],
            buckets=BUCKETS,
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def metrics_authorized(settings: Settings, authorization: str | None) -> bool:
    """Open when no metrics_token is set; otherwise only `Bearer <metrics_token>` (the
    counts cover every tenant)."""
    if settings.metrics_token is None:
        return True
    token = bearer_token(authorization)
    expected = settings.metrics_token.get_secret_value()
    return token is not None and hmac.compare_digest(token.encode(), expected.encode())


# Paths worth a label of their own; anything else is "other" (no unbounded label values).
_KNOWN_PATHS = frozenset({"/graphql", "/healthz", "/readyz", "/metrics", "/dashboard", "/"})


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"] if scope["path"] in _KNOWN_PATHS else "other"
        status = 500
        started = time.perf_counter()

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:
            self.metrics.requests.labels(scope["method"], path, str(status)).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - started)
