"""graphql-transport-ws, hardened: frame caps, connection caps, a rate limit on every
subscribe message, and sockets that close when their API key is revoked.

Strawberry's handler and ASGI adapter do the protocol; the subclasses here add the
checks. The registry knows every open socket of this instance, so a revocation (told by
the broker, see projects/revocation.py) closes the sockets of that key at once.
"""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator, Mapping
from contextlib import suppress
from dataclasses import replace
from json import JSONDecodeError
from typing import TYPE_CHECKING, Any, Protocol, cast

from graphql import GraphQLError
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import (
    NonJsonMessageReceived,
    NonTextMessageReceived,
    WebSocketDisconnected,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    Message,
    NextMessage,
    SubscribeMessage,
)
from strawberry.types.execution import PreExecutionError

from powermemo_gql.graphql.shared_streams import (
    BEHIND,
    DocumentLimits,
    Follower,
    SharedStreams,
    behind_payload,
    stream_key,
)
from powermemo_gql.projects.auth import Principal
from powermemo_gql.projects.revocation import Revocation

if TYPE_CHECKING:
    from strawberry.schema.schema import StreamResult

    from powermemo_gql.graphql.context import Context
    from powermemo_gql.resources import Resources

logger = logging.getLogger(__name__)

# Before connection_init is accepted nobody is known: a frame that large is no greeting.
MAX_UNAUTHENTICATED_FRAME = 16 * 1024
# JSON nested deeper than this is refused (json.loads itself gives up near 1000 levels,
# with a RecursionError that strawberry would let kill the socket).
MAX_JSON_DEPTH = 64
# Revoked keys and projects remembered, so that a socket that authenticated just before
# a revocation and registers just after it is refused all the same.
_REMEMBERED_REVOCATIONS = 10_000

CLOSE_REVOKED = (4403, "API key revoked")
CLOSE_TOO_LARGE = 4413
CLOSE_TOO_DEEP = (4400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
CLOSE_KEY_FULL = (4429, "too many connections for this key")
CLOSE_THROTTLED = (4429, "too many failed authentications from this address")
CLOSE_SERVER_FULL = (1013, "too many connections on this server")


class FrameTooLarge(Exception):
    pass


class _TooDeep(Exception):
    pass


def _check_depth(value: object) -> None:
    """Iteratively, so that the check itself cannot run out of stack."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise _TooDeep
        stack.extend((child, depth + 1) for child in children)


def _utf8_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


class GuardedWebSocketAdapter(ASGIWebSocketAdapter):
    """Reads frames under a size cap and a nesting cap; closing twice is harmless."""

    def __init__(self, view: Any, request: WebSocket, response: WebSocket) -> None:
        super().__init__(view, request, response)
        self.frame_limit = MAX_UNAUTHENTICATED_FRAME  # raised once authenticated

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object]:
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                text = await self.ws.receive_text()
                size = _utf8_length(text)
                if size > self.frame_limit:
                    reason = f"frame of {size} bytes is over the {self.frame_limit} allowed"
                    await self.close(CLOSE_TOO_LARGE, reason)
                    return
                try:
                    message = self.view.decode_json(text)
                    _check_depth(message)
                except (JSONDecodeError, RecursionError, _TooDeep) as exc:
                    if isinstance(exc, JSONDecodeError):
                        if ignore_parsing_errors:
                            continue
                        raise NonJsonMessageReceived from exc
                    await self.close(*CLOSE_TOO_DEEP)
                    return
                yield message
        except KeyError as exc:  # a binary frame
            raise NonTextMessageReceived from exc
        except WebSocketDisconnect:
            pass

    async def send_json(self, message: Mapping[str, object]) -> None:
        if self.ws.application_state == WebSocketState.DISCONNECTED:
            raise WebSocketDisconnected  # closed from elsewhere (a revocation)
        await super().send_json(message)

    async def send_text(self, text: str) -> None:
        """A message encoded already (a shared subscription's result)."""
        if self.ws.application_state == WebSocketState.DISCONNECTED:
            raise WebSocketDisconnected
        try:
            await self.ws.send_text(text)
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc

    async def close(self, code: int, reason: str) -> None:
        if self.ws.application_state == WebSocketState.DISCONNECTED:
            return
        await super().close(code, reason)


class ConnectionRegistry:
    """The open sockets of this instance, and which key each authenticated with."""

    def __init__(self, max_connections: int, max_per_key: int) -> None:
        self._max_connections = max_connections
        self._max_per_key = max_per_key
        self._handlers: dict[WebSocket, TransportWSHandler] = {}
        self._principals: dict[WebSocket, Principal] = {}
        self._by_key: dict[uuid.UUID, set[WebSocket]] = {}
        self._revoked: OrderedDict[uuid.UUID, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._handlers)

    def opened(self, socket: WebSocket, handler: TransportWSHandler) -> bool:
        """False when the instance is full (the socket must close)."""
        if len(self._handlers) >= self._max_connections:
            return False
        self._handlers[socket] = handler
        return True

    def authenticated(self, socket: WebSocket, principal: Principal) -> tuple[int, str] | None:
        """Record who the socket speaks for; a (code, reason) to close with instead."""
        key_id, project_id = principal.api_key_id, principal.project_id
        if key_id is not None:
            if key_id in self._revoked or (project_id is not None and project_id in self._revoked):
                return CLOSE_REVOKED
            if len(self._by_key.get(key_id, ())) >= self._max_per_key:
                return CLOSE_KEY_FULL
            self._by_key.setdefault(key_id, set()).add(socket)
        self._principals[socket] = principal
        return None

    def closed(self, socket: WebSocket) -> None:
        self._handlers.pop(socket, None)
        principal = self._principals.pop(socket, None)
        if principal is None or principal.api_key_id is None:
            return
        sockets = self._by_key.get(principal.api_key_id)
        if sockets is not None:
            sockets.discard(socket)
            if not sockets:
                del self._by_key[principal.api_key_id]

    def open_key_ids(self) -> set[uuid.UUID]:
        return set(self._by_key)

    async def revoked(self, revocation: Revocation) -> None:
        for gone in (*revocation.api_key_ids, *revocation.project_ids):
            self._revoked[gone] = None
            self._revoked.move_to_end(gone)
        while len(self._revoked) > _REMEMBERED_REVOCATIONS:
            self._revoked.popitem(last=False)
        doomed = [
            socket
            for socket, principal in self._principals.items()
            if principal.api_key_id in revocation.api_key_ids
            or principal.project_id in revocation.project_ids
        ]
        for socket in doomed:
            handler = self._handlers.get(socket)
            if handler is not None:
                await handler.close_revoked()


class _HardenedView(Protocol):
    resources: Resources
    connections: ConnectionRegistry
    streams: SharedStreams


class TransportWSHandler(BaseGraphQLTransportWSHandler["Context", None]):
    """Strawberry's graphql-transport-ws handler with this server's limits."""

    websocket: GuardedWebSocketAdapter
    context: Context

    async def handle(self) -> None:
        socket = self.websocket.ws
        hardened = cast(_HardenedView, self.view)
        self._closing = False
        if not hardened.connections.opened(socket, self):
            await self.websocket.close(*CLOSE_SERVER_FULL)
            return
        try:
            await super().handle()
        finally:
            hardened.connections.closed(socket)

    async def handle_message(self, message: Message) -> None:
        if self._closing:  # a frame that was on its way when the server closed
            return
        await super().handle_message(message)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        await super().handle_connection_init(message)
        if self.connection_acknowledged:
            self.websocket.frame_limit = self._resources.settings.max_request_bytes
            # Strawberry's timer would sleep out the whole timeout for nothing: a task, its
            # coroutine and a timer per socket for the collector to walk.
            if self.connection_init_timeout_task is not None:
                self.connection_init_timeout_task.cancel()

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        """Every subscribe message counts against the key's rate limit, as a request over
        HTTP does; over it the operation gets a RATE_LIMITED error and does not run."""
        key_id = self.context.principal.api_key_id
        if self.connection_acknowledged and key_id is not None:
            verdict = await self._resources.rate_limiter.hit(str(key_id))
            if not verdict.allowed:
                error = GraphQLError(
                    "Rate limit exceeded for this API key.",
                    extensions={"code": "RATE_LIMITED", "retryAfter": verdict.retry_after},
                )
                operation_id = message["id"]
                refused: NextMessage = {
                    "id": operation_id,
                    "type": "next",
                    "payload": {"data": None, "errors": [error.formatted]},
                }
                await self.send_message(refused)
                await self.send_message({"id": operation_id, "type": "complete"})
                return
        await super().handle_subscribe(message)

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        """A live subscription follows the execution other sockets of the same key run for
        the same document and variables (graphql/shared_streams.py); the rest run alone."""
        settings = self._resources.settings
        key = stream_key(
            self.context.principal,
            operation.query,
            operation.variables,
            operation.operation_name,
            DocumentLimits(settings.max_query_length, settings.max_query_tokens),
        )
        if key is None:
            await super().run_operation(operation)
            return
        view = cast(_HardenedView, self.view)
        follower = view.streams.follow(
            key, functools.partial(self._execute_shared, operation), self._encode
        )
        try:
            await self._relay(operation, follower)
        except Exception as error:  # as strawberry's run_operation does
            await self.handle_task_exception(error)
            with suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
            raise
        finally:
            follower.leave()

    async def _execute_shared(self, operation: Operation[Context, None]) -> StreamResult:
        # A context of its own: the execution outlives this socket when others follow it.
        return await self.schema.stream(
            operation.query,
            variable_values=operation.variables,
            context_value=replace(self.context, _loaders=None),
            root_value=self.root_value,
            operation_name=operation.operation_name,
        )

    async def _relay(self, operation: Operation[Context, None], follower: Follower) -> None:
        prefix = '{"id":' + json.dumps(operation.id) + ',"type":"next","payload":'
        async for item in follower.items():
            if operation.completed:
                return
            if isinstance(item, str):
                await self.websocket.send_text(prefix + item + "}")
            elif item is BEHIND:
                await self.websocket.send_text(prefix + behind_payload(self._encode) + "}")
            elif isinstance(item, PreExecutionError):
                assert item.errors  # strawberry's pre-execution errors always carry them
                await operation.send_initial_errors(item.errors)
                return
            else:  # @defer / @stream results: no graphql-transport-ws form
                await self._reject_incremental_delivery(operation)
                return
        await operation.send_operation_message({"id": operation.id, "type": "complete"})

    def _encode(self, data: object) -> str:
        encoded = self.view.encode_json(data)
        return encoded if isinstance(encoded, str) else encoded.decode()

    async def close_revoked(self) -> None:
        """Stop every operation of the socket, then close it (4403)."""
        self._closing = True
        for operation_id in list(self.operations):
            await self.cleanup_operation(operation_id)
        await self.websocket.close(*CLOSE_REVOKED)

    @property
    def _resources(self) -> Resources:
        return cast(_HardenedView, self.view).resources
