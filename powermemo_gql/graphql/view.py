"""The /graphql endpoint: authentication in front of strawberry's ASGI view."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from powermemo_gql.core.db import database_trouble
from powermemo_gql.core.ratelimit import create_failure_throttle
from powermemo_gql.graphql.context import Context
from powermemo_gql.graphql.websockets import (
    CLOSE_THROTTLED,
    ConnectionRegistry,
    GuardedWebSocketAdapter,
    TransportWSHandler,
)
from powermemo_gql.projects.auth import Principal, bearer_token
from powermemo_gql.projects.authenticator import Authenticator, Throttled
from powermemo_gql.projects.revocation import RevocationWatch
from powermemo_gql.resources import Resources

logger = logging.getLogger(__name__)

_PRINCIPAL_KEY = "powermemo.principal"


def _refusal(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """A request refused before GraphQL runs, in the GraphQL error shape."""
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": code}}]},
        status_code=status,
        headers=headers,
    )


class _BodyTooLarge(Exception):
    pass


def _capped(receive: Receive, limit: int) -> Receive:
    """Pass the body through, failing once more than `limit` bytes have come."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _BodyTooLarge
        return message

    return wrapped


def _wants_graphiql(request: Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("accept", "")


def _client_address(connection: Request | WebSocket) -> str | None:
    return connection.client.host if connection.client else None


class GraphQLView(GraphQL[Context, None]):
    websocket_adapter_class = GuardedWebSocketAdapter
    graphql_transport_ws_handler_class = TransportWSHandler

    def __init__(self, resources: Resources, **kwargs: Any) -> None:
        settings = resources.settings
        super().__init__(
            graphql_ide="graphiql" if settings.graphiql_enabled else None,
            allow_queries_via_get=False,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=settings.ws_connection_init_timeout),
            max_subscriptions_per_connection=settings.ws_max_subscriptions,
            **kwargs,
        )
        self.resources = resources
        root = settings.root_token
        self.authenticator = Authenticator(
            resources.sessions,
            root.get_secret_value() if root else None,
            create_failure_throttle(settings.auth_failures_per_minute, settings.redis_url),
        )
        self.connections = ConnectionRegistry(
            settings.ws_max_connections, settings.ws_max_connections_per_key
        )
        self.revocations = RevocationWatch(resources.pubsub, resources.sessions, self.connections)

    async def start(self) -> None:
        """In the app lifespan: open websockets close when their key is revoked."""
        self.revocations.start()

    async def stop(self) -> None:
        await self.revocations.stop()
        await self.authenticator.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope, receive)
            if not _wants_graphiql(request):  # the GraphiQL page itself holds no data
                refusal = await self._admit(request, scope)
                if refusal is not None:
                    await refusal(scope, receive, send)
                    return
            limit = self.resources.settings.max_request_bytes
            try:
                await super().__call__(scope, _capped(receive, limit), send)
            except _BodyTooLarge:
                await _refusal(413, "PAYLOAD_TOO_LARGE", f"body over {limit} bytes")(
                    scope, receive, send
                )
            return
        await super().__call__(scope, receive, send)

    async def _admit(self, request: Request, scope: Scope) -> Response | None:
        """Checks before GraphQL: body size, JSON, credentials, rate. None admits."""
        settings = self.resources.settings
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > settings.max_request_bytes:
            return _refusal(
                413, "PAYLOAD_TOO_LARGE", f"body over {settings.max_request_bytes} bytes"
            )
        if request.method == "POST":
            media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type != "application/json":
                return _refusal(
                    415, "UNSUPPORTED_MEDIA_TYPE", "POST a JSON body (application/json)"
                )
        authorization = request.headers.get("authorization")
        try:
            principal = await self._authenticate(authorization, _client_address(request))
        except Exception as exc:  # the key lookup needs the database
            trouble = database_trouble(exc)
            if trouble is None:
                raise
            logger.warning("authentication failed: %s", trouble[0], exc_info=True)
            return _refusal(503, trouble[0], trouble[1], {"Retry-After": "1"})
        if isinstance(principal, Throttled):
            return _refusal(
                429,
                "RATE_LIMITED",
                "too many failed authentications from this address",
                {"Retry-After": str(principal.retry_after)},
            )
        if principal is None:
            missing = bearer_token(authorization) is None
            return _refusal(
                401,
                "UNAUTHENTICATED",
                "Missing bearer token" if missing else "Invalid or revoked token",
                {"WWW-Authenticate": 'Bearer realm="powermemo"'},
            )
        if principal.api_key_id is None:  # the operator's root token is not rate-limited
            scope[_PRINCIPAL_KEY] = principal
            return None
        verdict = await self.resources.rate_limiter.hit(str(principal.api_key_id))
        if not verdict.allowed:
            return _refusal(
                429,
                "RATE_LIMITED",
                f"more than {settings.rate_limit_per_minute} requests this minute",
                {"Retry-After": str(verdict.retry_after)},
            )
        scope[_PRINCIPAL_KEY] = principal
        return None

    async def _authenticate(
        self, authorization: str | None, client: str | None
    ) -> Principal | Throttled | None:
        return await self.authenticator(authorization, client)

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """graphql-transport-ws: the same bearer tokens, sent in connection_init as
        {"Authorization": "Bearer <token>"}; anything else closes the socket (4403)."""
        socket = context.request
        assert isinstance(socket, WebSocket)  # strawberry calls this for websockets only
        params = context.connection_params or {}
        authorization = params.get("Authorization") or params.get("authorization")
        principal = await self._authenticate(
            authorization if isinstance(authorization, str) else None, _client_address(socket)
        )
        if isinstance(principal, Throttled):
            # Closed here with its own code; strawberry's 4403 after the rejection is a no-op.
            await socket.close(*CLOSE_THROTTLED)
            raise ConnectionRejectionError({"message": CLOSE_THROTTLED[1]})
        if principal is None:
            raise ConnectionRejectionError({"message": "missing, invalid or revoked token"})
        if principal.api_key_id is not None:  # a connection counts as a request
            verdict = await self.resources.rate_limiter.hit(str(principal.api_key_id))
            if not verdict.allowed:
                raise ConnectionRejectionError(
                    {
                        "message": "rate limited",
                        "code": "RATE_LIMITED",
                        "retryAfter": verdict.retry_after,
                    }
                )
        refusal = self.connections.authenticated(socket, principal)
        if refusal is not None:  # too many sockets for the key, or revoked meanwhile
            await socket.close(*refusal)
            raise ConnectionRejectionError({"message": refusal[1]})
        context.principal = principal
        return UNSET

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        principal = request.scope.get(_PRINCIPAL_KEY)
        if principal is None:  # the GraphiQL page, or a websocket before connection_init
            principal = Principal(is_root=False)
        return Context(
            request=request,
            response=response if isinstance(response, Response) else None,
            resources=self.resources,
            principal=principal,
        )
