"""Editing and deleting events over GraphQL."""

from __future__ import annotations

from typing import Annotated

import strawberry

from powermemo_gql.errors import DomainError
from powermemo_gql.errors import InvalidInput as InvalidInputError
from powermemo_gql.events.service import EventService
from powermemo_gql.graphql.context import Context
from powermemo_gql.graphql.errors import EventNotFound, InvalidInput, bad_user_input, error_result
from powermemo_gql.graphql.memory import Event
from powermemo_gql.graphql.node import decoded_id, global_id

Info = strawberry.Info[Context, None]


@strawberry.input(description="One tag of an event: its name and value.")
class EventTagValueInput:
    tag: str
    value: str


@strawberry.input
class UpdateEventInput:
    id: strawberry.ID
    summary: str | None = strawberry.field(
        default=None,
        description="The new summary, one fact per line; its facts are rebuilt from it.",
    )
    tags: list[EventTagValueInput] | None = strawberry.field(
        default=None, description="Replaces the event's tags."
    )


@strawberry.input
class DeleteEventInput:
    id: strawberry.ID


@strawberry.type
class UpdateEventPayload:
    event: Event


@strawberry.type
class DeleteEventPayload:
    deleted_event_id: strawberry.ID


UpdateEventResult = Annotated[
    UpdateEventPayload | EventNotFound | InvalidInput, strawberry.union("UpdateEventResult")
]
DeleteEventResult = Annotated[
    DeleteEventPayload | EventNotFound, strawberry.union("DeleteEventResult")
]


@strawberry.type
class EventMutation:
    @strawberry.mutation(
        description=(
            "Change an event's summary and/or tags: its facts are rebuilt and re-indexed, and "
            "the change feed records EVENT_UPDATED."
        )
    )
    async def update_event(self, info: Info, input: UpdateEventInput) -> UpdateEventResult:
        ctx = info.context
        tags = [(t.tag, t.value) for t in input.tags] if input.tags is not None else None
        try:
            with decoded_id(input.id, "Event", "input.id") as raw:
                async with ctx.uow() as session:
                    row = await EventService(session).update(
                        ctx.project_id, raw, input.summary, tags
                    )
        except DomainError as error:
            return error_result(error)
        await ctx.resources.feed.notify(row.user_id)
        return UpdateEventPayload(event=Event(row=row))

    @strawberry.mutation(
        description=(
            "Delete an event and its facts (the profile entries it wrote stay); the change "
            "feed records EVENT_DELETED."
        )
    )
    async def delete_event(self, info: Info, input: DeleteEventInput) -> DeleteEventResult:
        ctx = info.context
        try:
            with decoded_id(input.id, "Event", "input.id") as raw:
                async with ctx.uow() as session:
                    row = await EventService(session).delete(ctx.project_id, raw)
        except InvalidInputError as error:  # no InvalidInput in this union: a top-level error
            raise bad_user_input(error) from error
        except DomainError as error:
            return error_result(error)
        await ctx.resources.feed.notify(row.user_id)
        return DeleteEventPayload(deleted_event_id=global_id("Event", row.id))
