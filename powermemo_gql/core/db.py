"""Engine and session factory. The only module (with app.py) that knows the database URL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool, QueuePool

from powermemo_gql.settings import Settings

SessionFactory = async_sessionmaker[AsyncSession]

# SQLSTATE query_canceled: what statement_timeout raises.
STATEMENT_CANCELLED = "57014"


def create_engine(settings: Settings) -> AsyncEngine:
    url = settings.database_url
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        return engine
    if url.startswith("postgresql+asyncpg"):
        engine = create_async_engine(
            url,
            pool_size=settings.database_pool_size,
            max_overflow=0,
            pool_timeout=settings.database_pool_timeout,
            # No pre-ping: it costs every checkout a round trip. _drop_if_closed catches the
            # connections the server closed; one that died silently fails its request with
            # DATABASE_UNAVAILABLE and is invalidated, so the next request gets a fresh one.
            pool_pre_ping=False,
            connect_args=_asyncpg_timeouts(
                settings.database_connect_timeout, settings.database_statement_timeout
            ),
        )
        event.listen(engine.sync_engine.pool, "checkout", _drop_if_closed)
        return engine
    raise ValueError(
        "database_url must start with sqlite+aiosqlite:// or postgresql+asyncpg:// "
        f"(got {url.split(':', 1)[0]}://...)"
    )


def create_probe_engine(settings: Settings) -> AsyncEngine:
    """For readiness checks: no pool (a fresh connection each time, never one a request
    needs, so a busy pool is not taken for an outage) and the short readiness timeouts."""
    url = settings.database_url
    timeout = settings.readiness_timeout
    if url.startswith("sqlite"):
        engine = create_async_engine(url, poolclass=NullPool, connect_args={"timeout": timeout})
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        return engine
    return create_async_engine(
        url, poolclass=NullPool, connect_args=_asyncpg_timeouts(timeout, timeout)
    )


def create_migration_engine(settings: Settings) -> AsyncEngine:
    """For schema migrations: no statement timeout (building an index on a large table may
    take longer than any request should), the connect timeout all the same."""
    if not settings.database_url.startswith("postgresql+asyncpg"):
        return create_engine(settings)
    return create_async_engine(
        settings.database_url,
        poolclass=NullPool,
        connect_args=_asyncpg_timeouts(settings.database_connect_timeout, None),
    )


def _asyncpg_timeouts(connect: float, statement: float | None) -> dict[str, Any]:
    # The server cancels a long statement (a clean error, the connection stays usable); the
    # client stops waiting a second later, for a server that went silent and cancels nothing.
    if statement is None:
        return {"timeout": connect, "server_settings": {"statement_timeout": "0"}}
    return {
        "timeout": connect,
        "command_timeout": statement + 1,
        "server_settings": {"statement_timeout": str(max(1, round(statement * 1000)))},
    }


def pool_exhausted(engine: AsyncEngine) -> bool:
    """Every connection of the request pool is in use (PostgreSQL: the pool has no overflow;
    SQLite opens connections as needed and is never reported busy)."""
    pool = engine.pool
    if engine.dialect.name != "postgresql" or not isinstance(pool, QueuePool):
        return False
    return pool.checkedout() >= pool.size()


def _drop_if_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection whose socket the server closed (a restart, a terminated backend,
    idle_session_timeout) is known closed to asyncpg without a round trip; raising here
    makes the pool discard it and hand out another (SQLAlchemy retries checkout)."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    is_closed = getattr(driver, "is_closed", None)
    if callable(is_closed) and is_closed():
        raise DisconnectionError("the server closed this pooled connection")


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # SQLite leaves foreign keys (and so ON DELETE CASCADE) off unless asked.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def database_trouble(error: BaseException | None) -> tuple[str, str] | None:
    """(code, message) for failures of the database itself, which a retry may cure:
    no free connection in the pool, or the server unreachable or restarting."""
    # The server cancelled a statement that ran past database_statement_timeout: it
    # answers, but too slowly (load or locks).
    if isinstance(error, PoolTimeout) or statement_cancelled(error):
        return "DATABASE_BUSY", "The database is busy; try again shortly."
    if isinstance(error, DBAPIError) and (
        error.connection_invalidated
        or isinstance(error, (OperationalError, InterfaceError))
        or _server_unavailable(error.orig)
    ):
        return "DATABASE_UNAVAILABLE", "The database is unavailable; try again shortly."
    if isinstance(error, (ConnectionError, TimeoutError)) or (
        isinstance(error, OSError) and error.errno is not None
    ):
        return "DATABASE_UNAVAILABLE", "The database is unavailable; try again shortly."
    return None


def _server_unavailable(driver_error: BaseException | None) -> bool:
    """A driver error that says the server is away: connection exceptions (SQLSTATE 08...),
    shutdown and restart (57P01-57P03), or the socket itself failing."""
    for candidate in (driver_error, getattr(driver_error, "__cause__", None)):
        if isinstance(candidate, OSError):
            return True
        state = _sqlstate(candidate)
        if state is not None and (state.startswith("08") or state.startswith("57P")):
            return True
    return False


def statement_cancelled(error: BaseException | None) -> bool:
    """The server cancelled the statement (statement_timeout): through SQLAlchemy, or
    straight from the driver (core/driver_path.py)."""
    driver_error = error.orig if isinstance(error, DBAPIError) else error
    return _sqlstate(driver_error) == STATEMENT_CANCELLED


def _sqlstate(driver_error: BaseException | None) -> str | None:
    state = getattr(driver_error, "sqlstate", None) or getattr(driver_error, "pgcode", None)
    return state if isinstance(state, str) else None


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    # expire_on_commit=False: rows returned by a service stay readable after commit.
    return async_sessionmaker(engine, expire_on_commit=False)
