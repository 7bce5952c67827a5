"""The memory side over GraphQL: buffers, flushes, profiles and events."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from powermemo_gql.buffers.models import BufferItem as BufferItemRow
from powermemo_gql.buffers.models import BufferStatus as BufferStatusEnum
from powermemo_gql.buffers.models import Flush as FlushRow
from powermemo_gql.buffers.models import FlushStatus as FlushStatusEnum
from powermemo_gql.buffers.models import FlushTrigger as FlushTriggerEnum
from powermemo_gql.buffers.service import BufferService
from powermemo_gql.errors import DomainError
from powermemo_gql.events.models import Event as EventRow
from powermemo_gql.graphql.context import Context
from powermemo_gql.graphql.errors import (
    UserNotFound,
    error_result,
)
from powermemo_gql.graphql.node import Node, global_id, optional_global_id
from powermemo_gql.recall.usage import embedding_cost
from powermemo_gql.users.service import UserService

Info = strawberry.Info[Context, None]

BufferItemStatus = strawberry.enum(BufferStatusEnum, name="BufferItemStatus")
FlushStatus = strawberry.enum(FlushStatusEnum, name="FlushStatus")
FlushTrigger = strawberry.enum(FlushTriggerEnum, name="FlushTrigger")


@strawberry.type(description="A blob waiting in (or processed from) a user's buffer.")
class BufferItem:
    row: strawberry.Private[BufferItemRow]

    @strawberry.field
    def blob_id(self) -> strawberry.ID:
        return global_id("Blob", self.row.blob_id)

    @strawberry.field
    def token_count(self) -> int:
        return self.row.token_count

    @strawberry.field
    def status(self) -> BufferItemStatus:  # type: ignore[valid-type]
        return BufferStatusEnum(self.row.status)

    @strawberry.field(description="Why the item failed, when it did.")
    def error(self) -> str | None:
        return self.row.error

    @strawberry.field
    def created_at(self) -> datetime:
        return self.row.created_at


@strawberry.enum
class BufferState(Enum):
    EMPTY = "empty"  # nothing waiting
    IDLE = "idle"  # items wait for the next flush
    PROCESSING = "processing"  # a flush is working on items
    FAILED = "failed"  # some items failed; retryFailedBuffer puts them back


@strawberry.type(description="What a user's buffer holds that is not yet in memory.")
class Buffer:
    items: list[BufferItem]

    @strawberry.field(description="The buffer as a whole: processing, else failed, else idle.")
    def status(self) -> BufferState:
        statuses = {i.row.status for i in self.items}
        for status, state in (
            (BufferStatusEnum.PROCESSING, BufferState.PROCESSING),
            (BufferStatusEnum.FAILED, BufferState.FAILED),
            (BufferStatusEnum.IDLE, BufferState.IDLE),
        ):
            if status.value in statuses:
                return state
        return BufferState.EMPTY

    @strawberry.field(description="Tokens of every item listed: idle, processing and failed.")
    def total_tokens(self) -> int:
        return sum(i.row.token_count for i in self.items)

    @strawberry.field(
        description="Tokens of the idle items; a flush starts past max_buffer_tokens."
    )
    def idle_tokens(self) -> int:
        return sum(i.row.token_count for i in self.items if i.row.status == BufferStatusEnum.IDLE)

    @strawberry.field
    def failed_count(self) -> int:
        return sum(1 for i in self.items if i.row.status == BufferStatusEnum.FAILED)


@strawberry.type(description="One run of the memory pipeline over a user's buffer.")
class Flush(Node):
    row: strawberry.Private[FlushRow]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return global_id("Flush", self.row.id)

    @strawberry.field
    def trigger(self) -> FlushTrigger:  # type: ignore[valid-type]
        return FlushTriggerEnum(self.row.trigger)

    @strawberry.field
    def status(self) -> FlushStatus:  # type: ignore[valid-type]
        return FlushStatusEnum(self.row.status)

    @strawberry.field
    def item_count(self) -> int:
        return self.row.item_count

    @strawberry.field
    def llm_calls(self) -> int:
        return self.row.llm_calls

    @strawberry.field
    def input_tokens(self) -> int:
        return self.row.input_tokens

    @strawberry.field
    def output_tokens(self) -> int:
        return self.row.output_tokens

    @strawberry.field(
        description="Items of LLM answers left out because they did not parse (the rest kept)."
    )
    def dropped_items(self) -> int:
        return self.row.dropped_items

    @strawberry.field
    def error(self) -> str | None:
        return self.row.error

    @strawberry.field
    def event_id(self) -> strawberry.ID | None:
        return optional_global_id("Event", self.row.event_id)

    @strawberry.field
    def started_at(self) -> datetime:
        return self.row.started_at

    @strawberry.field
    def finished_at(self) -> datetime | None:
        return self.row.finished_at


@strawberry.type
class EventTag:
    tag: str
    value: str


@strawberry.type(description="Something that happened to a user: one per flush.")
class Event(Node):
    row: strawberry.Private[EventRow]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return global_id("Event", self.row.id)

    @strawberry.field
    def summary(self) -> str:
        return self.row.summary

    @strawberry.field
    def tags(self) -> list[EventTag]:
        return [EventTag(tag=t["tag"], value=t["value"]) for t in self.row.tags]

    @strawberry.field(description="The profile changes of this event: action, topic, ...")
    def profile_delta(self) -> JSON:
        return JSON(self.row.profile_delta)

    @strawberry.field(
        description=(
            "When what it tells of was said: its first message's time (a message's createdAt, "
            "else its blob's insertion). Events are listed by it, newest first."
        )
    )
    def happened_from(self) -> datetime:
        return self.row.happened_from

    @strawberry.field(description="Its last message's time.")
    def happened_to(self) -> datetime:
        return self.row.happened_to

    @strawberry.field(description="When the event was written (its flush).")
    def created_at(self) -> datetime:
        return self.row.created_at


@strawberry.type(description="What one pipeline step has cost the project.")
class LLMStepUsage:
    step: str = strawberry.field(
        description="summarize, extract, merge, organize, shorten or tag_event."
    )
    llm_calls: int
    input_tokens: int
    output_tokens: int


@strawberry.type(description="What the memory pipeline has cost the project, over all flushes.")
class LLMUsage:
    flushes: int
    llm_calls: int
    input_tokens: int
    output_tokens: int
    steps: list[LLMStepUsage] = strawberry.field(description="The same, per pipeline step.")
    embedding_texts: int = strawberry.field(
        description=(
            "Texts embedded to index the project's memory (profile entries, events, facts; "
            "reindexing included). Not counted in llmCalls."
        )
    )
    embedding_tokens: int = strawberry.field(
        description=(
            "Tokens the embedding provider reported for those texts (0 for the local model). "
            "Query embeddings of searches are counted in the metrics only."
        )
    )


@strawberry.type
class MemoryQuery:
    @strawberry.field(description="LLM calls and tokens spent by the caller's project.")
    async def llm_usage(self, info: Info) -> LLMUsage:
        ctx = info.context
        async with ctx.uow() as session:
            service = BufferService(session)
            flushes, calls, tokens_in, tokens_out = await service.project_usage(ctx.project_id)
            steps = await service.project_usage_by_step(ctx.project_id)
            embedding = await embedding_cost(session, ctx.project_id)
        return LLMUsage(
            flushes=flushes,
            llm_calls=calls,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            steps=[
                LLMStepUsage(
                    step=step, llm_calls=calls, input_tokens=tokens_in, output_tokens=tokens_out
                )
                for step, calls, tokens_in, tokens_out in steps
            ],
            embedding_texts=embedding.texts,
            embedding_tokens=embedding.tokens,
        )


@strawberry.enum(description="What a flushBuffer or retryFailedBuffer call did.")
class FlushOutcome(Enum):
    SCHEDULED = strawberry.enum_value(
        "scheduled",
        description="wait: false: the flush runs in the background (or one already runs).",
    )
    FLUSHED = strawberry.enum_value(
        "flushed", description="It ran: flush.status says DONE, or FAILED with flush.error."
    )
    NOTHING_TO_FLUSH = strawberry.enum_value(
        "nothing_to_flush", description="The buffer had no idle item."
    )
    BUSY = strawberry.enum_value(
        "busy",
        description=(
            "Another flush of this user still ran after waiting flush_lease_seconds; "
            "try again later."
        ),
    )
    INTERRUPTED = strawberry.enum_value(
        "interrupted",
        description=(
            "It lost its lease mid-way and wrote nothing (flush.status ABANDONED); its items "
            "went back to the buffer and are flushed again."
        ),
    )


@strawberry.type
class FlushBufferPayload:
    outcome: FlushOutcome
    flush: Flush | None = strawberry.field(
        description="The flush that ran (wait: true): set when outcome is FLUSHED or INTERRUPTED."
    )


@strawberry.type
class RetryFailedBufferPayload:
    retried_items: int
    outcome: FlushOutcome
    flush: Flush | None


FlushBufferResult = Annotated[
    FlushBufferPayload | UserNotFound, strawberry.union("FlushBufferResult")
]
RetryFailedBufferResult = Annotated[
    RetryFailedBufferPayload | UserNotFound, strawberry.union("RetryFailedBufferResult")
]


async def _run_flush(
    info: Info, user_id: strawberry.ID, trigger: FlushTriggerEnum, wait: bool
) -> tuple[FlushOutcome, Flush | None]:
    ctx = info.context
    async with ctx.uow() as session:
        user = await UserService(session).get(ctx.project_id, user_id)
    flusher = ctx.resources.flusher
    if not wait:
        flusher.schedule(user.project_id, user.id, trigger)
        return FlushOutcome.SCHEDULED, None
    attempt = await flusher.flush(
        user.project_id, user.id, trigger, wait_seconds=ctx.resources.settings.flush_lease_seconds
    )
    # The flusher's outcomes, by value; SCHEDULED is this API's own.
    outcome = FlushOutcome(attempt.outcome.value)
    return outcome, Flush(row=attempt.flush) if attempt.flush else None


@strawberry.type
class MemoryMutation:
    @strawberry.mutation(
        description="Turn the user's buffer into memory now; with wait: true, return when done."
    )
    async def flush_buffer(
        self, info: Info, user_id: strawberry.ID, wait: bool = False
    ) -> FlushBufferResult:
        try:
            outcome, flush = await _run_flush(info, user_id, FlushTriggerEnum.MANUAL, wait)
        except DomainError as error:
            return error_result(error)
        return FlushBufferPayload(outcome=outcome, flush=flush)

    @strawberry.mutation(description="Put the user's failed buffer items back, and flush them.")
    async def retry_failed_buffer(
        self, info: Info, user_id: strawberry.ID, wait: bool = False
    ) -> RetryFailedBufferResult:
        ctx = info.context
        try:
            async with ctx.uow() as session:
                user = await UserService(session).get(ctx.project_id, user_id)
            retried = await ctx.resources.flusher.retry_failed(user.id)
            outcome, flush = await _run_flush(info, user_id, FlushTriggerEnum.RETRY, wait)
        except DomainError as error:
            return error_result(error)
        return RetryFailedBufferPayload(retried_items=retried, outcome=outcome, flush=flush)
