"""Shared by the fault tests: an app on given settings, HTTP calls, URLs through a proxy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from powermemo_gql.app import create_app
from tests.conftest import make_settings

T = TypeVar("T")


@asynccontextmanager
async def running_app(database_url: str, **overrides: Any) -> AsyncIterator[Starlette]:
    app = create_app(make_settings(database_url, **overrides))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        yield app


async def get(app: Starlette, path: str) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        return await client.get(path)


def through(url: str, port: int) -> str:
    """`url` (SQLAlchemy or Redis) with its host and port replaced by the proxy's."""
    return make_url(url).set(host="127.0.0.1", port=port).render_as_string(hide_password=False)


def target_of(url: str, default_port: int) -> tuple[str, int]:
    parsed = make_url(url)
    return parsed.host or "127.0.0.1", parsed.port or default_port


async def timed(call: Awaitable[T], limit: float = 60.0) -> tuple[T, float]:
    """The call's result and its duration; `limit` only keeps a regression from hanging
    the suite (the test asserts the real bound on the duration)."""
    started = time.perf_counter()
    async with asyncio.timeout(limit):
        result = await call
    return result, time.perf_counter() - started


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 30.0) -> None:
    """Wait for a condition rather than sleep a guessed time."""
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.1)
