"""The three kinds of indexed rows, described once: table, text, what a filter applies to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, String, literal_column
from sqlmodel import col

from powermemo_gql.events.models import Event
from powermemo_gql.profiles.models import ProfileEntry
from powermemo_gql.recall.models import EventFact, RecallKind

Row = ProfileEntry | Event | EventFact


@dataclass(frozen=True)
class Source:
    kind: RecallKind
    model: type[Any]
    # The column whose change makes a vector stale (compared when a vector is stored).
    content: Any
    # Which filters this kind has the attribute for; a filter it lacks excludes the kind.
    has_topic: bool
    has_time: bool
    has_tags: bool

    @property
    def id(self) -> Any:
        return col(self.model.id)

    @property
    def user_id(self) -> Any:
        return col(self.model.user_id)

    @property
    def project_id(self) -> Any:
        return col(self.model.project_id)

    @property
    def embedded_model(self) -> Any:
        return col(self.model.embedded_model)

    @property
    def embedding_flush_id(self) -> Any:
        return col(self.model.embedding_flush_id)

    def keyword_text(self) -> ColumnElement[str]:
        """What the keyword side indexes (and the vector side embeds, see text_of)."""
        content: ColumnElement[str] = self.content
        if self.kind is RecallKind.PROFILE:
            # A literal space: the expression of PostgreSQL's full-text index on profile
            # entries (a migration; search now reads words from recall/memory_index.py).
            space = literal_column("' '", String)
            return col(ProfileEntry.topic) + space + col(ProfileEntry.sub_topic) + space + content
        return content


def text_of(row: Any) -> str:
    """The text embedded for a row."""
    if isinstance(row, ProfileEntry):
        return f"{row.topic} / {row.sub_topic}: {row.content}"
    if isinstance(row, Event):
        return row.summary
    return str(row.content)


SOURCES: dict[RecallKind, Source] = {
    RecallKind.PROFILE: Source(
        RecallKind.PROFILE,
        ProfileEntry,
        col(ProfileEntry.content),
        has_topic=True,
        has_time=False,
        has_tags=False,
    ),
    RecallKind.EVENT: Source(
        RecallKind.EVENT,
        Event,
        col(Event.summary),
        has_topic=False,
        has_time=True,
        has_tags=True,
    ),
    RecallKind.FACT: Source(
        RecallKind.FACT,
        EventFact,
        col(EventFact.content),
        has_topic=False,
        has_time=True,
        has_tags=True,
    ),
}
