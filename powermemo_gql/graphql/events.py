"""Editing and deleting events over GraphQL."""

from __future__ import annotations

from typing import Annotated

import strawberry

from powermemo_gql.events.service import MAX_SUMMARY_CHARS, MAX_TAG_CHARS, MAX_TAGS
from powermemo_gql.graphql.context import Info
from powermemo_gql.graphql.errors import InvalidInput, NotFound, domain_errors_as_results
from powermemo_gql.graphql.memory import Event
from powermemo_gql.graphql.node import decoded_id, global_id
from powermemo_gql.usecases import UseCases


@strawberry.input(description="One tag of an event: its name and value.")
class EventTagValueInput:
    tag: str = strawberry.field(
        description=f"The tag's name: 1 to {MAX_TAG_CHARS} characters (trimmed)."
    )
    value: str = strawberry.field(
        description=f"Its value: 1 to {MAX_TAG_CHARS} characters (trimmed)."
    )


@strawberry.input(description="An event's new summary and/or tags; what is left out stays.")
class UpdateEventInput:
    id: strawberry.ID = strawberry.field(description="The event's global id.")
    summary: str | None = strawberry.field(
        default=None,
        description=(
            f"The new summary, one fact per line (at most {MAX_SUMMARY_CHARS} characters); its "
            "facts are rebuilt from it."
        ),
    )
    tags: list[EventTagValueInput] | None = strawberry.field(
        default=None, description=f"Replaces the event's tags: at most {MAX_TAGS}."
    )


@strawberry.input(description="The event to delete.")
class DeleteEventInput:
    id: strawberry.ID = strawberry.field(description="The event's global id.")


@strawberry.type(description="An event was changed.")
class UpdateEventPayload:
    event: Event = strawberry.field(description="The event as it is now.")


@strawberry.type(description="An event and its facts were deleted.")
class DeleteEventPayload:
    deleted_event_id: strawberry.ID = strawberry.field(description="The deleted event's id.")


UpdateEventResult = Annotated[
    UpdateEventPayload | NotFound | InvalidInput,
    strawberry.union("UpdateEventResult", description="The event changed, or why not."),
]
DeleteEventResult = Annotated[
    DeleteEventPayload | NotFound,
    strawberry.union("DeleteEventResult", description="The event deleted, or why not."),
]


@strawberry.type
class EventMutation:
    @strawberry.mutation(
        description=(
            "Change an event's summary and/or tags: its facts are rebuilt and re-indexed, and "
            "the change feed records EVENT_UPDATED."
        )
    )
    @domain_errors_as_results()
    async def update_event(
        self,
        info: Info,
        input: Annotated[
            UpdateEventInput, strawberry.argument(description="The event and what to change.")
        ],
    ) -> UpdateEventResult:
        ctx = info.context
        tags = [(t.tag, t.value) for t in input.tags] if input.tags is not None else None
        with decoded_id(input.id, "Event", "input.id") as raw:
            async with ctx.uow() as session:
                row = await UseCases(session, ctx.resources).update_event(
                    ctx.project_id, raw, input.summary, tags
                )
        return UpdateEventPayload(event=Event(row=row))

    @strawberry.mutation(
        description=(
            "Delete an event and its facts (the profile entries it wrote stay); the change "
            "feed records EVENT_DELETED."
        )
    )
    @domain_errors_as_results(invalid_input="top_level")
    async def delete_event(
        self,
        info: Info,
        input: Annotated[DeleteEventInput, strawberry.argument(description="The event to delete.")],
    ) -> DeleteEventResult:
        ctx = info.context
        with decoded_id(input.id, "Event", "input.id") as raw:
            async with ctx.uow() as session:
                row = await UseCases(session, ctx.resources).delete_event(ctx.project_id, raw)
        return DeleteEventPayload(deleted_event_id=global_id("Event", row.id))
