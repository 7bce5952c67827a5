"""Options of the service itself: where it listens, its database and broker, request limits."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from powermemo_gql.settings.fields import seconds


class ServerOptions(BaseModel):
    """Where the server listens, its database and broker, and how long it waits for them."""

    mode: Literal["development", "production"] = Field(
        default="development",
        description=(
            "development turns GraphiQL on and lets `serve` generate a root token; "
            "production requires POWERMEMO_ROOT_TOKEN and turns GraphiQL off."
        ),
    )
    host: str = Field(default="127.0.0.1", description="Address `serve` binds to.")
    port: int = Field(default=8019, ge=1, le=65535, description="Port `serve` listens on.")
    database_url: str = Field(
        default="sqlite+aiosqlite:///./powermemo.db",
        description=(
            "SQLAlchemy async URL: sqlite+aiosqlite:///path.db (embedded default) "
            "or postgresql+asyncpg://user@host:5432/db."
        ),
    )
    database_pool_size: int = Field(
        default=10,
        ge=1,
        le=200,
        description="Connections kept open per server process (PostgreSQL only).",
    )
    database_pool_timeout: float = seconds(
        5.0,
        most=300,
        description=(
            "Seconds a request waits for a free connection (PostgreSQL only) before it fails "
            "with the code DATABASE_BUSY."
        ),
    )
    database_connect_timeout: float = seconds(
        5.0,
        most=300,
        description=(
            "Seconds to open a PostgreSQL connection (TCP, TLS and login) before the request "
            "fails with the code DATABASE_UNAVAILABLE."
        ),
    )
    database_statement_timeout: float = seconds(
        30.0,
        most=3600,
        description=(
            "Seconds one PostgreSQL statement may take: the server cancels it "
            "(statement_timeout; the request fails with DATABASE_BUSY), and a second later "
            "the client stops waiting on a server gone silent (DATABASE_UNAVAILABLE)."
        ),
    )
    readiness_timeout: float = seconds(
        2.0,
        most=60,
        description=(
            "Seconds /readyz and the health query wait for the database and Redis, on a "
            "connection of their own, before reporting them down."
        ),
    )
    redis_url: str | None = Field(
        default=None,
        description=(
            "redis://host:6379/0 to carry pub/sub between server instances; "
            "empty means the in-process broker (single instance)."
        ),
    )
    redis_connect_timeout: float = seconds(
        2.0,
        most=60,
        description="Seconds to open a Redis connection before the attempt counts as failed.",
    )
    redis_timeout: float = seconds(
        2.0,
        most=60,
        description=(
            "Seconds one Redis command (publish, rate-limit count) may take, and how long the "
            "subscriber connection waits for the answer to its PING before it counts as broken."
        ),
    )
    redis_ping_interval: float = seconds(
        10.0,
        most=600,
        description=(
            "Seconds of silence after which the subscriber connection sends a PING: a Redis "
            "that froze is found within this plus redis_timeout, and subscriptions end "
            "with an error rather than wait forever."
        ),
    )
    feed_catch_up_seconds: float = seconds(
        2.0,
        most=60,
        description=(
            "Seconds between checks, while anybody follows a user's changes, of every followed "
            "user's change counter (one query per instance): a notification lost on the "
            "broker delays a change by at most this long."
        ),
    )
    migrate_on_startup: bool = Field(
        default=True,
        description="Apply pending database migrations when the server starts.",
    )
    graphiql: bool | None = Field(
        default=None,
        description="Serve GraphiQL at /graphql; empty means on in development, off in production.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Lowest level of log lines printed."
    )


class LimitsOptions(BaseModel):
    """What one request, socket or key may cost."""

    introspection: bool | None = Field(
        default=None,
        description="Allow schema introspection; empty means on in development, off in production.",
    )
    max_query_depth: int = Field(
        default=12, ge=2, le=100, description="Deepest selection nesting a query may have."
    )
    max_query_aliases: int = Field(
        default=30, ge=1, le=1000, description="Aliases one document may use."
    )
    max_query_tokens: int = Field(
        default=2000, ge=100, le=1_000_000, description="GraphQL tokens one document may have."
    )
    max_query_directives: int = Field(
        default=20, ge=0, le=1000, description="Directives one document may use."
    )
    max_query_fields: int = Field(
        default=2000,
        ge=10,
        le=100_000,
        description=(
            "Fields one operation may select once its fragments are expanded (each spread "
            "counted every time); validation work grows with it."
        ),
    )
    max_query_length: int = Field(
        default=100_000,
        ge=1000,
        le=10_000_000,
        description="Characters one GraphQL document may have (the body limit is for variables).",
    )
    max_batch_operations: int = Field(
        default=0,
        ge=0,
        le=100,
        description="Operations one batched POST (a JSON array) may carry; 0 turns batching off.",
    )
    max_request_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        le=256 * 1024 * 1024,
        description="Largest request body accepted (images up to 5 MiB travel as base64).",
    )
    rate_limit_per_minute: int = Field(
        default=1200,
        ge=0,
        description=(
            "Requests per minute per API key (the root token is not limited); 0 turns it off. "
            "Counted in Redis when redis_url is set, so the limit holds across instances."
        ),
    )
    ws_max_subscriptions: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="Subscriptions one websocket connection may run at once.",
    )
    ws_connection_init_timeout: float = seconds(
        10.0,
        most=300,
        description="Seconds a new websocket has to send connection_init before it is closed.",
    )
    ws_max_connections_per_key: int = Field(
        default=100,
        ge=1,
        le=100_000,
        description=(
            "Websockets one API key may hold open on each instance; more are closed with 4429."
        ),
    )
    ws_max_connections: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description=(
            "Websockets one instance holds open at once, authenticated or not; more are "
            "closed with 1013 (try again later)."
        ),
    )
    api_key_cache_seconds: float = seconds(
        30.0,
        most=30,
        zero=True,
        description=(
            "Seconds an instance remembers an API key that worked, so that requests skip the "
            "key lookup. Revoking a key drops it at once on every instance told through the "
            "broker; this bounds how long a revocation nobody announced (the CLI on a "
            "deployment without Redis) can go unnoticed. 0 looks every key up."
        ),
    )
    auth_failures_per_minute: int = Field(
        default=30,
        ge=0,
        description=(
            "Failed authentications one client address may make per minute; then it gets "
            "429 (websockets: close 4429) until the minute ends. 0 turns it off."
        ),
    )
