"""The HTTP side of GraphQL: the request body read strictly, the response media type chosen.

Every body a client can get wrong is refused as `RequestRefused` (the view answers 400 in the
GraphQL error shape), never left to raise an AttributeError or RecursionError further on.
"""

from __future__ import annotations

import json
from typing import Any

from strawberry.http import GraphQLRequestData

INVALID_JSON = "INVALID_JSON"
INVALID_REQUEST = "INVALID_REQUEST"
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
SUBSCRIPTION_OVER_HTTP = "SUBSCRIPTION_OVER_HTTP"
# Deeper JSON than any input of the API needs; code further on (coercion, the storable-text
# check, the response encoder) recurses into values.
MAX_JSON_DEPTH = 100

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"


class RequestRefused(Exception):
    """A client mistake, answered in the GraphQL error shape with this status and code."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _no_constants(name: str) -> Any:
    raise RequestRefused(INVALID_JSON, f"{name} is not JSON")


def _depth_over(value: object, limit: int) -> bool:
    """Whether containers nest deeper than `limit`, looked at level by level (no recursion)."""
    level: list[object] = [value]
    for _ in range(limit):
        inner: list[object] = []
        for container in level:
            if isinstance(container, dict):
                inner.extend(v for v in container.values() if isinstance(v, dict | list))
            elif isinstance(container, list):
                inner.extend(v for v in container if isinstance(v, dict | list))
        if not inner:
            return False
        level = inner
    return True


def decode_json(raw: bytes) -> object:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestRefused(INVALID_JSON, "the body is not valid UTF-8") from None
    try:
        # Integers past 4,300 digits raise ValueError (CPython's guard against slow parsing).
        value = json.loads(text, parse_constant=_no_constants)
    except RecursionError:
        raise RequestRefused(INVALID_JSON, f"JSON nested deeper than {MAX_JSON_DEPTH}") from None
    except ValueError as error:
        raise RequestRefused(INVALID_JSON, f"the body is not JSON: {error}") from None
    if _depth_over(value, MAX_JSON_DEPTH):
        raise RequestRefused(INVALID_JSON, f"JSON nested deeper than {MAX_JSON_DEPTH}")
    return value


def _request(item: object, where: str) -> GraphQLRequestData:
    if not isinstance(item, dict):
        raise RequestRefused(INVALID_REQUEST, f"{where} must be a JSON object with a query")
    query, variables = item.get("query"), item.get("variables")
    operation_name, extensions = item.get("operationName"), item.get("extensions")
    if not isinstance(query, str):
        raise RequestRefused(INVALID_REQUEST, f"{where}: `query` must be a string")
    if not isinstance(variables, dict | None):
        raise RequestRefused(INVALID_REQUEST, f"{where}: `variables` must be an object or null")
    if not isinstance(operation_name, str | None):
        raise RequestRefused(INVALID_REQUEST, f"{where}: `operationName` must be a string or null")
    if not isinstance(extensions, dict | None):
        raise RequestRefused(INVALID_REQUEST, f"{where}: `extensions` must be an object or null")
    return GraphQLRequestData(
        query=query, variables=variables, operation_name=operation_name, extensions=extensions
    )


def graphql_requests(raw: bytes, max_batch: int) -> GraphQLRequestData | list[GraphQLRequestData]:
    """One request, or a batch (a JSON array) when batching is on (`max_batch` > 0)."""
    body = decode_json(raw)
    if not isinstance(body, list):
        return _request(body, "the body")
    if max_batch == 0:
        raise RequestRefused(INVALID_REQUEST, "batched requests (a JSON array) are off")
    if not 0 < len(body) <= max_batch:
        raise RequestRefused(INVALID_REQUEST, f"a batch holds 1 to {max_batch} requests")
    return [_request(item, f"request {i}") for i, item in enumerate(body)]


def response_media_type(accept: str) -> str:
    """application/graphql-response+json when the client accepts it (the GraphQL-over-HTTP
    spec's own type), else application/json, which every client before it expects."""
    for part in accept.split(","):
        media_type, *parameters = (p.strip().lower() for p in part.split(";"))
        if media_type == GRAPHQL_RESPONSE and not any(
            p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in parameters
        ):
            return GRAPHQL_RESPONSE
    return JSON
