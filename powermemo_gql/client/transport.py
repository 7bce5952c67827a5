"""gql's httpx transports, made to raise the typed error of a refused request.

A request refused before GraphQL runs (401, 429, 413, 503, ...) still has a GraphQL-shaped
body, but its status and its `Retry-After` header say more than the body; gql keeps only
the body. These subclasses look at the response first, inside the call that received it,
so concurrent requests cannot mix up each other's headers.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any, Protocol

from gql.transport.httpx import HTTPXAsyncTransport, HTTPXTransport
from graphql import ExecutionResult

from powermemo_gql.client.errors import PowermemoError, from_graphql_errors, from_http_status


def _retry_after(value: str | None) -> float | None:
    """`Retry-After` in seconds: delta-seconds, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Response(Protocol):
    """What is read of a response: httpx's, or httpx2's, which gql uses when installed."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Any: ...
    @property
    def text(self) -> str: ...
    @property
    def reason_phrase(self) -> str: ...
    def json(self) -> Any: ...


def raise_refusal(response: Response) -> None:
    """Raise the typed error of a response with an error status; nothing for the others."""
    error = refusal(response)
    if error is not None:
        raise error


def refusal(response: Response) -> PowermemoError | None:
    """The typed error of a response with an error status, else None."""
    if response.status_code < 400:
        return None
    retry_after = _retry_after(response.headers.get("retry-after"))
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("errors"):
        return from_graphql_errors(
            body["errors"], status=response.status_code, retry_after=retry_after
        )
    message = response.text[:200] or response.reason_phrase
    return from_http_status(response.status_code, message, retry_after=retry_after)


class AsyncHTTPTransport(HTTPXAsyncTransport):
    # `Any`: the response is httpx's or httpx2's, whichever gql imported.
    def _prepare_result(self, response: Any) -> ExecutionResult:
        raise_refusal(response)
        return super()._prepare_result(response)


class SyncHTTPTransport(HTTPXTransport):
    # `Any`: the response is httpx's or httpx2's, whichever gql imported.
    def _prepare_result(self, response: Any) -> ExecutionResult:
        raise_refusal(response)
        return super()._prepare_result(response)
