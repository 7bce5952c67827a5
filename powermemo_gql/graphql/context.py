"""The typed context of every resolver: session factory, caller, per-operation loaders."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import strawberry
from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from powermemo_gql.core.request_unit import RequestUnit
from powermemo_gql.core.uow import unit_of_work
from powermemo_gql.projects.auth import Principal
from powermemo_gql.resources import Resources

if TYPE_CHECKING:
    from powermemo_gql.graphql.loaders import Loaders


@dataclass
class Context:
    request: Request | WebSocket
    response: Response | None
    resources: Resources
    principal: Principal
    # graphql-transport-ws: the connection_init payload (strawberry sets it).
    connection_params: dict[str, object] | None = None
    # An HTTP request's one session (core/request_unit.py). A websocket serves operations for
    # hours, so there each block is a unit of work of its own.
    unit: RequestUnit | None = None
    _loaders: Loaders | None = None

    @asynccontextmanager
    async def uow(self) -> AsyncIterator[AsyncSession]:
        if self.unit is not None:
            async with self.unit.work() as session:
                yield session
            return
        async with unit_of_work(self.resources.sessions) as session:
            yield session

    @property
    def loaders(self) -> Loaders:
        """The DataLoaders of the current operation (see start_operation)."""
        from powermemo_gql.graphql.loaders import Loaders

        if self._loaders is None:
            self._loaders = Loaders(self)
        return self._loaders

    def start_operation(self) -> None:
        """Forget the DataLoaders, and their caches, of earlier operations: over websockets
        one context serves a whole connection. (Operations running at once on one socket
        may then batch less, never read stale data.)"""
        self._loaders = None

    @property
    def project_id(self) -> uuid.UUID:
        """The caller's project; user data is only reachable through a project API key."""
        if self.principal.project_id is None:
            raise GraphQLError(
                "This operation reads or writes a project's data: authenticate with that "
                "project's API key, not the root token.",
                extensions={"code": "FORBIDDEN"},
            )
        return self.principal.project_id

    def require_root(self) -> None:
        if not self.principal.is_root:
            raise GraphQLError(
                "Only the root token may manage projects and API keys.",
                extensions={"code": "FORBIDDEN"},
            )


# The `info` of every resolver.
Info = strawberry.Info[Context, None]
