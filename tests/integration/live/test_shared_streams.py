"""Subscriptions of one key, document and variables share one execution on the instance: a
change is executed and encoded once, and every socket receives the same message."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.integration.live.sockets import issue_key, ready
from tests.live import LiveServer
from tests.support import ROOT_TOKEN, Api, ProjectHandle

FOLLOW = """
subscription Follow($userId: ID!, $since: String, $kinds: [ChangeKind!]) {
  profileUpdated(userId: $userId, since: $since, kinds: $kinds) { cursor kind subTopic newValue }
}
"""
ADD = """
mutation($sub: String!) {
  addProfileEntry(input: {userId: "alice", topic: "work", subTopic: $sub, content: "x"}) {
    __typename
  }
}
"""
CHANGES = 'query { user(userId: "alice") { changesCursor } }'


async def _metrics(live: LiveServer) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=live.http_url) as client:
        text = (await client.get("/metrics")).text
    wanted = {
        "powermemo_subscription_streams",
        "powermemo_subscription_followers",
        "powermemo_subscription_results_total",
    }
    values: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            values[name.removesuffix("_total")] = float(value)
    return values


async def _settled(live: LiveServer, **expected: float) -> dict[str, float]:
    """The subscription metrics once they show `expected` (the server sets up subscriptions
    after answering the subscribe message); fails after 10 s."""
    async with asyncio.timeout(10):
        while True:
            values = await _metrics(live)
            short = {k.removeprefix("powermemo_subscription_"): v for k, v in values.items()}
            if all(short.get(name) == value for name, value in expected.items()):
                return short
            await asyncio.sleep(0.05)


async def _subscribe(socket: Any, operation_id: str, **variables: Any) -> None:
    payload = {"query": FOLLOW, "operationName": "Follow", "variables": {"userId": "alice"}}
    payload["variables"].update(variables)  # type: ignore[attr-defined]
    await socket.send(json.dumps({"id": operation_id, "type": "subscribe", "payload": payload}))


async def _message(socket: Any) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
    return answer


async def test_sockets_of_one_key_share_one_execution(
    live: LiveServer, tenant: ProjectHandle
) -> None:
    sockets = [await ready(live.ws_url, tenant.api_key) for _ in range(3)]
    for number, socket in enumerate(sockets):
        await _subscribe(socket, f"op-{number}")
    before = await _settled(live, streams=1, followers=3)

    await tenant.api.ok(ADD, sub="shared")
    messages = [await _message(socket) for socket in sockets]

    assert [m["id"] for m in messages] == ["op-0", "op-1", "op-2"]
    assert {m["type"] for m in messages} == {"next"}
    payloads = [m["payload"] for m in messages]
    assert payloads[0]["data"]["profileUpdated"]["subTopic"] == "shared"
    assert payloads[1] == payloads[0]
    assert payloads[2] == payloads[0]
    after = await _settled(live, streams=1, followers=3)
    assert after["results"] - before.get("results", 0) == 1  # executed once for three sockets
    for socket in sockets:
        await socket.close()
    await _settled(live, streams=0, followers=0)


async def test_other_variables_and_other_keys_run_apart(
    live: LiveServer, tenant: ProjectHandle
) -> None:
    _, other_secret = await issue_key(Api(live.http_url, ROOT_TOKEN), tenant)
    everything = await ready(live.ws_url, tenant.api_key)
    only_added = await ready(live.ws_url, tenant.api_key)
    other_key = await ready(live.ws_url, other_secret)
    await _subscribe(everything, "a")
    await _subscribe(only_added, "b", kinds=["ENTRY_ADDED"])
    await _subscribe(other_key, "c")
    await _settled(live, streams=3, followers=3)

    await tenant.api.ok(ADD, sub="apart")
    for socket, operation_id in ((everything, "a"), (only_added, "b"), (other_key, "c")):
        message = await _message(socket)
        assert message["id"] == operation_id
        assert message["payload"]["data"]["profileUpdated"]["subTopic"] == "apart"
    for socket in (everything, only_added, other_key):
        await socket.close()


async def test_a_follower_leaving_leaves_the_others_following(
    live: LiveServer, tenant: ProjectHandle
) -> None:
    first = await ready(live.ws_url, tenant.api_key)
    second = await ready(live.ws_url, tenant.api_key)
    await _subscribe(first, "1")
    await _subscribe(second, "2")
    await _settled(live, streams=1, followers=2)

    # The first socket started the execution; it leaves, the execution goes on.
    await first.send(json.dumps({"id": "1", "type": "complete"}))
    await _settled(live, streams=1, followers=1)
    await tenant.api.ok(ADD, sub="after-leaving")
    message = await _message(second)
    assert message["payload"]["data"]["profileUpdated"]["subTopic"] == "after-leaving"

    await second.send(json.dumps({"id": "2", "type": "complete"}))
    await _settled(live, streams=0, followers=0)
    # A new subscriber starts a new execution, which hears the next change.
    await _subscribe(first, "3")
    await _settled(live, streams=1, followers=1)
    await tenant.api.ok(ADD, sub="again")
    message = await _message(first)
    assert (message["id"], message["payload"]["data"]["profileUpdated"]["subTopic"]) == (
        "3",
        "again",
    )
    await first.close()
    await second.close()


async def test_subscriptions_with_since_replay_on_their_own(
    live: LiveServer, tenant: ProjectHandle
) -> None:
    cursor = (await tenant.api.ok(CHANGES))["user"]["changesCursor"]
    await tenant.api.ok(ADD, sub="missed")
    late = await ready(live.ws_url, tenant.api_key)
    later = await ready(live.ws_url, tenant.api_key)
    await _subscribe(late, "x", since=cursor)
    replayed = await _message(late)
    await _subscribe(later, "y", since=cursor)  # the same variables, joining afterwards
    replayed_again = await _message(later)

    for message in (replayed, replayed_again):
        assert message["payload"]["data"]["profileUpdated"]["subTopic"] == "missed"
    assert (await _metrics(live)).get("powermemo_subscription_streams") == 0
    await late.close()
    await later.close()
