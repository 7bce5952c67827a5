"""What the clients share: endpoints, gql clients over HTTP and websockets, requests, and
turning gql's exceptions into ours."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from gql import Client, GraphQLRequest
from gql.transport import AsyncTransport as GqlAsyncTransport
from gql.transport import Transport as GqlTransport
from gql.transport.exceptions import (
    TransportClosed,
    TransportConnectionFailed,
    TransportProtocolError,
    TransportQueryError,
    TransportServerError,
)
from gql.transport.websockets import WebsocketsTransport
from graphql import GraphQLError, GraphQLSyntaxError

from powermemo_gql.client.errors import (
    ConnectionFailedError,
    PowermemoError,
    from_graphql_errors,
    from_http_status,
)
from powermemo_gql.client.schema import bundled_schema
from powermemo_gql.client.transport import AsyncHTTPTransport, SyncHTTPTransport

DEFAULT_TIMEOUT = 120.0  # a request; flush(wait=True) waits for the LLM
CONNECT_TIMEOUT = 10.0  # a websocket's connection and its connection_ack


class AsyncClosing:
    """`async with` ends in `aclose()`, however the block ends."""

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def endpoints(url: str) -> tuple[str, str]:
    """The HTTP and websocket URLs of the GraphQL endpoint, from the server's base URL or
    the endpoint itself: `http://host:8019` and `http://host:8019/graphql` are the same."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"expected an http:// or https:// URL, got {url!r}")
    path = parts.path.rstrip("/")
    if not path.endswith("/graphql"):
        path = f"{path}/graphql"
    http = urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))
    ws_scheme = "wss" if parts.scheme == "https" else "ws"
    return http, urlunsplit((ws_scheme, parts.netloc, path, parts.query, ""))


def auth_headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def gql_client(
    transport: GqlAsyncTransport | GqlTransport, validate: bool, timeout: float | None
) -> Client:
    """A gql client that validates every document against the bundled schema (if any)."""
    schema = bundled_schema() if validate else None
    return Client(transport=transport, schema=schema, execute_timeout=timeout)


def http_client(
    transport: type[AsyncHTTPTransport | SyncHTTPTransport],
    url: str,
    api_key: str,
    timeout: float | None,
    validate: bool,
) -> Client:
    """A gql client of the endpoint `url` over httpx, sending `api_key` as a bearer token."""
    http = transport(url=url, headers=auth_headers(api_key), timeout=timeout)
    return gql_client(http, validate, timeout)


def ws_client(ws_url: str, api_key: str, *, connect_timeout: float, validate: bool) -> Client:
    """A gql client of one graphql-transport-ws socket, authenticated in connection_init
    (no execute timeout: a subscription lasts as long as it is followed)."""
    socket = WebsocketsTransport(
        url=ws_url,
        init_payload=auth_headers(api_key),
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        connect_timeout=connect_timeout,
        ack_timeout=connect_timeout,
    )
    return gql_client(socket, validate, None)


def document_request(document: str, variables: Mapping[str, Any] | None) -> GraphQLRequest:
    """`execute`'s request: the document parsed here, so that a syntax error raises ours
    (GRAPHQL_PARSE_FAILED) before anything is sent."""
    with translated():
        return GraphQLRequest(document, variable_values=dict(variables or {}))


def translate(error: Exception) -> PowermemoError | None:
    """Our exception for one gql (or timeout) raised, or None for anything else."""
    if isinstance(error, GraphQLSyntaxError):  # found locally, nothing was sent
        return PowermemoError("GRAPHQL_PARSE_FAILED", error.message)
    if isinstance(error, GraphQLError):  # failed validation against the bundled schema
        return PowermemoError("GRAPHQL_VALIDATION_FAILED", error.message)
    if isinstance(error, TransportQueryError):
        return from_graphql_errors(error.errors)
    if isinstance(error, TransportServerError):  # an HTTP status, or a websocket refusal
        if error.code is None:
            return PowermemoError("SERVER_ERROR", str(error))
        return from_http_status(error.code, str(error))
    if isinstance(error, TransportConnectionFailed | TransportClosed):
        return ConnectionFailedError("CONNECTION_FAILED", str(error) or type(error).__name__)
    if isinstance(error, TransportProtocolError):
        return PowermemoError("PROTOCOL_ERROR", str(error))
    if isinstance(error, TimeoutError):
        return ConnectionFailedError("TIMEOUT", "the server did not answer in time")
    return None


@contextmanager
def translated() -> Iterator[None]:
    """Re-raise gql's exceptions as ours (the original stays as `__cause__`)."""
    try:
        yield
    except PowermemoError:
        raise
    except Exception as error:
        ours = translate(error)
        if ours is None:
            raise
        raise ours from error
