"""What the helpers return: small frozen dataclasses, parsed from the server's JSON."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

_T = TypeVar("_T")


class ChangeKind(StrEnum):
    ENTRY_ADDED = "ENTRY_ADDED"
    ENTRY_UPDATED = "ENTRY_UPDATED"
    ENTRY_DELETED = "ENTRY_DELETED"
    BUFFER_FLUSHED = "BUFFER_FLUSHED"
    FLUSH_FAILED = "FLUSH_FAILED"
    EVENT_UPDATED = "EVENT_UPDATED"
    EVENT_DELETED = "EVENT_DELETED"


class FlushStatus(StrEnum):
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"
    ABANDONED = "ABANDONED"


class FlushTrigger(StrEnum):
    SIZE = "SIZE"
    IDLE = "IDLE"
    MANUAL = "MANUAL"
    RETRY = "RETRY"
    RECOVERY = "RECOVERY"
    IMPORT = "IMPORT"


class FlushOutcome(StrEnum):
    FLUSHED = "FLUSHED"  # it ran: Flush.status says DONE or FAILED
    SCHEDULED = "SCHEDULED"  # wait=False: it runs in the background
    NOTHING_TO_FLUSH = "NOTHING_TO_FLUSH"  # the buffer had no idle item
    BUSY = "BUSY"  # another flush of this user still ran after waiting: try again later
    INTERRUPTED = "INTERRUPTED"  # it lost its lease and wrote nothing; its items are redone


class ProfileSource(StrEnum):
    LLM = "LLM"  # extracted by the memory pipeline
    MANUAL = "MANUAL"  # written through the API
    IMPORT = "IMPORT"  # imported from text


class RevisionAction(StrEnum):
    UPDATE = "UPDATE"
    DELETE = "DELETE"


class ProfileDeltaAction(StrEnum):
    ADD = "ADD"
    UPDATE = "UPDATE"
    DELETE = "DELETE"


def _time(value: Any) -> datetime:
    return datetime.fromisoformat(str(value))


def _optional_time(value: Any) -> datetime | None:
    return None if value is None else _time(value)


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


def _parse(cls: type[_T], raw: Mapping[str, Any], **convert: Callable[[Any], Any]) -> _T:
    """A dataclass from the server's JSON: each field from its camelCase key, through its
    converter when one is given (every key must be there)."""
    values = {}
    for f in fields(cls):  # type: ignore[arg-type]  # cls is a dataclass
        value = raw[_camel(f.name)]
        values[f.name] = convert[f.name](value) if f.name in convert else value
    return cls(**values)


@dataclass(frozen=True)
class User:
    """`id` is the app's own id, the one every user argument takes; `node_id` the server's
    global id (for node(id:))."""

    id: str
    data: Mapping[str, Any] = field(hash=False)  # compared, but a dict cannot be hashed
    created_at: datetime
    updated_at: datetime
    node_id: str

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> User:
        return cls(
            id=raw["userId"],
            data=raw["data"],
            created_at=_time(raw["createdAt"]),
            updated_at=_time(raw["updatedAt"]),
            node_id=raw["id"],
        )


@dataclass(frozen=True)
class Blob:
    """A stored blob: `type` is CHAT, DOCUMENT, CODE, IMAGE or TRANSCRIPT."""

    id: str
    type: str
    created_at: datetime

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Blob:
        return cls(id=raw["id"], type=raw["type"], created_at=_time(raw["createdAt"]))


@dataclass(frozen=True)
class Flush:
    """One run of the memory pipeline over a user's buffer."""

    id: str
    trigger: FlushTrigger
    status: FlushStatus
    item_count: int
    llm_calls: int
    input_tokens: int
    output_tokens: int
    error: str | None
    event_id: str | None
    started_at: datetime
    finished_at: datetime | None
    dropped_items: int = 0  # items of LLM answers left out because they did not parse
    # Texts embedded from the rows it wrote and their tokens: counted as the indexer stores
    # their vectors, so they grow after the flush finished.
    embedding_texts: int = 0
    embedding_tokens: int = 0

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Flush:
        return _parse(
            cls,
            raw,
            trigger=FlushTrigger,
            status=FlushStatus,
            started_at=_time,
            finished_at=_optional_time,
        )


@dataclass(frozen=True)
class FlushResult:
    """What a flush request did; `flush` is set when one ran (FLUSHED or INTERRUPTED)."""

    outcome: FlushOutcome
    flush: Flush | None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> FlushResult:
        flush = raw["flush"]
        return cls(
            outcome=FlushOutcome(raw["outcome"]),
            flush=None if flush is None else Flush.from_json(flush),
        )


@dataclass(frozen=True)
class ProfileRevision:
    """A previous value of an entry; `action` (UPDATE or DELETE) is what replaced it."""

    content: str
    action: RevisionAction
    source: ProfileSource
    created_at: datetime

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ProfileRevision:
        return _parse(cls, raw, action=RevisionAction, source=ProfileSource, created_at=_time)


@dataclass(frozen=True)
class ProfileEntry:
    """One fact of a profile; `source` is LLM, MANUAL or IMPORT."""

    id: str
    topic: str
    sub_topic: str
    content: str
    source: ProfileSource
    created_at: datetime
    updated_at: datetime
    source_blob_ids: tuple[str, ...] = ()
    source_event_id: str | None = None
    history: tuple[ProfileRevision, ...] = ()
    last_mentioned_at: datetime | None = None  # when the user last spoke of it

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ProfileEntry:
        return _parse(
            cls,
            raw,
            source=ProfileSource,
            created_at=_time,
            updated_at=_time,
            source_blob_ids=tuple,
            history=lambda history: tuple(ProfileRevision.from_json(r) for r in history),
            last_mentioned_at=_optional_time,
        )


@dataclass(frozen=True)
class EventTag:
    tag: str
    value: str


@dataclass(frozen=True)
class ProfileDeltaItem:
    """One profile change an event made; `content` is None when deleted, `previous` when added."""

    action: ProfileDeltaAction
    topic: str
    sub_topic: str
    content: str | None
    previous: str | None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ProfileDeltaItem:
        return _parse(cls, raw, action=ProfileDeltaAction)


@dataclass(frozen=True)
class Event:
    """Something that happened to a user, dated by when it was said (happened_from/to)."""

    id: str
    summary: str
    tags: tuple[EventTag, ...]
    happened_from: datetime
    happened_to: datetime
    created_at: datetime
    profile_delta: tuple[ProfileDeltaItem, ...] = ()

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Event:
        return _parse(
            cls,
            raw,
            tags=lambda tags: tuple(EventTag(tag=t["tag"], value=t["value"]) for t in tags),
            happened_from=_time,
            happened_to=_time,
            created_at=_time,
            profile_delta=lambda delta: tuple(ProfileDeltaItem.from_json(d) for d in delta),
        )


@dataclass(frozen=True)
class Context:
    """A user's memory as one prompt-ready string of `tokens` tokens (cl100k_base)."""

    text: str
    tokens: int
    profile_entries: int
    events: int

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Context:
        return _parse(cls, raw)


@dataclass(frozen=True)
class ProfileChange:
    """One change of the feed; pass `cursor` as `since` (or `after`) to resume after it."""

    cursor: str
    kind: ChangeKind
    created_at: datetime
    entry_id: str | None = None
    topic: str | None = None
    sub_topic: str | None = None
    old_value: str | None = None
    new_value: str | None = None
    source: ProfileSource | None = None
    flush_id: str | None = None
    event_id: str | None = None
    error: str | None = None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ProfileChange:
        return _parse(
            cls,
            raw,
            kind=ChangeKind,
            created_at=_time,
            source=lambda source: None if source is None else ProfileSource(source),
        )


@dataclass(frozen=True)
class SearchHit:
    """One search result: `kind` PROFILE, EVENT or FACT; `text` what it says (the entry's
    content, the event's summary or the fact); `id` its id (an event's for EVENT and FACT
    hits in `event_id`)."""

    kind: str
    score: float
    text: str
    id: str
    vector_rank: int | None
    keyword_rank: int | None
    entry: ProfileEntryRef | None = None
    event_id: str | None = None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> SearchHit:
        entry, event, fact = raw.get("entry"), raw.get("event"), raw.get("fact")
        if entry:
            text, id_, event_id = entry["content"], entry["id"], None
        elif event:
            text, id_, event_id = event["summary"], event["id"], event["id"]
        else:
            assert fact is not None  # exactly one of the three is set
            text, id_, event_id = fact["content"], fact["id"], fact["eventId"]
        return cls(
            kind=raw["kind"],
            score=raw["score"],
            text=text,
            id=id_,
            vector_rank=raw["vectorRank"],
            keyword_rank=raw["keywordRank"],
            entry=ProfileEntryRef(entry["topic"], entry["subTopic"]) if entry else None,
            event_id=event_id,
        )


@dataclass(frozen=True)
class ProfileEntryRef:
    topic: str
    sub_topic: str


@dataclass(frozen=True)
class SearchResults:
    """Hits best first; `mode` how it searched (KEYWORD when no embedder), and why in
    `fallback` / `reason` when that is not what was asked."""

    hits: tuple[SearchHit, ...]
    mode: str
    fallback: str | None
    reason: str | None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> SearchResults:
        return _parse(cls, raw, hits=lambda hits: tuple(SearchHit.from_json(h) for h in hits))
