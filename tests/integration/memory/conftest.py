from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from asgi_lifespan import LifespanManager

from powermemo_gql.app import create_app
from powermemo_gql.core.clock import FakeClock
from powermemo_gql.settings import Settings
from tests.conftest import make_settings
from tests.llm_server import Reply, ScriptedLLM, json_reply, running_llm
from tests.support import ROOT_TOKEN, Api, create_project


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with running_llm() as server:
        yield server


def memory_settings(database_url: str, llm: ScriptedLLM, **overrides: Any) -> Settings:
    """Settings of this package's apps: they talk to the scripted LLM."""
    values: dict[str, Any] = {
        "llm_base_url": llm.base_url,
        "llm_max_retries": 1,
        "max_buffer_tokens": 100_000,
        "flush_lease_seconds": 5,
        # Tests start flushes themselves; a test of the background paths turns this on.
        "background_flushes": False,
    }
    return make_settings(database_url, **(values | overrides))


@pytest.fixture
def settings(database_url: str, llm: ScriptedLLM, request: pytest.FixtureRequest) -> Settings:
    # Overrides the suite's settings; a test marked `settings(name=value, ...)` changes some.
    marker = request.node.get_closest_marker("settings")
    return memory_settings(database_url, llm, **(marker.kwargs if marker else {}))


AppFactory = Callable[..., AbstractAsyncContextManager[Api]]


@pytest.fixture
def make_app(database_url: str, llm: ScriptedLLM) -> AppFactory:
    """An app with these settings overridden, and the API of a new project in it."""

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Api]:
        app = create_app(memory_settings(database_url, llm, **overrides))
        async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
            project = await create_project(app, Api(app, ROOT_TOKEN), "memory")
            yield project.api

    return start


def memory_responder(
    summary: str = "Alice teaches chemistry in Lyon.",
    facts: list[dict[str, str]] | None = None,
    decisions: list[dict[str, Any]] | None = None,
    tags: list[dict[str, str]] | None = None,
) -> Callable[[dict[str, Any]], Reply]:
    """Answers each pipeline step by the purpose the client names in its request."""
    answers = {
        "summarize": {"summary": summary},
        "extract": {
            "facts": facts
            if facts is not None
            else [
                {"topic": "work", "sub_topic": "title", "content": "chemistry teacher"},
                {"topic": "contact_info", "sub_topic": "city", "content": "Lyon"},
            ]
        },
        "merge": {"decisions": decisions or []},
        "tag_event": {"tags": tags or []},
    }

    def respond(request: dict[str, Any]) -> Reply:
        purpose = request["headers"].get("x-powermemo-purpose", "")
        return json_reply(answers[purpose], prompt_tokens=100, completion_tokens=20)

    return respond


async def scheduler_asleep(clock: FakeClock) -> None:
    """Wait until the flush scheduler sleeps on the fake clock, so an advance wakes it."""
    for _ in range(1000):  # 10 s: CI machines can be slow
        if clock.sleeping:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the scheduler never went to sleep")
