"""Python client of Powermemo GQL, on gql: `AsyncPowermemo` (asyncio, with live
subscriptions) and `Powermemo` (blocking). See docs/client.md."""

from powermemo_gql.client.aio import AsyncPowermemo
from powermemo_gql.client.errors import (
    AlreadyExistsError,
    AuthenticationError,
    ConnectionFailedError,
    ForbiddenError,
    InvalidInputError,
    LLMUnavailableError,
    NotFoundError,
    PowermemoError,
    RateLimitedError,
)
from powermemo_gql.client.models import (
    Blob,
    ChangeKind,
    Context,
    Event,
    EventTag,
    Flush,
    FlushOutcome,
    FlushResult,
    FlushStatus,
    FlushTrigger,
    ProfileChange,
    ProfileEntry,
    ProfileRevision,
    SearchHit,
    SearchResults,
    User,
)
from powermemo_gql.client.subscriptions import ProfileUpdates, Retry
from powermemo_gql.client.sync import Powermemo

__all__ = [
    "AlreadyExistsError",
    "AsyncPowermemo",
    "AuthenticationError",
    "Blob",
    "ChangeKind",
    "ConnectionFailedError",
    "Context",
    "Event",
    "EventTag",
    "Flush",
    "FlushOutcome",
    "FlushResult",
    "FlushStatus",
    "FlushTrigger",
    "ForbiddenError",
    "InvalidInputError",
    "LLMUnavailableError",
    "NotFoundError",
    "Powermemo",
    "PowermemoError",
    "ProfileChange",
    "ProfileEntry",
    "ProfileRevision",
    "ProfileUpdates",
    "RateLimitedError",
    "Retry",
    "SearchHit",
    "SearchResults",
    "User",
]
