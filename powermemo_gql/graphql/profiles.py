"""Profiles over GraphQL: entries with provenance and history; editing and importing them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from powermemo_gql.graphql.context import Info
from powermemo_gql.graphql.enums import described_enum
from powermemo_gql.graphql.errors import (
    InvalidInput,
    LLMUnavailable,
    NotFound,
    ProfileEntryAlreadyExists,
    domain_errors_as_results,
)
from powermemo_gql.graphql.node import Node, decoded_id, global_id, optional_global_id
from powermemo_gql.profiles.models import ProfileEntryView as ProfileEntryRow
from powermemo_gql.profiles.models import ProfileSource as ProfileSourceEnum
from powermemo_gql.profiles.models import RevisionAction as RevisionActionEnum
from powermemo_gql.profiles.service import MAX_CONTENT_CHARS, MAX_LABEL_CHARS
from powermemo_gql.usecases import UseCases
from powermemo_gql.users.service import UserService

ProfileSource = described_enum(
    ProfileSourceEnum,
    name="ProfileSource",
    description="Who wrote a value: the memory pipeline (LLM), the API (MANUAL) or an import.",
    values={
        "LLM": "A flush: the memory pipeline extracted it from the user's blobs.",
        "MANUAL": "addProfileEntry or updateProfileEntry.",
        "IMPORT": "importProfile: extracted from free text handed to the API.",
    },
)
RevisionAction = described_enum(
    RevisionActionEnum,
    name="RevisionAction",
    description="What replaced a kept value.",
    values={
        "UPDATE": "A new content replaced it.",
        "DELETE": "The entry was deleted; this was its last content.",
    },
)


@strawberry.type(description="A previous value of a profile entry.")
class ProfileRevision:
    content: str = strawberry.field(description="The value it had.")
    action: RevisionAction = strawberry.field(  # type: ignore[valid-type]
        description="UPDATE or DELETE: what replaced this value."
    )
    source: ProfileSource = strawberry.field(  # type: ignore[valid-type]
        description="Who wrote this value."
    )
    created_at: datetime = strawberry.field(description="When it was replaced.")


def _source_blob_ids(root: ProfileEntry) -> list[strawberry.ID]:
    return [global_id("Blob", b) for b in root.row.source_blob_ids]


def _source_event_id(root: ProfileEntry) -> strawberry.ID | None:
    return optional_global_id("Event", root.row.source_event_id)


@strawberry.type(description="One fact of a user's profile, with where it came from.")
class ProfileEntry(Node):
    # The plain values are fields of their own, copied from the row (`of`): strawberry reads
    # such a field with a getattr, where a method field costs a resolver call, with its Info
    # object, per entry and field (a third of a profile query's execution).
    row: strawberry.Private[ProfileEntryRow]

    @strawberry.field(description="The entry's global id; it stays the same through updates.")
    def id(self) -> strawberry.ID:
        return global_id("ProfileEntry", self.row.id)

    topic: str = strawberry.field(description="The topic it is filed under, e.g. basic_info.")
    sub_topic: str = strawberry.field(
        description="Its sub-topic; one entry per topic and sub-topic."
    )
    content: str = strawberry.field(description="The fact, in words.")
    source: ProfileSource = strawberry.field(  # type: ignore[valid-type]
        description="LLM, MANUAL or IMPORT."
    )

    source_blob_ids: list[strawberry.ID] = strawberry.field(
        resolver=_source_blob_ids,
        description="Blobs whose processing produced or changed this entry.",
    )
    source_event_id: strawberry.ID | None = strawberry.field(
        resolver=_source_event_id, description="The event that last changed this entry."
    )
    created_at: datetime = strawberry.field(description="When it was added.")
    updated_at: datetime = strawberry.field(
        description="When its content last changed (its creation until then)."
    )
    last_mentioned_at: datetime | None = strawberry.field(
        description=(
            "When the user last spoke of it: the latest message time of the flush that wrote "
            "or confirmed it (null for entries written by hand or imported from text)."
        )
    )

    @classmethod
    def of(cls, row: ProfileEntryRow) -> ProfileEntry:
        return cls(
            row=row,
            topic=row.topic,
            sub_topic=row.sub_topic,
            content=row.content,
            source=ProfileSourceEnum(row.source),
            created_at=row.created_at,
            updated_at=row.updated_at,
            last_mentioned_at=row.last_mentioned_at,
        )

    @strawberry.field(description="Previous values, oldest first.")
    async def history(self, info: Info) -> list[ProfileRevision]:
        rows = await info.context.loaders.histories.load(self.row.id)
        return [
            ProfileRevision(
                content=r.content,
                action=RevisionActionEnum(r.action),
                source=ProfileSourceEnum(r.source),
                created_at=r.created_at,
            )
            for r in rows
        ]


@strawberry.input(description="A profile entry written by hand.")
class AddProfileEntryInput:
    user_id: strawberry.ID = strawberry.field(
        description="The app's id of the user (the one given to createUser)."
    )
    topic: str = strawberry.field(
        description=(
            f"1 to {MAX_LABEL_CHARS} characters (trimmed); it need not be a configured slot."
        )
    )
    sub_topic: str = strawberry.field(description=f"1 to {MAX_LABEL_CHARS} characters (trimmed).")
    content: str = strawberry.field(
        description=f"The fact: 1 to {MAX_CONTENT_CHARS} characters (trimmed)."
    )


@strawberry.input(description="A profile entry's new content.")
class UpdateProfileEntryInput:
    id: strawberry.ID = strawberry.field(description="The entry's global id.")
    content: str = strawberry.field(description=f"1 to {MAX_CONTENT_CHARS} characters (trimmed).")


@strawberry.input(description="The profile entry to delete.")
class DeleteProfileEntryInput:
    id: strawberry.ID = strawberry.field(description="The entry's id.")


@strawberry.type(description="A profile entry was added.")
class AddProfileEntryPayload:
    entry: ProfileEntry = strawberry.field(description="The new entry.")


@strawberry.type(description="A profile entry's content was changed (or was already so).")
class UpdateProfileEntryPayload:
    entry: ProfileEntry = strawberry.field(description="The entry as it is now.")


@strawberry.type(description="A profile entry was deleted.")
class DeleteProfileEntryPayload:
    deleted_entry_id: strawberry.ID = strawberry.field(description="The deleted entry's id.")


AddProfileEntryResult = Annotated[
    AddProfileEntryPayload | NotFound | ProfileEntryAlreadyExists | InvalidInput,
    strawberry.union("AddProfileEntryResult", description="The entry added, or why not."),
]
UpdateProfileEntryResult = Annotated[
    UpdateProfileEntryPayload | NotFound | InvalidInput,
    strawberry.union("UpdateProfileEntryResult", description="The entry changed, or why not."),
]
DeleteProfileEntryResult = Annotated[
    DeleteProfileEntryPayload | NotFound,
    strawberry.union("DeleteProfileEntryResult", description="The entry deleted, or why not."),
]


@strawberry.input(description="Free text to learn a user's profile from.")
class ImportProfileInput:
    user_id: strawberry.ID = strawberry.field(
        description="The app's id of the user (the one given to createUser)."
    )
    text: str = strawberry.field(description="Anything about the user, e.g. a bio or notes.")


@strawberry.type(description="What an import wrote, and what it cost.")
class ImportProfilePayload:
    entries: list[ProfileEntry] = strawberry.field(description="The entries added or changed.")
    llm_calls: int = strawberry.field(description="LLM calls it made.")
    input_tokens: int = strawberry.field(description="Input (prompt) tokens of those calls.")
    output_tokens: int = strawberry.field(description="Output (completion) tokens of those calls.")


ImportProfileResult = Annotated[
    ImportProfilePayload | NotFound | InvalidInput | LLMUnavailable,
    strawberry.union("ImportProfileResult", description="What the import wrote, or why not."),
]


@strawberry.type
class ProfileMutation:
    @strawberry.mutation(description="Add a profile entry by hand (source: manual).")
    @domain_errors_as_results()
    async def add_profile_entry(
        self,
        info: Info,
        input: Annotated[
            AddProfileEntryInput, strawberry.argument(description="The user and the entry.")
        ],
    ) -> AddProfileEntryResult:
        ctx = info.context
        async with ctx.uow() as session:
            row = await UseCases(session, ctx.resources).add_profile_entry(
                ctx.project_id, input.user_id, input.topic, input.sub_topic, input.content
            )
        return AddProfileEntryPayload(entry=ProfileEntry.of(row))

    @strawberry.mutation(
        description=(
            "Extract facts from free text and merge them into the profile (source: import); "
            "waits for the LLM."
        )
    )
    @domain_errors_as_results()
    async def import_profile(
        self,
        info: Info,
        input: Annotated[
            ImportProfileInput, strawberry.argument(description="The user and the text.")
        ],
    ) -> ImportProfileResult:
        ctx = info.context
        async with ctx.uow() as session:
            user = await UserService(session).get(ctx.project_id, input.user_id)
        rows, usage = await ctx.resources.importer.import_profile(
            user.project_id, user.id, input.text
        )
        return ImportProfilePayload(
            entries=[ProfileEntry.of(r) for r in rows],
            llm_calls=usage.calls,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
        )

    @strawberry.mutation(description="Change an entry's content; the old value joins its history.")
    @domain_errors_as_results()
    async def update_profile_entry(
        self,
        info: Info,
        input: Annotated[
            UpdateProfileEntryInput,
            strawberry.argument(description="The entry and its new content."),
        ],
    ) -> UpdateProfileEntryResult:
        ctx = info.context
        with decoded_id(input.id, "ProfileEntry", "input.id") as raw:
            async with ctx.uow() as session:
                row = await UseCases(session, ctx.resources).update_profile_entry(
                    ctx.project_id, raw, input.content
                )
        return UpdateProfileEntryPayload(entry=ProfileEntry.of(row))

    @strawberry.mutation(description="Delete an entry; its last value is kept in its history.")
    @domain_errors_as_results(invalid_input="top_level")
    async def delete_profile_entry(
        self,
        info: Info,
        input: Annotated[
            DeleteProfileEntryInput, strawberry.argument(description="The entry to delete.")
        ],
    ) -> DeleteProfileEntryResult:
        ctx = info.context
        with decoded_id(input.id, "ProfileEntry", "input.id") as raw:
            async with ctx.uow() as session:
                row = await UseCases(session, ctx.resources).delete_profile_entry(
                    ctx.project_id, raw
                )
        return DeleteProfileEntryPayload(deleted_entry_id=global_id("ProfileEntry", row.id))
