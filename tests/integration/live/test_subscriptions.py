"""profileUpdated over graphql-transport-ws, against a real server on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import websockets
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from tests.integration.memory.conftest import memory_responder
from tests.live import LiveServer, subscribe
from tests.llm_server import Reply, ScriptedLLM
from tests.support import ROOT_TOKEN, SCHEMA_SDL, ProjectHandle

SUBSCRIBE = """
subscription($userId: ID!, $since: String, $kinds: [ChangeKind!]) {
  profileUpdated(userId: $userId, since: $since, kinds: $kinds) {
    cursor kind topic subTopic oldValue newValue source flushId eventId error
  }
}
"""
ADD = """
mutation($sub: String!, $content: String!) {
  addProfileEntry(input: {userId: "alice", topic: "work", subTopic: $sub, content: $content}) {
    ... on AddProfileEntryPayload { entry { id } }
  }
}
"""
UPDATE = """
mutation($id: ID!, $content: String!) {
  updateProfileEntry(input: {id: $id, content: $content}) { __typename }
}
"""
DELETE = "mutation($id: ID!) { deleteProfileEntry(input: {id: $id}) { __typename } }"
CHANGES = """
query($after: String) {
  user(userId: "alice") {
    changes(first: 10, after: $after) {
      nodes { cursor kind subTopic oldValue newValue }
      pageInfo { hasNextPage }
    }
  }
}
"""
INSERT_CHAT = """
mutation {
  insertBlob(input: {userId: "alice", blob: {chat: {messages: [
    {role: USER, content: "I teach chemistry in Lyon."}
  ]}}}) { __typename }
}
"""
FLUSH = 'mutation { flushBuffer(input: {userId: "alice", wait: true}) { __typename } }'


@asynccontextmanager
async def _subscription(
    live: LiveServer, token: str, **variables: Any
) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
    async with subscribe(live.ws_url, token, SUBSCRIBE, userId="alice", **variables) as results:
        yield results


async def _next(changes: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    return await asyncio.wait_for(anext(changes), timeout=10)


async def _add(tenant: ProjectHandle, sub: str, content: str) -> str:
    data = await tenant.api.ok(ADD, sub=sub, content=content)
    entry_id: str = data["addProfileEntry"]["entry"]["id"]
    return entry_id


async def test_manual_edits_arrive_live_with_old_and_new_values(
    live: LiveServer, tenant: ProjectHandle
) -> None:
    async with _subscription(live, tenant.api_key) as changes:
        entry_id = await _add(tenant, "title", "teacher")
        added = await _next(changes)
        await tenant.api.ok(UPDATE, id=entry_id, content="chemistry teacher")
        updated = await _next(changes)
        await tenant.api.ok(DELETE, id=entry_id)
        deleted = await _next(changes)
    assert (added["kind"], added["oldValue"], added["newValue"]) == ("ENTRY_ADDED", None, "teacher")
    assert (updated["kind"], updated["oldValue"], updated["newValue"]) == (
        "ENTRY_UPDATED",
        "teacher",
        "chemistry teacher",
    )
    assert (deleted["kind"], deleted["oldValue"], deleted["newValue"]) == (
        "ENTRY_DELETED",
        "chemistry teacher",
        None,
    )
    assert {added["source"], updated["source"], deleted["source"]} == {"MANUAL"}


async def test_flushes_and_failures_arrive_live(
    live: LiveServer, tenant: ProjectHandle, llm: ScriptedLLM
) -> None:
    llm.responder = memory_responder()
    async with _subscription(live, tenant.api_key) as changes:
        await tenant.api.ok(INSERT_CHAT)
        await tenant.api.ok(FLUSH)
        received = [await _next(changes) for _ in range(3)]
        llm.responder = lambda _request: Reply(status=500)
        await tenant.api.ok(INSERT_CHAT)
        await tenant.api.ok(FLUSH)
        failed = await _next(changes)
    kinds = [c["kind"] for c in received]
    assert kinds == ["ENTRY_ADDED", "ENTRY_ADDED", "BUFFER_FLUSHED"]
    assert {c["source"] for c in received[:2]} == {"LLM"}
    assert received[2]["flushId"] is not None
    assert received[2]["eventId"] is not None
    assert failed["kind"] == "FLUSH_FAILED"
    assert "HTTP 500" in failed["error"]


async def test_since_replays_what_a_client_missed(live: LiveServer, tenant: ProjectHandle) -> None:
    await _add(tenant, "a", "1")
    feed = (await tenant.api.ok(CHANGES, after=None))["user"]["changes"]
    cursor = feed["nodes"][0]["cursor"]
    await _add(tenant, "b", "2")  # missed while disconnected
    await _add(tenant, "c", "3")
    async with _subscription(live, tenant.api_key, since=cursor) as changes:
        replayed = [await _next(changes) for _ in range(2)]
        await _add(tenant, "d", "4")
        live_one = await _next(changes)
    assert [c["subTopic"] for c in replayed] == ["b", "c"]
    assert live_one["subTopic"] == "d"
    cursors = [c["cursor"] for c in [*replayed, live_one]]
    assert len(set(cursors)) == 3


async def test_kinds_filter(live: LiveServer, tenant: ProjectHandle) -> None:
    async with _subscription(live, tenant.api_key, kinds=["ENTRY_DELETED"]) as changes:
        entry_id = await _add(tenant, "a", "1")
        await tenant.api.ok(DELETE, id=entry_id)
        only = await _next(changes)
    assert only["kind"] == "ENTRY_DELETED"


async def test_changes_query_pages_the_feed(tenant: ProjectHandle) -> None:
    for n in range(3):
        await _add(tenant, f"s{n}", str(n))
    first = (await tenant.api.ok(CHANGES, after=None))["user"]["changes"]
    assert [n["subTopic"] for n in first["nodes"]] == ["s0", "s1", "s2"]
    rest = await tenant.api.ok(CHANGES, after=first["nodes"][0]["cursor"])
    assert [n["subTopic"] for n in rest["user"]["changes"]["nodes"]] == ["s1", "s2"]


async def _raw_ws(live: LiveServer, init: dict[str, Any] | None) -> Any:
    socket = await websockets.connect(live.ws_url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    if init is not None:
        await socket.send(json.dumps({"type": "connection_init", "payload": init}))
    return socket


async def _close_code(socket: Any) -> int:
    """The code the server closed the socket with (after any messages it sent first)."""
    try:
        for _ in range(10):
            await asyncio.wait_for(socket.recv(), timeout=10)
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else -1
    raise AssertionError("the server did not close the socket")


@pytest.mark.parametrize("init", [{}, {"Authorization": "Bearer pm_wrong"}, {"Authorization": "x"}])
async def test_websocket_without_a_valid_token_is_closed(
    live: LiveServer, init: dict[str, Any]
) -> None:
    socket = await _raw_ws(live, init)
    assert await _close_code(socket) == 4403


async def test_other_projects_and_root_cannot_subscribe(
    live: LiveServer, tenant: ProjectHandle
) -> None:
    other = await __import__("tests.support", fromlist=["create_project"]).create_project(
        live.http_url,
        __import__("tests.support", fromlist=["Api"]).Api(live.http_url, ROOT_TOKEN),
        "other",
    )
    for token, code in ((other.api_key, "NOT_FOUND"), (ROOT_TOKEN, "FORBIDDEN")):
        socket = await _raw_ws(live, {"Authorization": f"Bearer {token}"})
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        await socket.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": SUBSCRIBE, "variables": {"userId": "alice"}},
                }
            )
        )
        message = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
        await socket.close()
        # An execution error: a "next" carrying errors (then "complete"), no data.
        assert message["type"] == "next", message
        assert message["payload"]["data"] is None
        assert message["payload"]["errors"][0]["extensions"]["code"] == code


@pytest.mark.parametrize("field", ["profileUpdated", "bufferFlushed", "flushFailed"])
async def test_each_subscription_on_a_missing_user_ends_with_one_not_found_error(
    live: LiveServer, tenant: ProjectHandle, field: str
) -> None:
    socket = await _raw_ws(live, {"Authorization": f"Bearer {tenant.api_key}"})
    assert json.loads(await socket.recv())["type"] == "connection_ack"
    query = f'subscription {{ {field}(userId: "ghost") {{ cursor }} }}'
    await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
    message = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
    done = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
    await socket.close()
    assert message["type"] == "next", message
    assert message["payload"]["data"] is None
    [error] = message["payload"]["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert done == {"id": "1", "type": "complete"}


async def test_dataloaders_are_fresh_for_every_operation_on_one_socket(
    live: LiveServer, tenant: ProjectHandle
) -> None:
    transport = WebsocketsTransport(
        url=live.ws_url,
        init_payload={"Authorization": f"Bearer {tenant.api_key}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    blobs = GraphQLRequest('{ user(userId: "alice") { blobs { nodes { id } } } }')
    async with Client(transport=transport, schema=SCHEMA_SDL) as session:
        before = await session.execute(blobs)
        await tenant.api.ok(INSERT_CHAT)
        after = await session.execute(blobs)
    assert before["user"]["blobs"]["nodes"] == []
    assert len(after["user"]["blobs"]["nodes"]) == 1  # not the first operation's cached page


async def test_changes_cursor_then_subscribe_leaves_no_gap(
    live: LiveServer, tenant: ProjectHandle
) -> None:
    # Read the cursor (with the profile), then change something, then subscribe: the change
    # made in between arrives first.
    start = await tenant.api.ok('{ user(userId: "alice") { changesCursor profile { id } } }')
    await _add(tenant, "between", "x")
    async with _subscription(live, tenant.api_key, since=start["user"]["changesCursor"]) as changes:
        first = await _next(changes)
    assert first["subTopic"] == "between"


async def test_buffer_flushed_and_flush_failed_subscriptions(
    live: LiveServer, tenant: ProjectHandle, llm: ScriptedLLM
) -> None:
    llm.responder = memory_responder()
    flushed_doc = 'subscription { bufferFlushed(userId: "alice") { kind flushId eventId } }'
    failed_doc = 'subscription { flushFailed(userId: "alice") { kind error } }'
    async with (
        subscribe(live.ws_url, tenant.api_key, flushed_doc) as flushed,
        subscribe(live.ws_url, tenant.api_key, failed_doc) as failed,
    ):
        await tenant.api.ok(INSERT_CHAT)
        await tenant.api.ok(FLUSH)
        ok = await _next(flushed)
        llm.responder = lambda _request: Reply(status=500)
        await tenant.api.ok(INSERT_CHAT)
        await tenant.api.ok(FLUSH)
        bad = await _next(failed)
    assert ok["kind"] == "BUFFER_FLUSHED"
    assert ok["flushId"] is not None
    assert bad["kind"] == "FLUSH_FAILED"
    assert "HTTP 500" in bad["error"]
