"""Profiles over GraphQL: entries with provenance and history; editing and importing them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from powermemo_gql.errors import DomainError
from powermemo_gql.errors import InvalidInput as InvalidInputError
from powermemo_gql.graphql.context import Context
from powermemo_gql.graphql.errors import (
    InvalidInput,
    LLMUnavailable,
    ProfileEntryAlreadyExists,
    ProfileEntryNotFound,
    UserNotFound,
    bad_user_input,
    error_result,
)
from powermemo_gql.graphql.node import Node, decoded_id, global_id, optional_global_id
from powermemo_gql.profiles.models import ProfileEntry as ProfileEntryRow
from powermemo_gql.profiles.service import ProfileService
from powermemo_gql.users.service import UserService

Info = strawberry.Info[Context, None]


@strawberry.type(description="A previous value of a profile entry.")
class ProfileRevision:
    content: str
    action: str = strawberry.field(description="update or delete: what replaced this value.")
    source: str
    created_at: datetime


@strawberry.type(description="One fact of a user's profile, with where it came from.")
class ProfileEntry(Node):
    row: strawberry.Private[ProfileEntryRow]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return global_id("ProfileEntry", self.row.id)

    @strawberry.field
    def topic(self) -> str:
        return self.row.topic

    @strawberry.field
    def sub_topic(self) -> str:
        return self.row.sub_topic

    @strawberry.field
    def content(self) -> str:
        return self.row.content

    @strawberry.field(description="llm, manual or import.")
    def source(self) -> str:
        return self.row.source

    @strawberry.field(description="Blobs whose processing produced or changed this entry.")
    def source_blob_ids(self) -> list[strawberry.ID]:
        return [global_id("Blob", b) for b in self.row.source_blob_ids]

    @strawberry.field(description="The event that last changed this entry.")
    def source_event_id(self) -> strawberry.ID | None:
        return optional_global_id("Event", self.row.source_event_id)

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field
    def updated_at(self) -> datetime:
        return self.row.updated_at

    @strawberry.field(
        description=(
            "When the user last spoke of it: the latest message time of the flush that wrote "
            "or confirmed it (null for entries written by hand or imported from text)."
        )
    )
    def last_mentioned_at(self) -> datetime | None:
        return self.row.last_mentioned_at

    @strawberry.field(description="Previous values, oldest first.")
    async def history(self, info: Info) -> list[ProfileRevision]:
        rows = await info.context.loaders.histories.load(self.row.id)
        return [
            ProfileRevision(
                content=r.content, action=r.action, source=r.source, created_at=r.created_at
            )
            for r in rows
        ]


@strawberry.input
class AddProfileEntryInput:
    user_id: strawberry.ID
    topic: str
    sub_topic: str
    content: str


@strawberry.input
class UpdateProfileEntryInput:
    id: strawberry.ID
    content: str


@strawberry.type
class AddProfileEntryPayload:
    entry: ProfileEntry


@strawberry.type
class UpdateProfileEntryPayload:
    entry: ProfileEntry


@strawberry.type
class DeleteProfileEntryPayload:
    deleted_entry_id: strawberry.ID


AddProfileEntryResult = Annotated[
    AddProfileEntryPayload | UserNotFound | ProfileEntryAlreadyExists | InvalidInput,
    strawberry.union("AddProfileEntryResult"),
]
UpdateProfileEntryResult = Annotated[
    UpdateProfileEntryPayload | ProfileEntryNotFound | InvalidInput,
    strawberry.union("UpdateProfileEntryResult"),
]
DeleteProfileEntryResult = Annotated[
    DeleteProfileEntryPayload | ProfileEntryNotFound, strawberry.union("DeleteProfileEntryResult")
]


@strawberry.input
class ImportProfileInput:
    user_id: strawberry.ID
    text: str = strawberry.field(description="Anything about the user, e.g. a bio or notes.")


@strawberry.type
class ImportProfilePayload:
    entries: list[ProfileEntry] = strawberry.field(description="The entries added or changed.")
    llm_calls: int
    input_tokens: int
    output_tokens: int


ImportProfileResult = Annotated[
    ImportProfilePayload | UserNotFound | InvalidInput | LLMUnavailable,
    strawberry.union("ImportProfileResult"),
]


@strawberry.type
class ProfileMutation:
    @strawberry.mutation(description="Add a profile entry by hand (source: manual).")
    async def add_profile_entry(
        self, info: Info, input: AddProfileEntryInput
    ) -> AddProfileEntryResult:
        ctx = info.context
        try:
            async with ctx.uow() as session:
                user = await UserService(session).get(ctx.project_id, input.user_id)
                row = await ProfileService(session).add(
                    user, input.topic, input.sub_topic, input.content
                )
        except DomainError as error:
            return error_result(error)
        await ctx.resources.feed.notify(row.user_id)
        return AddProfileEntryPayload(entry=ProfileEntry(row=row))

    @strawberry.mutation(
        description=(
            "Extract facts from free text and merge them into the profile (source: import); "
            "waits for the LLM."
        )
    )
    async def import_profile(self, info: Info, input: ImportProfileInput) -> ImportProfileResult:
        ctx = info.context
        try:
            async with ctx.uow() as session:
                user = await UserService(session).get(ctx.project_id, input.user_id)
            rows, usage = await ctx.resources.importer.import_profile(
                user.project_id, user.id, input.text
            )
        except DomainError as error:
            return error_result(error)
        return ImportProfilePayload(
            entries=[ProfileEntry(row=r) for r in rows],
            llm_calls=usage.calls,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
        )

    @strawberry.mutation(description="Change an entry's content; the old value joins its history.")
    async def update_profile_entry(
        self, info: Info, input: UpdateProfileEntryInput
    ) -> UpdateProfileEntryResult:
        ctx = info.context
        try:
            with decoded_id(input.id, "ProfileEntry", "input.id") as raw:
                async with ctx.uow() as session:
                    row = await ProfileService(session).update(ctx.project_id, raw, input.content)
        except DomainError as error:
            return error_result(error)
        await ctx.resources.feed.notify(row.user_id)
        return UpdateProfileEntryPayload(entry=ProfileEntry(row=row))

    @strawberry.mutation(description="Delete an entry; its last value is kept in its history.")
    async def delete_profile_entry(self, info: Info, id: strawberry.ID) -> DeleteProfileEntryResult:
        ctx = info.context
        try:
            with decoded_id(id, "ProfileEntry", "id") as raw:
                async with ctx.uow() as session:
                    row = await ProfileService(session).delete(ctx.project_id, raw)
        except InvalidInputError as error:  # no InvalidInput in this union: a top-level error
            raise bad_user_input(error) from error
        except DomainError as error:
            return error_result(error)
        await ctx.resources.feed.notify(row.user_id)
        return DeleteProfileEntryPayload(deleted_entry_id=global_id("ProfileEntry", row.id))
