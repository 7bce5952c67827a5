"""The memory side over GraphQL: buffers, flushes, profiles and events."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry

from powermemo_gql.buffers.models import BufferItem as BufferItemRow
from powermemo_gql.buffers.models import BufferStatus as BufferStatusEnum
from powermemo_gql.buffers.models import Flush as FlushRow
from powermemo_gql.buffers.models import FlushStatus as FlushStatusEnum
from powermemo_gql.buffers.models import FlushTrigger as FlushTriggerEnum
from powermemo_gql.buffers.models import PipelineStep as PipelineStepEnum
from powermemo_gql.buffers.service import BufferService
from powermemo_gql.events.models import EventView as EventRow
from powermemo_gql.graphql.context import Info
from powermemo_gql.graphql.errors import NotFound, domain_errors_as_results
from powermemo_gql.graphql.memory_enums import (
    BufferItemStatus,
    FlushBufferInput,
    FlushOutcome,
    FlushStatus,
    FlushTrigger,
    PipelineStep,
    RetryFailedBufferInput,
)
from powermemo_gql.graphql.node import Node, global_id, optional_global_id
from powermemo_gql.graphql.profile_delta import ProfileDeltaItem, delta_items
from powermemo_gql.memory.job import FlushOutcome as FlushOutcomeEnum
from powermemo_gql.recall.usage import embedding_cost
from powermemo_gql.users.service import UserService


@strawberry.type(description="A blob waiting in (or processed from) a user's buffer.")
class BufferItem:
    row: strawberry.Private[BufferItemRow]

    @strawberry.field(description="The blob this item holds.")
    def blob_id(self) -> strawberry.ID:
        return global_id("Blob", self.row.blob_id)

    @strawberry.field(description="Tokens of the blob's text (cl100k_base).")
    def token_count(self) -> int:
        return self.row.token_count

    @strawberry.field(description="Where it is on its way into memory.")
    def status(self) -> BufferItemStatus:  # type: ignore[valid-type]
        return BufferStatusEnum(self.row.status)

    @strawberry.field(description="Why the item failed, when it did.")
    def error(self) -> str | None:
        return self.row.error

    @strawberry.field(description="When it joined the buffer (its blob's insertion).")
    def created_at(self) -> datetime:
        return self.row.created_at


@strawberry.enum(description="What a user's buffer as a whole is doing.")
class BufferState(Enum):
    EMPTY = strawberry.enum_value("empty", description="Nothing waits.")
    IDLE = strawberry.enum_value("idle", description="Items wait for the next flush.")
    PROCESSING = strawberry.enum_value("processing", description="A flush is working on items.")
    FAILED = strawberry.enum_value(
        "failed", description="Some items failed; retryFailedBuffer puts them back."
    )


@strawberry.type(description="What a user's buffer holds that is not yet in memory.")
class Buffer:
    items: list[BufferItem] = strawberry.field(
        description="Its items not yet in memory (idle, processing, failed), oldest first."
    )

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

    @strawberry.field(description="How many of its items failed.")
    def failed_count(self) -> int:
        return sum(1 for i in self.items if i.row.status == BufferStatusEnum.FAILED)


@strawberry.type(description="One run of the memory pipeline over a user's buffer.")
class Flush(Node):
    row: strawberry.Private[FlushRow]

    @strawberry.field(description="The flush's global id.")
    def id(self) -> strawberry.ID:
        return global_id("Flush", self.row.id)

    @strawberry.field(description="What started it.")
    def trigger(self) -> FlushTrigger:  # type: ignore[valid-type]
        return FlushTriggerEnum(self.row.trigger)

    @strawberry.field(description="Where it is.")
    def status(self) -> FlushStatus:  # type: ignore[valid-type]
        return FlushStatusEnum(self.row.status)

    @strawberry.field(description="Buffer items it took (0 for an import).")
    def item_count(self) -> int:
        return self.row.item_count

    @strawberry.field(description="LLM calls it made.")
    def llm_calls(self) -> int:
        return self.row.llm_calls

    @strawberry.field(description="Input (prompt) tokens of its LLM calls.")
    def input_tokens(self) -> int:
        return self.row.input_tokens

    @strawberry.field(description="Output (completion) tokens of its LLM calls.")
    def output_tokens(self) -> int:
        return self.row.output_tokens

    @strawberry.field(
        description="Items of LLM answers left out because they did not parse (the rest kept)."
    )
    def dropped_items(self) -> int:
        return self.row.dropped_items

    @strawberry.field(
        description="Texts embedded for search from the rows this flush wrote (its event, the "
        "event's facts, the profile entries it added or changed). Counted once their vectors "
        "are stored, so it grows after the flush finished; 0 with embeddings off."
    )
    def embedding_texts(self) -> int:
        return self.row.embedding_texts

    @strawberry.field(
        description="Tokens the embedding provider reported for embeddingTexts (0 where it "
        "reports none, as the local model). Also counted in llmUsage."
    )
    def embedding_tokens(self) -> int:
        return self.row.embedding_tokens

    @strawberry.field(description="Why it failed or was abandoned; null otherwise.")
    def error(self) -> str | None:
        return self.row.error

    @strawberry.field(description="The event it wrote, once DONE (an import writes none).")
    def event_id(self) -> strawberry.ID | None:
        return optional_global_id("Event", self.row.event_id)

    @strawberry.field(description="When it started.")
    def started_at(self) -> datetime:
        return self.row.started_at

    @strawberry.field(description="When it ended; null while RUNNING.")
    def finished_at(self) -> datetime | None:
        return self.row.finished_at


@strawberry.type(
    description="A tag of an event: by the pipeline (from the project's eventTags) or updateEvent."
)
class EventTag:
    tag: str = strawberry.field(description="The tag's name.")
    value: str = strawberry.field(description="Its value for this event.")


@strawberry.type(description="Something that happened to a user: one per flush.")
class Event(Node):
    row: strawberry.Private[EventRow]

    @strawberry.field(description="The event's global id.")
    def id(self) -> strawberry.ID:
        return global_id("Event", self.row.id)

    @strawberry.field(description="What happened, one note per line; each line is an EventFact.")
    def summary(self) -> str:
        return self.row.summary

    @strawberry.field(description="Its tags.")
    def tags(self) -> list[EventTag]:
        return [EventTag(tag=t["tag"], value=t["value"]) for t in self.row.tags]

    @strawberry.field(description="The profile changes of this event, in the order made.")
    def profile_delta(self) -> list[ProfileDeltaItem]:
        return delta_items(self.row.profile_delta)

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
    step: PipelineStep = strawberry.field(  # type: ignore[valid-type]
        description="SUMMARIZE, EXTRACT, MERGE, ORGANIZE, SHORTEN or TAG_EVENT."
    )
    llm_calls: int = strawberry.field(description="LLM calls of this step.")
    input_tokens: int = strawberry.field(description="Input (prompt) tokens of those calls.")
    output_tokens: int = strawberry.field(description="Output (completion) tokens of those calls.")


@strawberry.type(description="What the memory pipeline has cost the project, over all flushes.")
class LLMUsage:
    flushes: int = strawberry.field(
        description="Flushes started, imports included, whatever their status."
    )
    llm_calls: int = strawberry.field(description="LLM calls of those flushes.")
    input_tokens: int = strawberry.field(description="Input (prompt) tokens of those calls.")
    output_tokens: int = strawberry.field(description="Output (completion) tokens of those calls.")
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


def _step(name: str) -> PipelineStepEnum:
    """A recorded step's name; one unknown to this version (a newer instance's) counts as OTHER."""
    try:
        return PipelineStepEnum(name)
    except ValueError:
        return PipelineStepEnum.OTHER


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
                    step=_step(step),
                    llm_calls=calls,
                    input_tokens=tokens_in,
                    output_tokens=tokens_out,
                )
                for step, calls, tokens_in, tokens_out in steps
            ],
            embedding_texts=embedding.texts,
            embedding_tokens=embedding.tokens,
        )


@strawberry.type(description="What flushBuffer did.")
class FlushBufferPayload:
    outcome: FlushOutcome = strawberry.field(description="What happened.")  # type: ignore[valid-type]
    flush: Flush | None = strawberry.field(
        description="The flush that ran (wait: true): set when outcome is FLUSHED or INTERRUPTED."
    )


@strawberry.type(description="What retryFailedBuffer did.")
class RetryFailedBufferPayload:
    retried_items: int = strawberry.field(description="Failed items put back as idle.")
    outcome: FlushOutcome = strawberry.field(  # type: ignore[valid-type]
        description="What the flush of them did."
    )
    flush: Flush | None = strawberry.field(
        description="The flush that ran (wait: true): set when outcome is FLUSHED or INTERRUPTED."
    )


FlushBufferResult = Annotated[
    FlushBufferPayload | NotFound,
    strawberry.union("FlushBufferResult", description="What the flush did, or why not."),
]
RetryFailedBufferResult = Annotated[
    RetryFailedBufferPayload | NotFound,
    strawberry.union("RetryFailedBufferResult", description="What the retry did, or why not."),
]


async def _run_flush(
    info: Info, user_id: strawberry.ID, trigger: FlushTriggerEnum, wait: bool
) -> tuple[FlushOutcomeEnum, Flush | None]:
    ctx = info.context
    async with ctx.uow() as session:
        user = await UserService(session).get(ctx.project_id, user_id)
    attempt = await ctx.resources.flusher.on_request(user.project_id, user.id, trigger, wait)
    return attempt.outcome, Flush(row=attempt.flush) if attempt.flush else None


@strawberry.type
class MemoryMutation:
    @strawberry.mutation(
        description="Turn the user's buffer into memory now; with wait: true, return when done."
    )
    @domain_errors_as_results()
    async def flush_buffer(
        self,
        info: Info,
        input: Annotated[
            FlushBufferInput, strawberry.argument(description="Whose buffer, and whether to wait.")
        ],
    ) -> FlushBufferResult:
        outcome, flush = await _run_flush(info, input.user_id, FlushTriggerEnum.MANUAL, input.wait)
        return FlushBufferPayload(outcome=outcome, flush=flush)

    @strawberry.mutation(description="Put the user's failed buffer items back, and flush them.")
    @domain_errors_as_results()
    async def retry_failed_buffer(
        self,
        info: Info,
        input: Annotated[
            RetryFailedBufferInput,
            strawberry.argument(description="Whose failed items, and whether to wait."),
        ],
    ) -> RetryFailedBufferResult:
        ctx = info.context
        async with ctx.uow() as session:
            user = await UserService(session).get(ctx.project_id, input.user_id)
        retried = await ctx.resources.flusher.retry_failed(user.id)
        outcome, flush = await _run_flush(info, input.user_id, FlushTriggerEnum.RETRY, input.wait)
        return RetryFailedBufferPayload(retried_items=retried, outcome=outcome, flush=flush)
