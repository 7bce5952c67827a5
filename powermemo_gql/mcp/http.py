"""/mcp: the MCP server over streamable HTTP, behind the same bearer API keys as /graphql.

Stateless: every HTTP request is authenticated on its own (a revoked key is refused at its
next request, and no session can be carried over to another key) and counts against the
key's rate limit; any instance can answer any request."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from powermemo_gql.core.db import database_trouble
from powermemo_gql.mcp.server import PROJECT_SCOPE_KEY, build_server
from powermemo_gql.projects.auth import bearer_token
from powermemo_gql.projects.authenticator import Authenticator, Throttled
from powermemo_gql.resources import Resources

logger = logging.getLogger(__name__)


def _refusal(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    # JSON-RPC's shape for an error outside any request (id null), with our code.
    error = {"code": -32001, "message": message, "data": {"code": code}}
    return JSONResponse(
        {"jsonrpc": "2.0", "id": None, "error": error}, status_code=status, headers=headers
    )


class MCPEndpoint:
    """The ASGI app at /mcp; `lifespan()` must run while it serves (the SDK's task group)."""

    def __init__(self, resources: Resources, authenticator: Authenticator) -> None:
        self.resources = resources
        self.authenticator = authenticator
        self.server: MCPServer = build_server(resources)
        # Builds the SDK's session manager, which we call directly (no sub-app to mount).
        self.server.streamable_http_app(
            stateless_http=True,
            json_response=True,
            max_request_body_size=resources.settings.max_request_bytes,
            # Rebinding protection guards servers that trust any local caller; this one
            # needs a bearer key on every request and serves whatever host it is deployed at.
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        async with self.server.session_manager.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        refusal = await self._admit(request)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.server.session_manager.handle_request(scope, receive, send)

    async def _admit(self, request: Request) -> JSONResponse | None:
        """Key, throttle and rate limit as /graphql checks them; None admits."""
        authorization = request.headers.get("authorization")
        client = request.client.host if request.client else None
        try:
            principal = await self.authenticator(authorization, client)
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
        if principal.project_id is None or principal.api_key_id is None:
            return _refusal(
                403, "FORBIDDEN", "the MCP tools use a project's API key, not the root token"
            )
        settings = self.resources.settings
        verdict = await self.resources.rate_limiter.hit(str(principal.api_key_id))
        if not verdict.allowed:
            return _refusal(
                429,
                "RATE_LIMITED",
                f"more than {settings.rate_limit_per_minute} requests this minute",
                {"Retry-After": str(verdict.retry_after)},
            )
        request.scope[PROJECT_SCOPE_KEY] = principal.project_id
        return None
