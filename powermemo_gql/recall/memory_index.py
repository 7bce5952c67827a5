"""The keyword side of search and its bookkeeping, kept in memory per user.

A LIKE scan (SQLite) or a full-text match (PostgreSQL) over a user's 10k rows, plus counting
them and finding those without a current vector, cost tens of milliseconds a search. Each
process keeps instead, per user it searched, every row's words (an inverted index), filter
attributes and embedded model, and rebuilds a user's only when their memory version moved:
the user's change counter (every write to profile entries, events or facts appends to the
change feed) with their vector version (bumped whenever their vectors change), read in one
indexed lookup per search, so a write through any process is seen by the next search.
"""

from __future__ import annotations

import uuid
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from powermemo_gql.recall.models import RecallKind
from powermemo_gql.recall.repository import Candidate, MemoryVersion, RecallRepository, Scope
from powermemo_gql.recall.repository import words as split_words
from powermemo_gql.recall.sources import SOURCES

# Rows kept per process (about 1.3 kB each for an 8-word fact: ~130 MB); the users searched
# longest ago go first.
MAX_INDEXED_ROWS = 100_000


@dataclass(frozen=True)
class IndexedRow:
    kind: RecallKind
    id: uuid.UUID
    event_id: uuid.UUID | None
    topic: str | None
    start: datetime | None
    end: datetime | None
    embedded_model: str | None
    tags: list[dict[str, Any]]
    words: Counter[str]  # of its keyword text (sources.keyword_text), as ranking counts them


@dataclass
class UserMemory:
    version: MemoryVersion
    rows: list[IndexedRow]
    postings: dict[str, list[int]] = field(default_factory=dict)  # word -> indices in rows
    by_kind: dict[RecallKind, list[IndexedRow]] = field(default_factory=dict)
    # One candidate per row, made once: a search hands out thousands of them.
    candidates: list[Candidate] = field(default_factory=list)
    # (kind, model) -> ids without a vector of that model: the unfiltered case, once.
    _stale: dict[tuple[RecallKind, str], frozenset[uuid.UUID]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for kind in RecallKind:
            self.by_kind[kind] = []
        self.candidates = [Candidate(row.kind, row.id, row.event_id, None) for row in self.rows]
        for index, row in enumerate(self.rows):
            self.by_kind[row.kind].append(row)
            for word in row.words:
                self.postings.setdefault(word, []).append(index)

    @property
    def topics(self) -> set[str]:
        return {r.topic for r in self.rows if r.kind is RecallKind.PROFILE and r.topic}

    def event_tags(self) -> list[tuple[uuid.UUID, list[dict[str, Any]]]]:
        return [(r.id, r.tags) for r in self.rows if r.kind is RecallKind.EVENT]

    def count(self, kinds: Sequence[RecallKind], scope: Scope) -> int:
        """Rows in scope, of these kinds."""
        if _unfiltered(scope):
            return sum(len(self.by_kind[kind]) for kind in set(kinds))
        return sum(
            1 for kind in set(kinds) for row in self.by_kind[kind] if in_scope(row, kinds, scope)
        )

    def stale_ids(self, kinds: Sequence[RecallKind], scope: Scope, model: str) -> set[uuid.UUID]:
        """Rows in scope without a current vector of `model` (new, changed, another model)."""
        if not _unfiltered(scope):
            return {
                row.id
                for kind in set(kinds)
                for row in self.by_kind[kind]
                if row.embedded_model != model and in_scope(row, kinds, scope)
            }
        stale: set[uuid.UUID] = set()
        for kind in set(kinds):
            if (kind, model) not in self._stale:
                self._stale[(kind, model)] = frozenset(
                    r.id for r in self.by_kind[kind] if r.embedded_model != model
                )
            stale |= self._stale[(kind, model)]
        return stale

    def keyword_matches(
        self, kinds: Sequence[RecallKind], scope: Scope, terms: Sequence[str]
    ) -> list[tuple[Candidate, Counter[str]]]:
        """Rows in scope holding a whole word of the terms, with their word counts."""
        indices = sorted({i for term in set(terms) for i in self.postings.get(term, ())})
        rows, candidates = self.rows, self.candidates
        return [(candidates[i], rows[i].words) for i in indices if in_scope(rows[i], kinds, scope)]


def _unfiltered(scope: Scope) -> bool:
    return scope.topics is None and scope.happened_after is None and scope.happened_before is None


def in_scope(row: IndexedRow, kinds: Sequence[RecallKind], scope: Scope) -> bool:
    """The request's filters on one row (as the SQL of repository._in_scope; tags apart)."""
    if row.kind not in kinds:
        return False
    source = SOURCES[row.kind]
    if source.has_topic and scope.topics is not None and row.topic not in scope.topics:
        return False
    if source.has_time:
        if scope.happened_after is not None and not (
            row.end is not None and row.end >= scope.happened_after
        ):
            return False
        if scope.happened_before is not None and not (
            row.start is not None and row.start <= scope.happened_before
        ):
            return False
    return True


class MemoryIndex:
    def __init__(self, max_rows: int = MAX_INDEXED_ROWS) -> None:
        self._max_rows = max_rows
        self._users: OrderedDict[tuple[uuid.UUID, uuid.UUID], UserMemory] = OrderedDict()

    async def get(
        self, recall: RecallRepository, project_id: uuid.UUID, user_id: uuid.UUID
    ) -> UserMemory:
        key = (project_id, user_id)
        # Read before the rows: a write committed in between makes the rows newer than the
        # version kept, and the next search reloads them (never the other way round).
        version = await recall.memory_version(user_id)
        cached = self._users.get(key)
        if cached is not None and cached.version == version:
            self._users.move_to_end(key)
            return cached
        loaded = UserMemory(version, await _load(recall, project_id, user_id))
        self._users[key] = loaded
        self._users.move_to_end(key)
        while len(self._users) > 1 and sum(len(m.rows) for m in self._users.values()) > (
            self._max_rows
        ):
            self._users.popitem(last=False)
        return loaded


async def _load(
    recall: RecallRepository, project_id: uuid.UUID, user_id: uuid.UUID
) -> list[IndexedRow]:
    rows: list[IndexedRow] = []
    for kind in RecallKind:
        for target, event, topic, start, end, model, tags, text in await recall.index_rows(
            kind, project_id, user_id
        ):
            rows.append(
                IndexedRow(
                    kind,
                    target,
                    event,
                    topic,
                    start,
                    end,
                    model,
                    tags or [],
                    Counter(split_words(text)),
                )
            )
    return rows
