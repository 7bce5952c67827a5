"""Request ids, structured logs, Prometheus metrics, and readiness that sees the LLM."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from powermemo_gql.app import create_app
from powermemo_gql.observability.logs import JsonFormatter, RequestIdFilter, request_id
from tests.conftest import make_settings
from tests.integration.memory.conftest import memory_responder
from tests.llm_server import ScriptedLLM, running_llm
from tests.support import ROOT_TOKEN, Api, ProjectHandle, create_project


async def _client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def test_request_id_is_echoed_or_made(app: Starlette, project: ProjectHandle) -> None:
    async with await _client(app) as client:
        given = await client.get("/healthz", headers={"X-Request-ID": "req-123"})
        made = await client.get("/healthz")
        odd = await client.get("/healthz", headers={"X-Request-ID": "x" * 100})
    assert given.headers["x-request-id"] == "req-123"
    assert len(made.headers["x-request-id"]) == 32
    assert odd.headers["x-request-id"] != "x" * 100  # too long: replaced, not trusted


async def test_log_lines_carry_the_request_id(
    project: ProjectHandle, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from powermemo_gql.users.service import UserService

    async def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(UserService, "get", explode)
    caplog.handler.addFilter(RequestIdFilter())
    with caplog.at_level(logging.ERROR):
        await project.api.post(
            {"query": '{ user(userId: "u") { id } }'},
            headers={**project.api.headers(), "X-Request-ID": "trace-me"},
        )
    assert any(getattr(r, "request_id", None) == "trace-me" for r in caplog.records)


def test_json_lines_in_production() -> None:
    record = logging.LogRecord("powermemo", logging.WARNING, __file__, 1, "hello %s", ("x",), None)
    token = request_id.set("rid-1")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hello x"
    assert line["level"] == "WARNING"
    assert line["request_id"] == "rid-1"
    assert line["time"].endswith("+00:00")


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with running_llm() as server:
        yield server


async def test_metrics_count_requests_flushes_llm_calls_and_tokens(
    database_url: str, llm: ScriptedLLM
) -> None:
    llm.responder = memory_responder()
    app = create_app(make_settings(database_url, llm_base_url=llm.base_url))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        tenant = await create_project(app, Api(app, ROOT_TOKEN), "metrics")
        await tenant.api.ok('mutation { createUser(input: {userId: "alice"}) { __typename } }')
        await tenant.api.ok(
            'mutation { insertBlob(input: {userId: "alice", blob: {document: {content: "x"}}})'
            " { __typename } }"
        )
        await tenant.api.ok(
            'mutation { flushBuffer(input: {userId: "alice", wait: true}) { __typename } }'
        )
        async with await _client(app) as client:
            text = (await client.get("/metrics")).text
            ready = (await client.get("/readyz")).json()
    assert 'powermemo_http_requests_total{method="POST",path="/graphql",status="200"}' in text
    assert 'powermemo_flushes_total{status="done"} 1.0' in text
    assert 'powermemo_llm_calls_total{outcome="ok",purpose="summarize"} 1.0' in text
    assert 'powermemo_llm_tokens_total{direction="input"} 200.0' in text
    assert "powermemo_http_request_seconds_bucket" in text
    assert "powermemo_buffer_backlog_items" in text
    # The scripted LLM lists its models: readiness sees it.
    assert ready == {"status": "ready", "checks": {"database": "ok", "pubsub": "ok", "llm": "ok"}}
