"""Subscriptions shared on this instance: one execution per caller, document and variables,
each result encoded once, and the same text sent to every socket that asked for it.

A change to a user that 1,000 dashboards follow is then executed and serialised once, not
1,000 times (that was ~0.18 ms of server CPU per socket per change, and the garbage of it
made full collections long). Only subscriptions that start "from now on" are shared: one
given a `since:` cursor first replays the changes after it, which a socket joining later
would never see, so it runs on its own (as do queries and mutations sent over a socket).

The caller is part of the key: sockets share an execution only when they authenticated
with the same API key, so nothing a key may not read reaches its sockets, and a revoked
key's sockets (all closed at once) take their executions with them.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLSyntaxError,
    NullValueNode,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    parse,
)
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.utils.aio import aclosing

from powermemo_gql.projects.auth import Principal

if TYPE_CHECKING:
    from strawberry.schema.schema import StreamResult

    from powermemo_gql.observability.metrics import Metrics

logger = logging.getLogger(__name__)

# Results a socket may have waiting (it reads slower than changes come): past this it is
# dropped from the execution and told to resubscribe with its last cursor.
MAX_WAITING = 1000
# Documents whose shape (is it a live subscription?) is remembered.
_SHAPES_REMEMBERED = 512


@dataclass(frozen=True)
class StreamKey:
    principal: Principal
    query: str
    operation_name: str | None
    variables: str  # canonical JSON


@dataclass(frozen=True)
class DocumentLimits:
    """The server's own limits on a document (max_query_length, max_query_tokens): this
    module reads a document before strawberry does, so it must not read more than it would."""

    max_length: int
    max_tokens: int


def stream_key(
    principal: Principal,
    query: str,
    variables: Mapping[str, object] | None,
    operation_name: str | None,
    limits: DocumentLimits,
) -> StreamKey | None:
    """The key under which this operation may share an execution; None when it must run on
    its own (not a subscription, a `since:` given, or a document strawberry will reject)."""
    if len(query) > limits.max_length:
        return None
    try:
        since_variables = _since_variables(query, operation_name, limits.max_tokens)
    except GraphQLSyntaxError:  # over the token limit, or no GraphQL: strawberry answers it
        return None
    if since_variables is None:
        return None
    given = variables or {}
    if any(given.get(name) is not None for name in since_variables):
        return None
    try:
        canonical = json.dumps(given, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return None
    return StreamKey(principal, query, operation_name, canonical)


@functools.lru_cache(maxsize=_SHAPES_REMEMBERED)
def _since_variables(
    query: str, operation_name: str | None, max_tokens: int
) -> frozenset[str] | None:
    """The variables that feed a `since:` argument of a subscription's root fields; None
    when the operation is no subscription or gives `since:` a literal. Raises what parsing
    raises (not cached, so documents refused take no room here)."""
    document = parse(query, no_location=True, max_tokens=max_tokens)
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation != OperationType.SUBSCRIPTION:
        return None
    names: set[str] = set()
    for selection in operations[0].selection_set.selections:
        if not isinstance(selection, FieldNode):
            return None  # fragments at the root: not worth following
        for argument in selection.arguments or ():
            if argument.name.value != "since":
                continue
            if isinstance(argument.value, VariableNode):
                names.add(argument.value.name.value)
            elif not isinstance(argument.value, NullValueNode):
                return None
    return frozenset(names)


class _Signal:
    """An item that is not a result: the execution ended, or the follower fell behind."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


ENDED: Final = _Signal("ended")
BEHIND: Final = _Signal("behind")
# An encoded `next` payload (str), a result the follower answers itself (a pre-execution
# error, an incremental result), or a signal.
Item = object


class Follower:
    """One operation's place in a shared execution: the items it has not sent yet."""

    def __init__(self, stream: SharedStream) -> None:
        self._stream = stream
        self._items: deque[Item] = deque()
        self._wake = asyncio.Event()

    def hand(self, item: Item) -> bool:
        """False when the follower is too far behind (it is then told, and dropped)."""
        if len(self._items) >= MAX_WAITING:
            self._items.clear()
            self._items.append(BEHIND)
            self._wake.set()
            return False
        self._items.append(item)
        self._wake.set()
        return True

    async def items(self) -> AsyncIterator[Item]:
        """What the execution produced since this follower joined, until it ends."""
        while True:
            while not self._items:
                self._wake.clear()
                await self._wake.wait()
            item = self._items.popleft()
            if item is ENDED:
                return
            yield item
            if item is BEHIND:
                return

    def leave(self) -> None:
        self._stream.leave(self)


def next_payload(result: ExecutionResult, encode: Callable[[object], str]) -> str:
    """The `next` message's payload, as strawberry's Operation.send_next builds it."""
    payload: dict[str, object] = {"data": result.data}
    if result.errors:
        payload["errors"] = [error.formatted for error in result.errors]
    if result.extensions:
        payload["extensions"] = result.extensions
    return encode(payload)


def behind_payload(encode: Callable[[object], str]) -> str:
    error = GraphQLError(
        "This subscription fell too far behind; subscribe again with since: the last cursor.",
        extensions={"code": "FEED_INTERRUPTED"},
    )
    return encode({"data": None, "errors": [error.formatted]})


class SharedStream:
    """One execution of a subscription, its results handed to every follower."""

    def __init__(
        self,
        key: StreamKey,
        streams: SharedStreams,
        start: Callable[[], Awaitable[StreamResult]],
        encode: Callable[[object], str],
    ) -> None:
        self.key = key
        self._streams = streams
        self._encode = encode
        self.followers: set[Follower] = set()
        self._task = asyncio.create_task(self._run(start), name="shared subscription")

    def join(self) -> Follower:
        follower = Follower(self)
        self.followers.add(follower)
        return follower

    def leave(self, follower: Follower) -> None:
        if follower not in self.followers:
            return
        self.followers.discard(follower)
        self._streams.followers_changed(-1)
        if not self.followers:
            self._streams.forget(self)
            self._task.cancel()

    def cancel(self) -> None:
        self._task.cancel()

    async def _run(self, start: Callable[[], Awaitable[StreamResult]]) -> None:
        try:
            source = await start()
            async with aclosing(source):
                first = True
                async for result in source:
                    if not isinstance(result, ExecutionResult) or (
                        first and isinstance(result, PreExecutionError)
                    ):
                        self._hand(result)  # each follower answers it as strawberry would
                        return
                    first = False
                    self._streams.result_executed()
                    self._hand(next_payload(result, self._encode))
        except Exception:
            logger.exception("shared subscription failed")
        finally:
            self._streams.forget(self)
            self._hand(ENDED)

    def _hand(self, item: Item) -> None:
        for follower in list(self.followers):
            if not follower.hand(item):
                self.leave(follower)


class SharedStreams:
    """The shared executions of this instance, by key."""

    def __init__(self, metrics: Metrics) -> None:
        self._streams: dict[StreamKey, SharedStream] = {}
        self._metrics = metrics

    def __len__(self) -> int:
        return len(self._streams)

    def follow(
        self,
        key: StreamKey,
        start: Callable[[], Awaitable[StreamResult]],
        encode: Callable[[object], str],
    ) -> Follower:
        """Join the execution running under `key`, or start one with `start`."""
        stream = self._streams.get(key)
        if stream is None:
            stream = SharedStream(key, self, start, encode)
            self._streams[key] = stream
            self._metrics.subscription_streams.set(len(self._streams))
        self.followers_changed(+1)
        return stream.join()

    def forget(self, stream: SharedStream) -> None:
        """No one joins it any more (it ended, or its last follower left)."""
        if self._streams.get(stream.key) is stream:
            del self._streams[stream.key]
            self._metrics.subscription_streams.set(len(self._streams))

    def followers_changed(self, by: int) -> None:
        self._metrics.subscription_followers.inc(by)

    def result_executed(self) -> None:
        self._metrics.subscription_results.inc()

    def close(self) -> None:
        for stream in list(self._streams.values()):
            stream.cancel()
        self._streams.clear()
        self._metrics.subscription_streams.set(0)
