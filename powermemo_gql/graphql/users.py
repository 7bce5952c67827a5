"""Users over GraphQL."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import strawberry
from strawberry.scalars import JSON
from strawberry.types.nodes import SelectedField

from powermemo_gql import errors as domain
from powermemo_gql.changes.service import ChangeService
from powermemo_gql.core.pagination import MAX_PAGE_SIZE
from powermemo_gql.errors import InvalidInput as InvalidInputError
from powermemo_gql.graphql import user_arguments as arg
from powermemo_gql.graphql.blobs import Blob, to_blob
from powermemo_gql.graphql.changes import ProfileChange, change_cursor
from powermemo_gql.graphql.context import Info
from powermemo_gql.graphql.loaders import BlobPageKey, ProfileKey
from powermemo_gql.graphql.memory import Buffer, BufferItem, Event, Flush
from powermemo_gql.graphql.nested_loaders import ChangePageKey, EventPageKey, FlushesKey
from powermemo_gql.graphql.node import Node, global_id
from powermemo_gql.graphql.pagination import (
    After,
    Before,
    Connection,
    First,
    Last,
    page_args,
    query_input_errors,
    to_connection,
)
from powermemo_gql.graphql.profiles import ProfileEntry
from powermemo_gql.graphql.search import SearchResult, search_user
from powermemo_gql.graphql.turn import TurnChats, TurnQuery, UserContext
from powermemo_gql.memory.context import ContextRequest
from powermemo_gql.profiles.models import ProfileEntryRecord
from powermemo_gql.recall.context import TurnContextService
from powermemo_gql.recall.search import SearchMode
from powermemo_gql.users.models import UserView as UserRow
from powermemo_gql.users.repository import UserOrderField as OrderField
from powermemo_gql.users.service import UserService


@strawberry.type(
    description="A user of the app, and the memory kept of them: blobs, buffer, profile, events."
)
class User(Node):
    row: strawberry.Private[UserRow]
    # The whole profile, when the query asked for it and it was read with the user.
    whole_profile: strawberry.Private[list[ProfileEntryRecord] | None] = None

    @strawberry.field(description="The user's global id; userId is the app's own id.")
    def id(self) -> strawberry.ID:
        return global_id("User", self.row.id)

    @strawberry.field(
        description=("The id the app chose (or one generated at creation): user arguments take it.")
    )
    def user_id(self) -> str:
        return self.row.external_id

    @strawberry.field(description="Free-form data the app keeps about the user.")
    def data(self) -> JSON:
        return JSON(self.row.data)

    @strawberry.field(description="When the user was created.")
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field(
        description="When updateUser last replaced the user's data (its creation until then)."
    )
    def updated_at(self) -> datetime:
        return self.row.updated_at

    @strawberry.field(description="The user's blobs, oldest first.")
    async def blobs(
        self,
        info: Info,
        type: arg.BlobKindFilter = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Blob]:
        key = BlobPageKey(self.row.id, type, page_args(first, after, last, before))
        with query_input_errors():
            page = await info.context.loaders.blob_pages.load(key)
        return to_connection(page, to_blob)

    @strawberry.field(description="Items not yet in memory: idle, processing or failed.")
    async def buffer(self, info: Info) -> Buffer:
        rows = await info.context.loaders.buffers.load(self.row.id)
        return Buffer(items=[BufferItem(row=r) for r in rows])

    @strawberry.field(description="The most recent flushes of this user, newest first.")
    async def flushes(self, info: Info, last: arg.FlushCount = 10) -> list[Flush]:
        with query_input_errors():
            if not 0 <= last <= MAX_PAGE_SIZE:
                raise InvalidInputError("last", f"must be between 0 and {MAX_PAGE_SIZE}")
            rows = await info.context.loaders.flushes.load(FlushesKey(self.row.id, last))
        return [Flush(row=r) for r in rows]

    @strawberry.field(
        description=(
            "The user's profile, by topic and sub-topic. topk and maxTokens keep the most "
            "recently updated entries that fit."
        )
    )
    async def profile(
        self,
        info: Info,
        topics: arg.ProfileTopics = None,
        topk: arg.ProfileTopk = None,
        max_tokens: arg.ProfileMaxTokens = None,
    ) -> list[ProfileEntry]:
        if self.whole_profile is not None and not topics and topk is None and max_tokens is None:
            return [ProfileEntry.of(r) for r in self.whole_profile]
        key = ProfileKey(self.row.id, tuple(topics) if topics else None, topk, max_tokens)
        with query_input_errors():
            rows = await info.context.loaders.profiles.load(key)
        return [ProfileEntry.of(r) for r in rows]

    @strawberry.field(description="The user's events, newest first.")
    async def events(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        search: Annotated[
            str | None,
            strawberry.argument(
                description=(
                    "Only events whose summary holds every word (full-text on PostgreSQL, "
                    "case-insensitive substrings on SQLite)."
                )
            ),
        ] = None,
        tags: Annotated[
            list[str] | None,
            strawberry.argument(
                description="Only events with one of these tags: a name, or name:value."
            ),
        ] = None,
    ) -> Connection[Event]:
        key = EventPageKey(
            self.row.id,
            page_args(first, after, last, before),
            search,
            tuple(tags) if tags is not None else None,
        )
        with query_input_errors():
            page = await info.context.loaders.event_pages.load(key)
        return to_connection(page, lambda row: Event(row=row))

    @strawberry.field(
        description=(
            "Search the user's profile entries, events and event facts by meaning and words "
            "(hybrid: reciprocal rank fusion of vector similarity and keyword rank). A filter "
            "leaves out the kinds without its attribute: topics keep profile entries only, "
            "tags and happenedAfter/Before events and facts only."
        )
    )
    async def search(
        self,
        info: Info,
        query: arg.SearchQuery,
        first: arg.SearchFirst = 10,
        kinds: arg.SearchKinds = None,
        topics: arg.SearchTopics = None,
        tags: Annotated[
            list[str] | None,
            strawberry.argument(description="Tag names (any value), or name:value pairs."),
        ] = None,
        happened_after: arg.HappenedAfter = None,
        happened_before: arg.HappenedBefore = None,
        min_score: Annotated[
            float | None, strawberry.argument(description="Leave out hits scoring less.")
        ] = None,
        mode: arg.SearchModeArgument = SearchMode.HYBRID,
    ) -> SearchResult:
        return await search_user(
            info,
            self.row,
            query,
            first,
            kinds,
            topics,
            tags,
            happened_after,
            happened_before,
            min_score,
            mode,
        )

    @strawberry.field(
        description=(
            "A cursor at the end of the change feed as it is now (its start, for a user "
            "without changes): read it with the profile, then subscribe with since: it, and "
            "no change falls in between."
        )
    )
    async def changes_cursor(self, info: Info) -> str:
        # In the request's unit: an operation that reads this reads one snapshot.
        async with info.context.uow() as session:
            latest = await ChangeService(session).latest_seq(self.row.id)
        return change_cursor(latest)

    @strawberry.field(description="The change feed of this user's memory, oldest first.")
    async def changes(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[ProfileChange]:
        key = ChangePageKey(self.row.id, page_args(first, after, last, before))
        with query_input_errors():
            page = await info.context.loaders.change_pages.load(key)
        return to_connection(page, lambda row: ProfileChange(row=row))

    @strawberry.field(
        description=(
            "Profile and recent events as one string for a prompt, never over maxTokens "
            "(the whole string is counted with cl100k_base)."
        )
    )
    async def context(
        self,
        info: Info,
        max_tokens: arg.ContextMaxTokens = 1000,
        prefer_topics: arg.PreferTopics = None,
        only_topics: arg.OnlyTopics = None,
        profile_event_ratio: arg.ProfileEventRatio = 0.6,
        include_buffer: arg.IncludeBuffer = False,
        query: TurnQuery = None,
        chats: TurnChats = None,
    ) -> UserContext:
        request = ContextRequest(
            max_tokens=max_tokens,
            prefer_topics=prefer_topics or (),
            only_topics=only_topics,
            profile_event_ratio=profile_event_ratio,
            include_buffer=include_buffer,
        )
        resources = info.context.resources
        with query_input_errors():
            async with info.context.uow() as session:
                packed = await TurnContextService(
                    session,
                    resources.embedder,
                    resources.vectors,
                    ZoneInfo(resources.settings.timezone),
                ).build(
                    self.row.project_id,
                    self.row.id,
                    request,
                    query=query,
                    chats=[m.content for m in chats or ()],
                )
        return UserContext(
            text=packed.text,
            tokens=packed.tokens,
            profile_entries=packed.profile_entries,
            events=packed.events,
        )


def _asks_whole_profile(info: Info) -> bool:
    """Whether the field selects the user's `profile` without arguments (in a fragment, it is
    read by the loader as before)."""
    return any(
        isinstance(child, SelectedField) and child.name == "profile" and not child.arguments
        for field in info.selected_fields
        for child in field.selections
    )


@strawberry.type
class UserQuery:
    @strawberry.field(description="A user of the caller's project, or null.")
    async def user(
        self,
        info: Info,
        user_id: Annotated[
            strawberry.ID, strawberry.argument(description="The app's id of the user.")
        ],
    ) -> User | None:
        ctx = info.context
        whole_profile = None
        try:
            async with ctx.uow() as session:
                if _asks_whole_profile(info):  # both in one statement
                    users = UserService(session)
                    row, whole_profile = await users.get_with_profile(ctx.project_id, user_id)
                else:
                    row = await UserService(session).get(ctx.project_id, user_id)
        except domain.NotFound:
            return None
        return User(row=row, whole_profile=whole_profile)

    @strawberry.field(description="The caller's users, keyset-paginated.")
    async def users(
        self,
        info: Info,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        search: Annotated[
            str | None,
            strawberry.argument(description="Case-insensitive substring of the user id."),
        ] = None,
        order_by: arg.UsersOrderBy = None,
    ) -> Connection[User]:
        ctx = info.context
        order = order_by or arg.UserOrder()
        with query_input_errors():
            async with ctx.uow() as session:
                page = await UserService(session).list(
                    ctx.project_id,
                    page_args(first, after, last, before),
                    search=search,
                    order_by=OrderField(order.field),
                    descending=order.direction is arg.OrderDirection.DESC,
                )
        return to_connection(page, lambda row: User(row=row))
