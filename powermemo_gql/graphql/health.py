"""The health query: what /readyz checks, readable over GraphQL."""

from __future__ import annotations

import asyncio
import enum
import time

import strawberry

from powermemo_gql import __version__
from powermemo_gql.graphql.context import Info


@strawberry.enum(description="How the database answers a readiness check.")
class DatabaseStatus(enum.Enum):
    OK = strawberry.enum_value("ok", description="It answers, and a pooled connection is free.")
    BUSY = strawberry.enum_value(
        "busy",
        description="It answers, but every connection of the request pool is in use.",
    )
    DOWN = strawberry.enum_value("down", description="It does not answer within readiness_timeout.")


@strawberry.type(description="Whether the server's dependencies answer: what /readyz checks.")
class Health:
    ok: bool = strawberry.field(description="True when every dependency answers.")
    database: bool = strawberry.field(description="The database answers (busy or not).")
    database_status: DatabaseStatus = strawberry.field(
        description="ok, busy (the request pool is full) or down."
    )
    pubsub: bool = strawberry.field(description="Redis, or the in-process broker.")
    version: str = strawberry.field(description="The server's version.")
    uptime_seconds: float = strawberry.field(
        description="Seconds since this server process started, to the millisecond."
    )


@strawberry.type
class HealthQuery:
    @strawberry.field(description="Whether the database and the message broker answer.")
    async def health(self, info: Info) -> Health:
        resources = info.context.resources
        status, pubsub = await asyncio.gather(resources.database_status(), resources.pubsub_ok())
        database = status != "down"
        return Health(
            ok=database and pubsub,
            database=database,
            database_status=DatabaseStatus(status),
            pubsub=pubsub,
            version=__version__,
            uptime_seconds=round(time.monotonic() - resources.started_at, 3),
        )
