"""Websocket hardening: every subscribe message is rate-limited, connections are capped per
key and per instance, failed logins are throttled, and frames are capped before and after
authentication."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from tests.conftest import make_settings
from tests.integration.live.sockets import (
    FOLLOW,
    closed_with,
    connect,
    init,
    ready,
    still_open,
    subscribe,
)
from tests.live import LiveServer, live_server
from tests.support import ROOT_TOKEN, Api, ProjectHandle, create_project


async def _tenant(server: LiveServer) -> ProjectHandle:
    project = await create_project(server.http_url, Api(server.http_url, ROOT_TOKEN), "hard")
    await project.api.ok('mutation { createUser(input: {userId: "alice"}) { __typename } }')
    return project


async def _answer(socket: websockets.ClientConnection) -> dict[str, object]:
    message: dict[str, object] = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
    return message


@pytest.mark.usefixtures("fresh_rate_window")
async def test_subscriptions_count_against_the_rate_limit(database_url: str) -> None:
    with live_server(make_settings(database_url, rate_limit_per_minute=3)) as server:
        # Request 1: createUser over HTTP; 2: the connection; 3: the first subscription.
        project = await _tenant(server)
        socket = await ready(server.ws_url, project.api_key)
        await subscribe(socket, "allowed")
        await asyncio.sleep(0.3)  # running: nothing to say until a change comes
        await subscribe(socket, "refused")
        refused = await _answer(socket)
        completed = await _answer(socket)
        assert await still_open(socket)  # refused operations do not cost the connection
        await socket.close()
    assert refused["id"] == "refused"
    assert refused["type"] == "next"
    payload = refused["payload"]
    assert isinstance(payload, dict)
    assert payload["data"] is None
    assert payload["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert payload["errors"][0]["extensions"]["retryAfter"] > 0
    assert completed == {"id": "refused", "type": "complete"}


@pytest.mark.usefixtures("fresh_rate_window")
async def test_invalid_documents_count_against_the_rate_limit_too(database_url: str) -> None:
    with live_server(make_settings(database_url, rate_limit_per_minute=3)) as server:
        project = await _tenant(server)  # request 1
        socket = await ready(server.ws_url, project.api_key)  # request 2
        await subscribe(socket, "a", "{ noSuchField }")  # request 3: refused by validation
        first = await _answer(socket)
        await subscribe(socket, "b", "{ noSuchField }")  # request 4: over the limit
        second = await _answer(socket)
        await socket.close()
    assert first["type"] == "error"  # validation ran
    assert second["type"] == "next"  # validation did not run
    payload = second["payload"]
    assert isinstance(payload, dict)
    assert payload["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_connections_per_key_are_capped(database_url: str) -> None:
    with live_server(make_settings(database_url, ws_max_connections_per_key=2)) as server:
        project = await _tenant(server)
        first = await ready(server.ws_url, project.api_key)
        second = await ready(server.ws_url, project.api_key)
        third = await connect(server.ws_url)
        assert await init(third, project.api_key) is None
        refused = await closed_with(third)
        # The root token is no API key: not counted.
        root_socket = await ready(server.ws_url, ROOT_TOKEN)
        await first.close()
        await asyncio.sleep(0.3)  # the server sees the close
        again = await ready(server.ws_url, project.api_key)  # a freed place is free again
        for socket in (second, root_socket, again):
            await socket.close()
    assert refused == (4429, "too many connections for this key")


async def test_connections_per_instance_are_capped_before_authentication(
    database_url: str,
) -> None:
    with live_server(make_settings(database_url, ws_max_connections=2)) as server:
        held = [await connect(server.ws_url), await connect(server.ws_url)]
        extra = await connect(server.ws_url)
        refused = await closed_with(extra)
        for socket in held:
            await socket.close()
    assert refused == (1013, "too many connections on this server")


@pytest.mark.usefixtures("fresh_rate_window")
async def test_failed_websocket_logins_are_throttled_per_address(database_url: str) -> None:
    settings = make_settings(database_url, auth_failures_per_minute=2, redis_url=None)
    with live_server(settings) as server:
        project = await _tenant(server)
        codes = []
        for _ in range(3):
            socket = await connect(server.ws_url)
            await init(socket, "pm_not-a-key")
            codes.append(await closed_with(socket))
        # Throttled: even the right key is not looked up from this address now.
        socket = await connect(server.ws_url)
        await init(socket, project.api_key)
        with_right_key = await closed_with(socket)
    assert [c[0] for c in codes[:2]] == [4403, 4403]
    throttled = (4429, "too many failed authentications from this address")
    assert codes[2] == throttled
    assert with_right_key == throttled


async def test_a_big_connection_init_is_refused_unread(database_url: str) -> None:
    with live_server(make_settings(database_url)) as server:
        project = await _tenant(server)
        socket = await connect(server.ws_url)
        padding = "x" * (64 * 1024)
        await socket.send(
            json.dumps(
                {
                    "type": "connection_init",
                    "payload": {"Authorization": f"Bearer {project.api_key}", "pad": padding},
                }
            )
        )
        code, reason = await closed_with(socket)
    assert code == 4413
    assert "16384" in reason


async def test_frames_after_authentication_are_capped_like_http_bodies(database_url: str) -> None:
    limit = 64 * 1024
    with live_server(make_settings(database_url, max_request_bytes=limit)) as server:
        project = await _tenant(server)
        socket = await ready(server.ws_url, project.api_key)
        # Past the 16 KiB of an unauthenticated frame, within the HTTP cap: runs.
        padded = "{ health { ok } }" + " " * (32 * 1024)
        await subscribe(socket, "within", padded)
        within = await _answer(socket)
        await subscribe(socket, "over", "{ health { ok } }" + " " * limit)
        code, reason = await closed_with(socket)
    assert within["type"] == "next"
    assert code == 4413
    assert str(limit) in reason


async def test_deeply_nested_json_closes_the_socket_with_a_code(database_url: str) -> None:
    with live_server(make_settings(database_url)) as server:
        before = await connect(server.ws_url)
        await before.send("[" * 5000 + "]" * 5000)
        before_auth = await closed_with(before)
        project = await _tenant(server)
        after = await ready(server.ws_url, project.api_key)
        nested = "[" * 100 + "]" * 100
        await after.send(
            '{"id": "1", "type": "subscribe", "payload": {"query": "{ health { ok } }", '
            f'"variables": {{"deep": {nested}}}}}}}'
        )
        after_auth = await closed_with(after)
    assert before_auth == (4400, "JSON nested deeper than 64 levels")
    assert after_auth == (4400, "JSON nested deeper than 64 levels")


async def test_ordinary_subscriptions_still_work(database_url: str) -> None:
    with live_server(make_settings(database_url)) as server:
        project = await _tenant(server)
        socket = await ready(server.ws_url, project.api_key)
        await subscribe(socket, "1", FOLLOW)
        await asyncio.sleep(0.3)
        await project.api.ok(
            'mutation { addProfileEntry(input: {userId: "alice", topic: "t", subTopic: "s",'
            ' content: "c"}) { __typename } }'
        )
        change = await _answer(socket)
        await socket.close()
    assert change["type"] == "next"
