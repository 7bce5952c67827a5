"""The context string an app puts in its prompt: profile and recent events, under a token budget.

The whole returned string is counted, wrapper included, and is never over the budget.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from powermemo_gql.blobs.content import text_of
from powermemo_gql.blobs.models import BlobType
from powermemo_gql.blobs.repository import BlobRepository
from powermemo_gql.buffers.models import BufferStatus
from powermemo_gql.buffers.repository import BufferRepository
from powermemo_gql.core.pagination import PageArgs
from powermemo_gql.core.tokens import count_tokens
from powermemo_gql.errors import InvalidInput
from powermemo_gql.events.models import EventView
from powermemo_gql.events.repository import EventRepository
from powermemo_gql.profiles.models import ProfileEntryView
from powermemo_gql.profiles.repository import ProfileRepository


class _Identified(Protocol):
    @property
    def id(self) -> uuid.UUID: ...


R = TypeVar("R", bound=_Identified)

UTC_ZONE = ZoneInfo("UTC")
MAX_CONTEXT_TOKENS = 100_000
RECENT_EVENTS = 50

HEAD = "<memory>\n"
TAIL = "</memory>"
PROFILE_TITLE = "# What we know about the user\n"
EVENTS_TITLE = "# Recent events\n"
BUFFER_TITLE = "# Recent messages, not yet in memory\n"


@dataclass(frozen=True)
class Relevance:
    """What a search found relevant to the turn, best first: packed before the rest."""

    entry_ids: Sequence[uuid.UUID] = ()
    event_ids: Sequence[uuid.UUID] = ()


@dataclass(frozen=True)
class ContextRequest:
    max_tokens: int = 1000
    prefer_topics: Sequence[str] = ()
    only_topics: Sequence[str] | None = None
    profile_event_ratio: float = 0.6
    include_buffer: bool = False
    relevance: Relevance | None = None

    def checked(self) -> ContextRequest:
        if not 1 <= self.max_tokens <= MAX_CONTEXT_TOKENS:
            raise InvalidInput("maxTokens", f"must be between 1 and {MAX_CONTEXT_TOKENS}")
        if not 0.0 <= self.profile_event_ratio <= 1.0:
            raise InvalidInput("profileEventRatio", "must be between 0 and 1")
        return self


@dataclass(frozen=True)
class PackedContext:
    text: str
    tokens: int
    profile_entries: int
    events: int


def _fill(lines: list[str], title: str, budget: int) -> tuple[str, int]:
    """The title and as many lines as fit in `budget` tokens (none: empty), and how many fit.

    Lines are counted one by one (linear, not quadratic); newline-separated text counts
    within a token of the sum of its lines, and pack_context checks the final string exactly.
    """
    used_tokens = count_tokens(title)
    taken: list[str] = []
    for line in lines:
        cost = count_tokens(line + "\n")
        if used_tokens + cost > budget:
            break
        taken.append(line + "\n")
        used_tokens += cost
    return (title + "".join(taken), len(taken)) if taken else ("", 0)


def when(event: EventView, zone: ZoneInfo = UTC_ZONE) -> str:
    """The day an event happened, or its span of days: `2024-03-04` or `2024-03-04..03-06`,
    in the time zone the pipeline dated its messages in."""
    start = event.happened_from.astimezone(zone).date()
    end = event.happened_to.astimezone(zone).date()
    if end <= start:
        return start.isoformat()
    tail = end.isoformat()[5:] if end.year == start.year else end.isoformat()
    return f"{start.isoformat()}..{tail}"


def _notes(summary: str) -> str:
    """An event's notes (one per line, as the summarize step writes them) under its date."""
    notes = [line.strip().lstrip("-*• ").strip() for line in summary.splitlines()]
    return "\n  ".join(n for n in notes if n)


def _first(rows: Sequence[R], ids: Sequence[uuid.UUID]) -> list[R]:
    """`rows` with those whose id is in `ids` first, in the order of `ids`; the rest after."""
    rank = {row_id: i for i, row_id in enumerate(ids)}
    return sorted(rows, key=lambda row: rank.get(row.id, len(rank)))


def pack_context(
    request: ContextRequest,
    profile: Sequence[ProfileEntryView],
    events: Sequence[EventView],
    buffer_texts: list[str],
    zone: ZoneInfo = UTC_ZONE,
) -> PackedContext:
    request = request.checked()
    if request.only_topics is not None:
        allowed = set(request.only_topics)
        profile = [e for e in profile if e.topic in allowed]
    preferred = {t: i for i, t in enumerate(request.prefer_topics)}
    # Preferred topics first (in the order given), then the most recently updated.
    profile = sorted(profile, key=lambda e: -e.updated_at.timestamp())
    profile = sorted(profile, key=lambda e: preferred.get(e.topic, len(preferred)))
    if request.relevance is not None:
        # What is relevant to the turn before all of that, in the order it ranked.
        profile = _first(profile, request.relevance.entry_ids)
        events = _first(events, request.relevance.event_ids)

    budget = request.max_tokens - count_tokens(HEAD + TAIL)
    if budget <= 0:
        return PackedContext("", 0, 0, 0)
    profile_lines = [f"- {e.topic}::{e.sub_topic}: {e.content}" for e in profile]
    event_lines = [f"- [{when(e, zone)}] {_notes(e.summary)}" for e in events]

    profile_part, n_profile = _fill(
        profile_lines, PROFILE_TITLE, int(budget * request.profile_event_ratio)
    )
    remaining = budget - count_tokens(profile_part)
    events_part, n_events = _fill(event_lines, EVENTS_TITLE, remaining)
    remaining -= count_tokens(events_part)
    if n_profile < len(profile_lines) and remaining > 0:
        # Events left budget unused: let the profile have it.
        profile_part, n_profile = _fill(
            profile_lines, PROFILE_TITLE, budget - count_tokens(events_part)
        )
        remaining = budget - count_tokens(profile_part) - count_tokens(events_part)
    buffer_part = ""
    if request.include_buffer and remaining > 0:
        buffer_part, _ = _fill(buffer_texts, BUFFER_TITLE, remaining)

    body = profile_part + events_part + buffer_part
    if not body:
        return PackedContext("", 0, 0, 0)
    text = HEAD + body + TAIL
    # Token counts of concatenated parts can differ by a token at the seams: enforce exactly.
    while count_tokens(text) > request.max_tokens and body:
        body = body[: body.rstrip("\n").rfind("\n") + 1]
        text = HEAD + body + TAIL if body else ""
    return PackedContext(text, count_tokens(text), n_profile, n_events)


class ContextService:
    def __init__(self, session: AsyncSession, zone: ZoneInfo = UTC_ZONE) -> None:
        self.session = session
        self.zone = zone

    async def build(self, user_id: uuid.UUID, request: ContextRequest) -> PackedContext:
        request = request.checked()
        profile = await ProfileRepository(self.session).records_for_users([user_id])
        events_repository = EventRepository(self.session)
        page = await events_repository.list_for_user(user_id, PageArgs(first=RECENT_EVENTS))
        events = list(page.items)
        if request.relevance is not None:
            # Relevant events older than the recent ones are read too.
            recent = {e.id for e in events}
            missing = [i for i in request.relevance.event_ids if i not in recent]
            events += await events_repository.of_user(user_id, missing)
        buffer_texts: list[str] = []
        if request.include_buffer:
            items = [
                i
                for i in await BufferRepository(self.session).pending_for_user(user_id)
                if i.status == BufferStatus.IDLE.value
            ]
            blobs = {
                b.id: b
                for b in await BlobRepository(self.session).get_many([i.blob_id for i in items])
            }
            buffer_texts = [
                text_of(BlobType(blobs[i.blob_id].type), blobs[i.blob_id].payload)
                for i in items
                if i.blob_id in blobs
            ]
        return pack_context(request, profile, events, buffer_texts, self.zone)
