"""Raw graphql-transport-ws sockets for the hardening tests: what the server closes with."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets

from tests.support import Api, ProjectHandle

ISSUE_KEY = """
mutation($projectId: ID!) {
  createApiKey(input: {projectId: $projectId, name: "socket"}) {
    ... on CreateApiKeyPayload { secret apiKey { id } }
  }
}
"""
REVOKE = """
mutation($id: ID!) {
  revokeApiKey(input: {id: $id}) { __typename }
}
"""
FOLLOW = 'subscription { profileUpdated(userId: "alice") { kind } }'


async def issue_key(root: Api, project: ProjectHandle) -> tuple[str, str]:
    """(id, secret) of a new key of the project."""
    issued = (await root.ok(ISSUE_KEY, projectId=project.id))["createApiKey"]
    return issued["apiKey"]["id"], issued["secret"]


async def connect(ws_url: str) -> Any:
    return await websockets.connect(
        ws_url,
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        max_size=None,
    )


async def init(socket: Any, token: str) -> dict[str, Any] | None:
    """Send connection_init; the server's answer, or None when it closed instead."""
    await socket.send(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    )
    try:
        answer: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
    except websockets.ConnectionClosed:
        return None
    return answer


async def ready(ws_url: str, token: str) -> Any:
    socket = await connect(ws_url)
    answer = await init(socket, token)
    assert answer is not None
    assert answer["type"] == "connection_ack", answer
    return socket


async def subscribe(socket: Any, operation_id: str, query: str = FOLLOW) -> None:
    await socket.send(
        json.dumps({"id": operation_id, "type": "subscribe", "payload": {"query": query}})
    )


async def closed_with(socket: Any) -> tuple[int, str]:
    """(code, reason) the server closed with; fails if it keeps the socket open."""
    try:
        async with asyncio.timeout(10):
            while True:
                await socket.recv()
    except websockets.ConnectionClosed as closed:
        if closed.rcvd is None:
            return -1, ""
        return closed.rcvd.code, closed.rcvd.reason
    except TimeoutError as exc:
        raise AssertionError("the server kept the socket open") from exc


async def still_open(socket: Any) -> bool:
    """A ping answered with a pong."""
    await socket.send(json.dumps({"type": "ping"}))
    try:
        answer = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
    except websockets.ConnectionClosed:
        return False
    return bool(answer["type"] == "pong")
