"""What the logs hold: client mistakes on one quiet line, bugs with a traceback and the
request id, probes that log state changes only, and no secrets from query strings."""

from __future__ import annotations

import logging

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from powermemo_gql.app import create_app
from powermemo_gql.core.clock import FakeClock
from powermemo_gql.observability.logs import RequestIdFilter, ScrubQueryStrings, StateChanges
from powermemo_gql.settings import Settings
from tests.support import ProjectHandle


async def test_client_mistakes_are_info_and_bugs_are_errors_with_the_request_id(
    app: Starlette,
    project: ProjectHandle,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.handler.addFilter(RequestIdFilter())
    with caplog.at_level(logging.DEBUG):
        await project.api.post({"query": "{ nope }"})  # validation
        await project.api.post(  # a variable of the wrong type
            {
                "query": "query($n: Int) { users(first: $n) { nodes { id } } }",
                "variables": {"n": "x"},
            }
        )
        await project.api.post({"query": '{ project(id: "x") { id } }'})  # root only: FORBIDDEN
        await project.api.post(
            {"query": "{ viewer { isRoot } }"}, headers={"Authorization": "Bearer pm_wrong"}
        )
    client_mistakes = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert client_mistakes, "the mistakes are logged"
    assert all(r.levelno <= logging.INFO for r in client_mistakes), [
        (r.levelname, r.getMessage()) for r in client_mistakes
    ]
    assert all(r.exc_info is None for r in caplog.records)
    assert not [r for r in caplog.records if r.name == "strawberry.execution"]
    assert any("request error" in r.getMessage() for r in client_mistakes)

    from powermemo_gql.users.service import UserService

    async def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(UserService, "get", explode)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        await project.api.post(
            {"query": '{ user(userId: "u") { id } }'},
            headers={**project.api.headers(), "X-Request-ID": "trace-me"},
        )
    [bug] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert bug.levelno == logging.ERROR
    assert bug.exc_info is not None
    assert getattr(bug, "request_id", None) == "trace-me"
    assert "user" in bug.getMessage()  # where it happened


async def test_the_llm_readiness_probe_logs_once_per_state_change(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # make_settings points the LLM at a closed port: it never answers.
    clock = FakeClock()
    app = create_app(settings, clock=clock)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as client,
    ):
        with caplog.at_level(logging.INFO):
            for _ in range(3):
                clock.advance(11)  # the probe's answer is older than its 10 s
                ready = await client.get("/readyz")
                assert ready.json()["checks"]["llm"] == "down"
    about_llm = [r for r in caplog.records if "LLM endpoint" in r.getMessage()]
    assert len(about_llm) == 1, [r.getMessage() for r in about_llm]
    assert about_llm[0].levelno == logging.WARNING
    assert about_llm[0].exc_info is None
    assert "does not answer: " in about_llm[0].getMessage()  # and why


def test_state_changes_are_logged_once_each(caplog: pytest.LogCaptureFixture) -> None:
    state = StateChanges(logging.getLogger("probe"), "the thing")
    with caplog.at_level(logging.INFO):
        for up in (True, True, False, False, False, True, True):
            state.report(up, "refused")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "the thing does not answer: refused"),
        ("INFO", "the thing answers again"),
    ]


def test_query_strings_are_scrubbed_from_access_lines() -> None:
    # The shapes of uvicorn's lines: the HTTP access line and a websocket's.
    access = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/dashboard?key=pm_secret&token=t0k&flag", "1.1", 200),
        None,
    )
    socket = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5000", "/graphql?token=t0k"),
        None,
    )
    scrub = ScrubQueryStrings()
    assert scrub.filter(access)
    assert scrub.filter(socket)
    assert access.getMessage() == (
        '127.0.0.1:5000 - "GET /dashboard?key=***&token=***&flag=*** HTTP/1.1" 200'
    )
    assert socket.getMessage() == '127.0.0.1:5000 - "WebSocket /graphql?token=***" [accepted]'
    plain = logging.LogRecord("x", logging.INFO, __file__, 1, "did you mean that?", None, None)
    assert scrub.filter(plain)
    assert plain.getMessage() == "did you mean that?"
