"""The facts of an event: its summary is one note per line ("- Went hiking [said ...]")."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from powermemo_gql.events.models import Event
from powermemo_gql.recall.models import EventFact

_BULLETS = "-*•· \t"


def fact_lines(summary: str) -> list[str]:
    """The non-empty lines of a summary, without their list bullets."""
    return [line for raw in summary.splitlines() if (line := raw.strip().lstrip(_BULLETS).strip())]


def facts_of(event: Event, blob_ids: Sequence[str], *, now: datetime) -> list[EventFact]:
    """Fact rows for an event (its id must be set), dated and sourced like the event, written
    at `now` (the writer's clock)."""
    return [
        EventFact(
            project_id=event.project_id,
            user_id=event.user_id,
            event_id=event.id,
            position=position,
            content=line,
            happened_from=event.happened_from,
            happened_to=event.happened_to,
            source_blob_ids=list(blob_ids),
            embedding_flush_id=event.embedding_flush_id,  # what wrote the event wrote them
            created_at=now,
        )
        for position, line in enumerate(fact_lines(event.summary))
    ]
