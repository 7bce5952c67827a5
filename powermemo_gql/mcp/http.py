"""/mcp: the MCP server over streamable HTTP, behind the same bearer API keys as /graphql.

Stateless: every HTTP request is authenticated on its own (a revoked key is refused at its
next request, and no session can be carried over to another key) and counts against the
key's rate limit; any instance can answer any request.

The SDK is imported and its session manager started at the first /mcp request, not at
start-up: importing it costs a server that never serves MCP a quarter more start time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from powermemo_gql.projects.admission import Refusal, admit
from powermemo_gql.projects.authenticator import Authenticator
from powermemo_gql.resources import Resources

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

# Where the endpoint leaves the caller's project for the tools (mcp/server.py reads it).
PROJECT_SCOPE_KEY = "powermemo.mcp_project"

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
    """The ASGI app at /mcp; `lifespan()` must wrap the time it serves."""

    def __init__(self, resources: Resources, authenticator: Authenticator) -> None:
        self.resources = resources
        self.authenticator = authenticator
        self._server: MCPServer | None = None
        self._starting = asyncio.Lock()
        self._stop = asyncio.Event()
        self._running: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if self._running is not None:
                self._stop.set()
                await self._running

    async def _started(self) -> MCPServer:
        async with self._starting:
            if self._server is None:
                from mcp.server.transport_security import TransportSecuritySettings

                from powermemo_gql.mcp.server import build_server

                server = build_server(self.resources)
                # Builds the SDK's session manager, called directly (no sub-app to mount).
                server.streamable_http_app(
                    stateless_http=True,
                    json_response=True,
                    max_request_body_size=self.resources.settings.max_request_bytes,
                    # Rebinding protection guards servers that trust any local caller; this
                    # one needs a key on every request, at whatever host it is deployed.
                    transport_security=TransportSecuritySettings(
                        enable_dns_rebinding_protection=False
                    ),
                )
                running = asyncio.get_running_loop().create_future()
                self._running = asyncio.create_task(self._run(server, running))
                await running
                self._server = server
            return self._server

    async def _run(self, server: MCPServer, running: asyncio.Future[None]) -> None:
        """The session manager's task group lives in this task, until the lifespan ends."""
        try:
            async with server.session_manager.run():
                running.set_result(None)
                await self._stop.wait()
        except BaseException as exc:
            if not running.done():
                running.set_exception(exc)
            raise

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        refusal = await self._admit(request)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        server = await self._started()
        await server.session_manager.handle_request(scope, receive, send)

    async def _admit(self, request: Request) -> JSONResponse | None:
        """Key, throttle and rate limit as /graphql checks them; None admits."""
        admitted = await admit(
            self.authenticator,
            self.resources.rate_limiter,
            self.resources.settings.rate_limit_per_minute,
            request.headers.get("authorization"),
            request.client.host if request.client else None,
        )
        if isinstance(admitted, Refusal):
            return _refusal(admitted.status, admitted.code, admitted.message, admitted.headers)
        if admitted.project_id is None:  # the root token: nothing of a project's to serve
            return _refusal(
                403, "FORBIDDEN", "the MCP tools use a project's API key, not the root token"
            )
        request.scope[PROJECT_SCOPE_KEY] = admitted.project_id
        return None
