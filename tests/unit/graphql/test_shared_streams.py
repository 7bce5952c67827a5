"""Which operations share an execution, and how a shared execution treats its followers."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncGenerator

import pytest
from strawberry.types.execution import ExecutionResult

from powermemo_gql.graphql import shared_streams
from powermemo_gql.graphql.shared_streams import BEHIND, DocumentLimits, SharedStreams, StreamKey
from powermemo_gql.graphql.shared_streams import stream_key as limited_stream_key
from powermemo_gql.observability.metrics import Metrics
from powermemo_gql.projects.auth import Principal

KEY = Principal(is_root=False, project_id=uuid.uuid4(), api_key_id=uuid.uuid4())
FOLLOW = "subscription F($u: ID!, $s: String) { profileUpdated(userId: $u, since: $s) { kind } }"
LIMITS = DocumentLimits(max_length=10_000, max_tokens=2000)


def stream_key(
    principal: Principal, query: str, variables: dict[str, object] | None, name: str | None
) -> StreamKey | None:
    return limited_stream_key(principal, query, variables, name, LIMITS)


def test_documents_over_the_limits_are_not_read_here() -> None:
    # Reading them would cost what strawberry's limits refuse to spend (seconds of CPU for a
    # document of 100,000 aliased fields): strawberry refuses them itself.
    wide = " ".join(f'a{i}: profileUpdated(userId: "a") {{ kind }}' for i in range(2000))
    many_tokens = f"subscription {{ {wide} }}"
    tight = DocumentLimits(max_length=len(many_tokens), max_tokens=2000)
    assert limited_stream_key(KEY, many_tokens, None, None, tight) is None
    roomy = DocumentLimits(max_length=len(many_tokens), max_tokens=100_000)
    assert limited_stream_key(KEY, many_tokens, None, None, roomy) is not None
    too_long = DocumentLimits(max_length=len(FOLLOW) - 1, max_tokens=2000)
    assert limited_stream_key(KEY, FOLLOW, {"u": "alice"}, None, too_long) is None


def test_live_subscriptions_share_and_the_rest_run_alone() -> None:
    assert stream_key(KEY, FOLLOW, {"u": "alice"}, None) is not None
    assert stream_key(KEY, FOLLOW, {"u": "alice", "s": None}, "F") is not None
    # A since: cursor replays first: a socket joining later would miss the replay.
    assert stream_key(KEY, FOLLOW, {"u": "alice", "s": "cursor"}, None) is None
    literal = 'subscription { profileUpdated(userId: "a", since: "cursor") { kind } }'
    assert stream_key(KEY, literal, None, None) is None
    assert stream_key(KEY, 'query { user(userId: "a") { id } }', None, None) is None
    assert (
        stream_key(KEY, 'mutation { createUser(input: {userId: "a"}) { x } }', None, None) is None
    )
    assert stream_key(KEY, "subscription {", None, None) is None  # strawberry answers it
    assert stream_key(KEY, FOLLOW, {"u": "alice"}, "NoSuchOperation") is None


def test_the_key_tells_callers_and_variables_apart() -> None:
    other = Principal(is_root=False, project_id=KEY.project_id, api_key_id=uuid.uuid4())
    first = stream_key(KEY, FOLLOW, {"u": "alice", "s": None}, None)
    assert first == stream_key(KEY, FOLLOW, {"s": None, "u": "alice"}, None)  # order-free
    assert first != stream_key(other, FOLLOW, {"u": "alice", "s": None}, None)
    assert first != stream_key(KEY, FOLLOW, {"u": "bob", "s": None}, None)


class _Source:
    """A subscription's results, given one at a time by the test."""

    def __init__(self) -> None:
        self.results: asyncio.Queue[ExecutionResult] = asyncio.Queue()
        self.started = 0
        self.closed = asyncio.Event()

    async def start(self) -> AsyncGenerator[ExecutionResult]:
        self.started += 1
        return self._results()

    async def _results(self) -> AsyncGenerator[ExecutionResult]:
        try:
            while True:
                yield await self.results.get()
        finally:
            self.closed.set()


def _encode(data: object) -> str:
    return json.dumps(data)


async def test_one_execution_serves_every_follower_until_the_last_leaves() -> None:
    metrics = Metrics()
    streams = SharedStreams(metrics)
    source = _Source()
    key = stream_key(KEY, FOLLOW, {"u": "alice"}, None)
    assert key is not None
    first = streams.follow(key, source.start, _encode)
    second = streams.follow(key, source.start, _encode)
    first_items, second_items = first.items(), second.items()

    await source.results.put(
        ExecutionResult(data={"profileUpdated": {"kind": "ENTRY_ADDED"}}, errors=None)
    )
    got = [await anext(first_items), await anext(second_items)]

    assert got[0] == got[1] == '{"data": {"profileUpdated": {"kind": "ENTRY_ADDED"}}}'
    assert source.started == 1
    assert metrics.registry.get_sample_value("powermemo_subscription_results_total") == 1
    first.leave()
    assert len(streams) == 1
    assert not source.closed.is_set()
    second.leave()
    await asyncio.wait_for(source.closed.wait(), 5)  # the execution stopped with the last one
    assert len(streams) == 0


async def test_a_follower_too_far_behind_is_told_and_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shared_streams, "MAX_WAITING", 3)
    streams = SharedStreams(Metrics())
    source = _Source()
    key = stream_key(KEY, FOLLOW, {"u": "alice"}, None)
    assert key is not None
    slow = streams.follow(key, source.start, _encode)
    reader = streams.follow(key, source.start, _encode)
    reading = reader.items()
    for number in range(5):
        await source.results.put(ExecutionResult(data={"n": number}, errors=None))
        assert json.loads(str(await anext(reading)))["data"] == {"n": number}

    left = [item async for item in slow.items()]

    assert left == [BEHIND]
    assert len(streams) == 1  # the reader still follows
    reader.leave()
    await asyncio.wait_for(source.closed.wait(), 5)
