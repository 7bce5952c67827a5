"""The one write path of the pipeline's results: profile changes, each with its change-feed
record, the event of a flush, and what the flush cost."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from powermemo_gql.buffers.models import Flush, FlushStatus, FlushStepUsage, PipelineStep
from powermemo_gql.changes.models import Change, ChangeKind
from powermemo_gql.changes.repository import ChangeRepository
from powermemo_gql.events.models import DeltaAction, Event
from powermemo_gql.memory.parsing import Usage
from powermemo_gql.memory.pipeline import PipelineResult, ProfileChange
from powermemo_gql.profiles.models import ProfileEntry, ProfileSource, entry_change
from powermemo_gql.profiles.repository import ProfileRepository
from powermemo_gql.recall.facts import facts_of

logger = logging.getLogger(__name__)

_KIND = {
    DeltaAction.ADD.value: ChangeKind.ENTRY_ADDED,
    DeltaAction.UPDATE.value: ChangeKind.ENTRY_UPDATED,
    DeltaAction.DELETE.value: ChangeKind.ENTRY_DELETED,
}
_ACTION = {kind.value: action for action, kind in _KIND.items()}


@dataclass(frozen=True)
class ChangeOrigin:
    """Where the profile changes of one write come from, stamped on what they write.
    `flush_id`: the flush writing them, also charged for embedding what they wrote.
    `now`: the time what they write is stamped with (the app's clock).
    `mentioned_at`: when the user spoke of it (none for text imports)."""

    source: ProfileSource
    blob_ids: list[str]
    event_id: uuid.UUID | None
    flush_id: uuid.UUID | None
    now: datetime
    mentioned_at: datetime | None = None


async def apply_change(
    profiles: ProfileRepository,
    project_id: uuid.UUID,
    user_id: uuid.UUID,
    change: ProfileChange,
    origin: ChangeOrigin,
) -> Change | None:
    """Write one profile change, unless the entry changed since the pipeline read it (an edit
    made meanwhile wins). The feed record of what was written (not yet added), or None."""
    if change.action == "add":
        if await profiles.find(user_id, change.topic, change.sub_topic) is not None:
            logger.info("%s/%s appeared meanwhile; not added", change.topic, change.sub_topic)
            return None
        entry = await profiles.add(
            ProfileEntry(
                project_id=project_id,
                user_id=user_id,
                topic=change.topic,
                sub_topic=change.sub_topic,
                content=change.content,
                source=origin.source.value,
                source_blob_ids=origin.blob_ids,
                source_event_id=origin.event_id,
                last_mentioned_at=origin.mentioned_at,
                embedding_flush_id=origin.flush_id,
                created_at=origin.now,
                updated_at=origin.now,
            )
        )
    else:
        found = await profiles.get(change.entry_id) if change.entry_id else None
        if found is None or found.content != change.previous:
            logger.info("profile entry %s changed meanwhile; left as it is", change.entry_id)
            return None
        entry = found
        if change.action == "delete":
            await profiles.delete_keeping_history(
                entry, origin.source.value, origin.event_id, at=origin.now
            )
        else:
            await profiles.update_content(
                entry,
                change.content,
                origin.source.value,
                origin.event_id,
                origin.flush_id,
                at=origin.now,
            )
            entry.source_blob_ids = sorted({*entry.source_blob_ids, *origin.blob_ids})
            if origin.mentioned_at is not None and (
                entry.last_mentioned_at is None or entry.last_mentioned_at < origin.mentioned_at
            ):
                entry.last_mentioned_at = origin.mentioned_at
    new = None if change.action == "delete" else change.content
    return entry_change(
        entry,
        _KIND[change.action],
        change.previous,
        new,
        origin.source,
        now=origin.now,
        flush_id=origin.flush_id,
        event_id=origin.event_id,
    )


def as_delta(record: Change) -> dict[str, Any]:
    """An event's profile_delta item, from the feed record of a written change."""
    return {
        "action": _ACTION[record.kind],
        "topic": record.topic,
        "sub_topic": record.sub_topic,
        "content": record.new_value or "",
        "previous": record.old_value,
    }


async def apply_changes(
    session: AsyncSession,
    project_id: uuid.UUID,
    user_id: uuid.UUID,
    changes: Sequence[ProfileChange],
    origin: ChangeOrigin,
) -> list[Change]:
    """Write the changes (see apply_change); the feed records of what was written, appended."""
    profiles = ProfileRepository(session)
    written = [
        record
        for change in changes
        if (record := await apply_change(profiles, project_id, user_id, change, origin)) is not None
    ]
    await ChangeRepository(session).append(written)
    return written


async def write_flush_result(
    session: AsyncSession,
    flush: Flush,
    blob_ids: Sequence[uuid.UUID],
    result: PipelineResult,
    now: datetime,
) -> Event:
    """The event of a flush and its profile changes, with their feed records (the flush
    row itself is finished by the caller, which checks its lease). `now` (the app's clock):
    when the event happened if the material did not say, and when it and what it changed were
    written."""
    happened_from, happened_to = result.happened or (now, now)
    event = Event(
        project_id=flush.project_id,
        user_id=flush.user_id,
        summary=result.summary,
        tags=result.tags,
        happened_from=happened_from,
        happened_to=happened_to,
        created_at=now,
        embedding_flush_id=flush.id,  # its facts too (facts_of)
    )
    session.add(event)
    await session.flush()  # the entries below refer to it
    session.add_all(facts_of(event, sorted(str(b) for b in blob_ids), now=now))  # for recall
    written = await apply_changes(
        session,
        flush.project_id,
        flush.user_id,
        result.profile.changes,
        ChangeOrigin(
            source=ProfileSource.LLM,
            blob_ids=sorted(str(b) for b in blob_ids),
            event_id=event.id,
            flush_id=flush.id,
            now=now,
            mentioned_at=happened_to,
        ),
    )
    await ProfileRepository(session).mark_mentioned(result.profile.mentioned, happened_to)
    # The delta records what was written: changes skipped for a concurrent edit are not.
    event.profile_delta = [as_delta(record) for record in written]
    await ChangeRepository(session).append(
        [flush_change(flush, ChangeKind.BUFFER_FLUSHED, now=now, event_id=event.id)]
    )
    await record_steps(session, flush, result.usage)
    return event


def flush_change(
    flush: Flush,
    kind: ChangeKind,
    *,
    now: datetime,
    event_id: uuid.UUID | None = None,
    error: str | None = None,
) -> Change:
    """The change-feed record of how a flush ended (at `now`, the app's clock): the event it
    wrote, or why it failed."""
    return Change(
        project_id=flush.project_id,
        user_id=flush.user_id,
        kind=kind.value,
        flush_id=flush.id,
        event_id=event_id,
        error=error,
        created_at=now,
    )


def usage_values(usage: Usage) -> dict[str, int]:
    """The flush columns that record what it cost."""
    return {
        "llm_calls": usage.calls,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "dropped_items": usage.dropped_items,
    }


async def record_steps(session: AsyncSession, flush: Flush, usage: Usage) -> None:
    """What each step of the flush cost, one row per step."""
    session.add_all(
        FlushStepUsage(
            flush_id=flush.id,
            step=purpose or PipelineStep.OTHER,
            project_id=flush.project_id,
            calls=step.calls,
            input_tokens=step.input_tokens,
            output_tokens=step.output_tokens,
        )
        for purpose, step in usage.by_purpose.items()
    )
    await session.flush()


def finish_flush(
    flush: Flush, status: FlushStatus, usage: Usage, now: datetime, error: str | None = None
) -> None:
    """Fill in the outcome of a flush row not yet written (imports), finished `now`."""
    flush.status = status.value
    flush.error = error
    for name, value in usage_values(usage).items():
        setattr(flush, name, value)
    flush.finished_at = now
