"""Writing the pipeline's profile changes, each with its change-feed record."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from powermemo_gql.changes.models import Change, ChangeKind
from powermemo_gql.memory.pipeline import ProfileChange
from powermemo_gql.profiles.models import ProfileEntry, ProfileSource
from powermemo_gql.profiles.repository import ProfileRepository

logger = logging.getLogger(__name__)

_KIND = {
    "add": ChangeKind.ENTRY_ADDED,
    "update": ChangeKind.ENTRY_UPDATED,
    "delete": ChangeKind.ENTRY_DELETED,
}
_ACTION = {kind.value: action for action, kind in _KIND.items()}


async def apply_change(
    profiles: ProfileRepository,
    project_id: uuid.UUID,
    user_id: uuid.UUID,
    change: ProfileChange,
    *,
    source: ProfileSource,
    blob_ids: list[str],
    event_id: uuid.UUID | None,
    flush_id: uuid.UUID | None,
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
                source=source.value,
                source_blob_ids=blob_ids,
                source_event_id=event_id,
            )
        )
    else:
        found = await profiles.get(change.entry_id) if change.entry_id else None
        if found is None or found.content != change.previous:
            logger.info("profile entry %s changed meanwhile; left as it is", change.entry_id)
            return None
        entry = found
        if change.action == "delete":
            await profiles.delete_keeping_history(entry, source.value, event_id)
        else:
            await profiles.update_content(entry, change.content, source.value, event_id)
            entry.source_blob_ids = sorted({*entry.source_blob_ids, *blob_ids})
    return Change(
        project_id=project_id,
        user_id=user_id,
        kind=_KIND[change.action].value,
        entry_id=entry.id,
        topic=change.topic,
        sub_topic=change.sub_topic,
        old_value=change.previous,
        new_value=None if change.action == "delete" else change.content,
        source=source.value,
        flush_id=flush_id,
        event_id=event_id,
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
