"""The /graphql endpoint: authentication in front of strawberry's ASGI view."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from powermemo_gql.core.ratelimit import create_failure_throttle
from powermemo_gql.core.request_unit import RequestUnit
from powermemo_gql.graphql import graphiql
from powermemo_gql.graphql.context import Context
from powermemo_gql.graphql.http_body import (
    GRAPHQL_RESPONSE,
    INVALID_REQUEST,
    JSON,
    METHOD_NOT_ALLOWED,
    SUBSCRIPTION_OVER_HTTP,
    RequestRefused,
    graphql_requests,
    response_media_type,
)
from powermemo_gql.graphql.shared_streams import SharedStreams
from powermemo_gql.graphql.websockets import (
    CLOSE_THROTTLED,
    ConnectionRegistry,
    GuardedWebSocketAdapter,
    TransportWSHandler,
)
from powermemo_gql.projects.admission import Refusal, admit
from powermemo_gql.projects.auth import Principal
from powermemo_gql.projects.authenticator import Authenticator, Throttled
from powermemo_gql.projects.revocation import RevocationWatch
from powermemo_gql.resources import Resources

logger = logging.getLogger(__name__)

_PRINCIPAL_KEY = "powermemo.principal"
_SUB_RESPONSE_KEY = "powermemo.sub_response"
_UNIT_KEY = "powermemo.unit"
_OVER_HTTP = frozenset({OperationType.QUERY, OperationType.MUTATION})


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


def _is_request_error(result: ExecutionResult) -> bool:
    """Nothing executed: errors, but no data and none at a field's path."""
    return (
        result.data is None
        and bool(result.errors)
        and all(error.path is None for error in result.errors or [])
    )


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
            create_failure_throttle(
                settings.auth_failures_per_minute, settings.redis_url, settings.redis_timeout
            ),
            resources.key_cache,
        )
        self.connections = ConnectionRegistry(
            settings.ws_max_connections, settings.ws_max_connections_per_key
        )
        self.streams = SharedStreams(resources.metrics)
        self.revocations = RevocationWatch(
            resources.pubsub, resources.sessions, self.connections, caches=[resources.key_cache]
        )

    async def start(self) -> None:
        """In the app lifespan: open websockets close when their key is revoked."""
        self.revocations.start()

    async def stop(self) -> None:
        self.streams.close()
        await self.revocations.stop()
        await self.authenticator.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        unit = RequestUnit(self.resources.sessions)
        scope[_UNIT_KEY] = unit
        try:
            response = await self._respond(scope, receive, unit)
        finally:
            # Before the answer leaves: what it says was written is committed, and the
            # connection is back in the pool.
            try:
                await unit.close()
            except Exception:  # the answer stands; only a query's own usage record is lost
                logger.exception("could not end the request's unit of work")
        await response(scope, receive, send)

    async def _respond(self, scope: Scope, receive: Receive, unit: RequestUnit) -> Response:
        request = Request(scope, receive)
        if not _wants_graphiql(request):  # the GraphiQL page itself holds no data
            refusal = await self._admit(request, scope, unit)
            if refusal is not None:
                return refusal
        limit = self.resources.settings.max_request_bytes
        try:
            # strawberry's own __call__ would answer its refusals in plain text.
            response = await self.run(Request(scope, _capped(receive, limit)))
        except _BodyTooLarge:
            response = _refusal(413, "PAYLOAD_TOO_LARGE", f"body over {limit} bytes")
        except RequestRefused as refused:  # a client mistake: no traceback
            logger.info("request refused: %s: %s", refused.code, refused.message)
            response = _refusal(refused.status, refused.code, refused.message)
        except HTTPException as refused:  # strawberry's own (an unknown operationName, ...)
            logger.info("request refused: %s %s", refused.status_code, refused.reason)
            code = {404: "NOT_FOUND", 405: METHOD_NOT_ALLOWED}.get(refused.status_code)
            response = _refusal(refused.status_code, code or INVALID_REQUEST, refused.reason)
        return response

    async def render_graphql_ide(self, request: Request) -> Response:
        """Our page, not strawberry's: its scripts come from this server, not a CDN."""
        return HTMLResponse(
            graphiql.page(self.resources.settings, request),
            headers={"Cache-Control": "no-store"},  # it may hold the development token
        )

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """Read strictly (see http_body); _admit has checked the media type already."""
        if request.method != "POST":
            raise RequestRefused(METHOD_NOT_ALLOWED, "POST a JSON body (GET queries are off)", 405)
        batching = self.schema.config.batching_config
        return graphql_requests(
            await request.get_body(), batching["max_operations"] if batching else 0
        )

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Queries and mutations; a subscription gets a plain refusal, not an attempt. A
        query whose connection turned out dead (the server closed it unseen: no pre-ping)
        runs once more on a fresh one."""
        result = await self._execute(context, root_value, request_data)
        if context.unit is not None and context.unit.take_lost_read():
            logger.warning("a query lost its database connection: running it once more")
            result = await self._execute(context, root_value, request_data)
        return result

    async def _execute(
        self, context: Context, root_value: None, request_data: GraphQLRequestData
    ) -> ExecutionResult:
        try:
            return await self._execute_operation(context, root_value, request_data)
        finally:
            if context.unit is not None:
                await context.unit.end_operation()

    async def _execute_operation(
        self, context: Context, root_value: None, request_data: GraphQLRequestData
    ) -> ExecutionResult:
        try:
            return await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=_OVER_HTTP,
                operation_extensions=request_data.extensions,
            )
        except InvalidOperationTypeError:  # the only type left out over HTTP: subscriptions
            raise RequestRefused(
                SUBSCRIPTION_OVER_HTTP,
                "subscriptions run over the websocket at /graphql (graphql-transport-ws), "
                "not over HTTP",
            ) from None
        except CannotGetOperationTypeError as error:
            raise HTTPException(400, error.as_http_error_reason()) from error

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = response_media_type(request.headers.get("accept", ""))
        request.scope[_SUB_RESPONSE_KEY] = sub_response
        return sub_response

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        """A request error (nothing executed: parse, validation, variables) has no `data`
        entry, and with application/graphql-response+json it is a 400 (the spec's rules)."""
        processed = await super().process_result(request, result)
        if not _is_request_error(result):
            return processed
        processed.pop("data", None)
        sub_response = request.scope.get(_SUB_RESPONSE_KEY)
        if sub_response is not None and sub_response.media_type == GRAPHQL_RESPONSE:
            sub_response.status_code = 400
        return processed

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        response = Response(
            self.encode_json(response_data),
            status_code=sub_response.status_code or 200,
            media_type=sub_response.media_type or JSON,
        )
        response.headers.raw.extend(
            (name, value) for name, value in sub_response.headers.raw if name != b"content-type"
        )
        if sub_response.background:
            response.background = sub_response.background
        return response

    async def _admit(self, request: Request, scope: Scope, unit: RequestUnit) -> Response | None:
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

        async def authenticate(
            authorization: str | None, client: str | None
        ) -> Principal | Throttled | None:
            return await self.authenticator(authorization, client, unit.work)

        admitted = await admit(
            authenticate,
            self.resources.rate_limiter,
            settings.rate_limit_per_minute,
            request.headers.get("authorization"),
            _client_address(request),
        )
        if isinstance(admitted, Refusal):
            return _refusal(admitted.status, admitted.code, admitted.message, admitted.headers)
        scope[_PRINCIPAL_KEY] = admitted
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
            unit=request.scope.get(_UNIT_KEY),
        )
