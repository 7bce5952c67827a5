"""The health query: what /readyz checks, readable over GraphQL."""

from __future__ import annotations

import time

import strawberry

from powermemo_gql import __version__
from powermemo_gql.graphql.context import Context

Info = strawberry.Info[Context, None]


@strawberry.type
class Health:
    ok: bool = strawberry.field(description="True when every dependency answers.")
    database: bool
    pubsub: bool = strawberry.field(description="Redis, or the in-process broker.")
    version: str
    uptime_seconds: float


@strawberry.type
class HealthQuery:
    @strawberry.field
    async def health(self, info: Info) -> Health:
        resources = info.context.resources
        database = await resources.database_ok()
        pubsub = await resources.pubsub.ping()
        return Health(
            ok=database and pubsub,
            database=database,
            pubsub=pubsub,
            version=__version__,
            uptime_seconds=round(time.monotonic() - resources.started_at, 3),
        )
