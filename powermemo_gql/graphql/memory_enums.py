"""The enums and inputs of buffers and flushes over GraphQL, each value described."""

from __future__ import annotations

import strawberry

from powermemo_gql.buffers.models import BufferStatus as BufferStatusEnum
from powermemo_gql.buffers.models import FlushStatus as FlushStatusEnum
from powermemo_gql.buffers.models import FlushTrigger as FlushTriggerEnum
from powermemo_gql.buffers.models import PipelineStep as PipelineStepEnum
from powermemo_gql.graphql.enums import described_enum
from powermemo_gql.memory.job import FlushOutcome as FlushOutcomeEnum

BufferItemStatus = described_enum(
    BufferStatusEnum,
    name="BufferItemStatus",
    description="Where a buffer item is on its way into memory.",
    values={
        "IDLE": "It waits for the next flush.",
        "PROCESSING": "A flush is working on it.",
        "DONE": "It is in memory (Buffer.items no longer lists it).",
        "FAILED": "Its flush failed (see error); retryFailedBuffer puts it back.",
    },
)
FlushStatus = described_enum(
    FlushStatusEnum,
    name="FlushStatus",
    description="Where a flush is.",
    values={
        "RUNNING": "It is working.",
        "DONE": "It finished: its event and profile changes are written.",
        "FAILED": "It stopped with an error (see error): nothing went into memory.",
        "ABANDONED": (
            "It stopped unfinished (its process died, or it lost its lease); nothing went into "
            "memory, and its items went back to idle."
        ),
    },
)
FlushTrigger = described_enum(
    FlushTriggerEnum,
    name="FlushTrigger",
    description="What started a flush.",
    values={
        "SIZE": "The buffer's idle items passed max_buffer_tokens.",
        "IDLE": "No new item arrived for buffer_flush_interval.",
        "MANUAL": "The flushBuffer mutation.",
        "RETRY": "The retryFailedBuffer mutation.",
        "RECOVERY": "The items of an abandoned flush, flushed again.",
        "IMPORT": "The importProfile mutation: text, not buffer items.",
    },
)
PipelineStep = described_enum(
    PipelineStepEnum,
    name="PipelineStep",
    description="A step of the memory pipeline, as its LLM calls are counted.",
    values={
        "SUMMARIZE": "Summarizing the buffer's blobs into the event's dated notes.",
        "EXTRACT": "Extracting profile facts from the summary.",
        "MERGE": "Merging a new fact into an existing entry.",
        "ORGANIZE": "Regrouping a topic that holds too many sub-topics.",
        "SHORTEN": "Shortening an entry past its length limit.",
        "TAG_EVENT": "Tagging the event with the project's event tags.",
        "OTHER": "A call without a step, or a step this version does not know.",
    },
)


FlushOutcome = described_enum(
    FlushOutcomeEnum,
    name="FlushOutcome",
    description="What a flushBuffer or retryFailedBuffer call did.",
    values={
        "SCHEDULED": "wait: false: the flush runs in the background (or one already runs).",
        "FLUSHED": "It ran: flush.status says DONE, or FAILED with flush.error.",
        "NOTHING_TO_FLUSH": "The buffer had no idle item.",
        "BUSY": (
            "Another flush of this user still ran after waiting flush_lease_seconds; "
            "try again later."
        ),
        "INTERRUPTED": (
            "It lost its lease mid-way and wrote nothing (flush.status ABANDONED); its items "
            "went back to the buffer and are flushed again."
        ),
    },
)


@strawberry.input(description="The user whose buffer to flush.")
class FlushBufferInput:
    user_id: strawberry.ID = strawberry.field(description="The app's id of the user.")
    wait: bool = strawberry.field(
        default=False, description="Return when the flush is done, not when it is scheduled."
    )


@strawberry.input(description="The user whose failed buffer items to retry.")
class RetryFailedBufferInput:
    user_id: strawberry.ID = strawberry.field(description="The app's id of the user.")
    wait: bool = strawberry.field(
        default=False, description="Return when the flush is done, not when it is scheduled."
    )
