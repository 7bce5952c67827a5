"""The change feed over GraphQL: user.changes (paginated) and the profileUpdated subscription."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError

from powermemo_gql.changes.feed import BrokerUnavailable, FeedInterrupted
from powermemo_gql.changes.models import Change as ChangeRow
from powermemo_gql.changes.models import ChangeKind as ChangeKindEnum
from powermemo_gql.changes.repository import CHANGES_IN_ORDER
from powermemo_gql.core.pagination import decode_cursor, encode_cursor
from powermemo_gql.errors import InvalidInput, NotFound
from powermemo_gql.graphql.context import Info
from powermemo_gql.graphql.enums import described_enum
from powermemo_gql.graphql.errors import bad_user_input
from powermemo_gql.graphql.node import optional_global_id
from powermemo_gql.graphql.profiles import ProfileSource
from powermemo_gql.profiles.models import ProfileSource as ProfileSourceEnum
from powermemo_gql.users.service import UserService

ChangeKind = described_enum(
    ChangeKindEnum,
    name="ChangeKind",
    description="What kind of change to a user's memory.",
    values={
        "ENTRY_ADDED": "A profile entry was added: entryId, topic, subTopic, newValue.",
        "ENTRY_UPDATED": "A profile entry's content changed: oldValue and newValue.",
        "ENTRY_DELETED": "A profile entry was deleted: oldValue is its last content.",
        "BUFFER_FLUSHED": "A flush finished: flushId, and eventId the event it wrote.",
        "FLUSH_FAILED": "A flush failed: flushId and error.",
        "EVENT_UPDATED": (
            "An event was edited: eventId; oldValue and newValue are its summary before and after."
        ),
        "EVENT_DELETED": "An event was deleted: eventId; oldValue is its summary.",
    },
)

# The arguments every subscription takes.
UserIdArgument = Annotated[
    strawberry.ID,
    strawberry.argument(description="The app's id of the user (the one given to createUser)."),
]
SinceArgument = Annotated[
    str | None,
    strawberry.argument(
        description=(
            "A change cursor (ProfileChange.cursor or User.changesCursor): the changes after "
            "it are sent first, then live ones. Left out: changes from now on."
        )
    ),
]


def change_cursor(seq: int) -> str:
    """A cursor at the user's change number `seq`: it tells nothing about other users."""
    return encode_cursor(CHANGES_IN_ORDER.tag, seq, seq)


@strawberry.type(description="One change to a user's memory, in the order it was committed.")
class ProfileChange:
    row: strawberry.Private[ChangeRow]

    @strawberry.field(description="Resume after this change with since: / after:.")
    def cursor(self) -> str:
        assert self.row.seq is not None  # rows read back from the database are numbered
        return change_cursor(self.row.seq)

    @strawberry.field(description="What changed.")
    def kind(self) -> ChangeKind:  # type: ignore[valid-type]
        return ChangeKindEnum(self.row.kind)

    @strawberry.field(description="The profile entry, for the ENTRY_* kinds.")
    def entry_id(self) -> strawberry.ID | None:
        return optional_global_id("ProfileEntry", self.row.entry_id)

    @strawberry.field(description="The entry's topic, for the ENTRY_* kinds.")
    def topic(self) -> str | None:
        return self.row.topic

    @strawberry.field(description="The entry's sub-topic, for the ENTRY_* kinds.")
    def sub_topic(self) -> str | None:
        return self.row.sub_topic

    @strawberry.field(description="The entry's content before the change (null when added).")
    def old_value(self) -> str | None:
        return self.row.old_value

    @strawberry.field(description="The entry's content after the change (null when deleted).")
    def new_value(self) -> str | None:
        return self.row.new_value

    @strawberry.field(description="LLM, MANUAL or IMPORT: who made the change.")
    def source(self) -> ProfileSource | None:  # type: ignore[valid-type]
        return ProfileSourceEnum(self.row.source) if self.row.source else None

    @strawberry.field(
        description=(
            "The flush it came from: for BUFFER_FLUSHED, FLUSH_FAILED, and the entry changes "
            "a flush or importProfile wrote."
        )
    )
    def flush_id(self) -> strawberry.ID | None:
        return optional_global_id("Flush", self.row.flush_id)

    @strawberry.field(
        description=(
            "The event: for the EVENT_* kinds, and the event a flush wrote for BUFFER_FLUSHED "
            "and its entry changes."
        )
    )
    def event_id(self) -> strawberry.ID | None:
        return optional_global_id("Event", self.row.event_id)

    @strawberry.field(description="Why the flush failed (FLUSH_FAILED).")
    def error(self) -> str | None:
        return self.row.error

    @strawberry.field(description="When the change was made.")
    def created_at(self) -> datetime:
        return self.row.created_at


async def _follow(
    info: Info, user_id: strawberry.ID, since: str | None, kinds: list[Any] | None
) -> AsyncGenerator[ProfileChange, None]:
    """The user's changes after `since` (or from now on), of the given kinds."""
    ctx = info.context
    try:
        async with ctx.uow() as session:
            user = await UserService(session).get(ctx.project_id, user_id)
        after = (
            decode_cursor(since, CHANGES_IN_ORDER, "since")[0]
            if since is not None
            else await ctx.resources.feed.latest(user.id)
        )
    except NotFound as error:
        raise GraphQLError(error.message, extensions={"code": "NOT_FOUND"}) from error
    except InvalidInput as error:
        raise bad_user_input(error) from error
    wanted = {ChangeKindEnum(k).value for k in kinds} if kinds else None
    try:
        async for change in ctx.resources.feed.follow(user.id, after):
            if wanted is None or change.kind in wanted:
                yield ProfileChange(row=change)
    except BrokerUnavailable as error:
        raise GraphQLError(
            "The message broker is unavailable; subscribe again shortly.",
            extensions={"code": "BROKER_UNAVAILABLE"},
        ) from error
    except FeedInterrupted as error:
        raise GraphQLError(
            "Live delivery was interrupted; subscribe again with since: the last cursor.",
            extensions={"code": "FEED_INTERRUPTED"},
        ) from error


@strawberry.type
class ChangeSubscription:
    @strawberry.subscription(
        description=(
            "Every change to the user's memory: entries added, updated, deleted (old and new "
            "values), buffers flushed, flushes failed. With since: a cursor, the changes after "
            "it come first, so a client that reconnects misses nothing."
        )
    )
    async def profile_updated(
        self,
        info: Info,
        user_id: UserIdArgument,
        since: SinceArgument = None,
        kinds: Annotated[
            list[ChangeKind] | None,  # type: ignore[valid-type]
            strawberry.argument(description="Only changes of these kinds (null: every kind)."),
        ] = None,
    ) -> AsyncGenerator[ProfileChange, None]:
        async for change in _follow(info, user_id, since, kinds):
            yield change

    @strawberry.subscription(
        description="The user's finished flushes: profileUpdated with kinds: [BUFFER_FLUSHED]."
    )
    async def buffer_flushed(
        self, info: Info, user_id: UserIdArgument, since: SinceArgument = None
    ) -> AsyncGenerator[ProfileChange, None]:
        async for change in _follow(info, user_id, since, [ChangeKindEnum.BUFFER_FLUSHED]):
            yield change

    @strawberry.subscription(
        description="The user's failed flushes, with the reason: kinds: [FLUSH_FAILED]."
    )
    async def flush_failed(
        self, info: Info, user_id: UserIdArgument, since: SinceArgument = None
    ) -> AsyncGenerator[ProfileChange, None]:
        async for change in _follow(info, user_id, since, [ChangeKindEnum.FLUSH_FAILED]):
            yield change
