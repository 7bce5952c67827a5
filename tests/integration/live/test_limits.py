"""Websocket limits and shutdown: init timeout, subscriptions per connection, 1012 on restart."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

from tests.conftest import make_settings
from tests.live import LiveServer, live_server
from tests.support import ROOT_TOKEN, Api, create_project

SUBSCRIBE = 'subscription { profileUpdated(userId: "alice") { kind } }'


async def _connect(server: LiveServer) -> Any:
    return await websockets.connect(server.ws_url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]


async def _close_code(socket: Any) -> int:
    try:
        for _ in range(10):
            await asyncio.wait_for(socket.recv(), timeout=10)
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else -1
    raise AssertionError("the server did not close the socket")


async def _ready(server: LiveServer) -> tuple[Any, str]:
    project = await create_project(server.http_url, Api(server.http_url, ROOT_TOKEN), "limits")
    await project.api.ok('mutation { createUser(input: {userId: "alice"}) { __typename } }')
    socket = await _connect(server)
    await socket.send(
        json.dumps(
            {"type": "connection_init", "payload": {"Authorization": f"Bearer {project.api_key}"}}
        )
    )
    assert json.loads(await socket.recv())["type"] == "connection_ack"
    return socket, project.api_key


async def _subscribe(socket: Any, operation_id: str) -> None:
    await socket.send(
        json.dumps({"id": operation_id, "type": "subscribe", "payload": {"query": SUBSCRIBE}})
    )


async def test_connection_init_must_come_in_time(database_url: str) -> None:
    with live_server(make_settings(database_url, ws_connection_init_timeout=0.3)) as server:
        socket = await _connect(server)
        assert await _close_code(socket) == 4408


async def test_subscriptions_per_connection_are_limited(database_url: str) -> None:
    with live_server(make_settings(database_url, ws_max_subscriptions=1)) as server:
        socket, _key = await _ready(server)
        await _subscribe(socket, "1")
        await _subscribe(socket, "2")
        message = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
        await socket.close()
    assert message["id"] == "2"
    assert message["type"] == "error"
    assert "limit" in message["payload"][0]["message"].lower()


async def test_shutdown_closes_sockets_with_1012(database_url: str) -> None:
    with live_server(make_settings(database_url)) as server:
        socket, _key = await _ready(server)
        await _subscribe(socket, "1")
        await asyncio.sleep(0.3)  # the subscription is running
        server.server.should_exit = True
        code = await _close_code(socket)
    # 1012 "service restart": clients reconnect (with since:) and miss nothing.
    assert code == 1012


async def test_legacy_graphql_ws_protocol_is_refused(database_url: str) -> None:
    with live_server(make_settings(database_url)) as server:
        socket = await websockets.connect(server.ws_url, subprotocols=["graphql-ws"])  # type: ignore[list-item]
        assert socket.subprotocol is None  # not accepted...
        code = await _close_code(socket)
    assert code == 4406  # ...and closed: "Subprotocol not acceptable"


@pytest.mark.usefixtures("fresh_rate_window")
async def test_websocket_operations_count_against_the_rate_limit(database_url: str) -> None:
    with live_server(make_settings(database_url, rate_limit_per_minute=4)) as server:
        # Request 1: createUser over HTTP; request 2: the connection itself.
        socket, key = await _ready(server)
        answers = []
        for n in range(3):  # requests 3, 4 and 5
            await socket.send(
                json.dumps(
                    {"id": str(n), "type": "subscribe", "payload": {"query": "{ health { ok } }"}}
                )
            )
            answers.append(json.loads(await asyncio.wait_for(socket.recv(), timeout=10)))
            assert (
                json.loads(await asyncio.wait_for(socket.recv(), timeout=10))["type"] == "complete"
            )
        await socket.close()
        refused = await _connect(server)
        await refused.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}})
        )
        code = await _close_code(refused)
    assert [a["payload"].get("data") for a in answers[:2]] == [{"health": {"ok": True}}] * 2
    assert answers[2]["payload"]["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert code == 4403  # a new connection over the limit is refused
