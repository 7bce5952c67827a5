"""Hybrid search over one user's memory: vector similarity and keyword rank, fused (RRF)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from powermemo_gql.core.validation import check_storable
from powermemo_gql.errors import DomainError, InvalidInput
from powermemo_gql.profiles.config import ProfileConfig
from powermemo_gql.projects.repository import ProjectRepository
from powermemo_gql.recall import pgvector
from powermemo_gql.recall.embeddings import Embedder
from powermemo_gql.recall.memory_index import UserMemory
from powermemo_gql.recall.models import RecallKind
from powermemo_gql.recall.ranking import by_bm25_counted, fused
from powermemo_gql.recall.repository import Candidate, RecallRepository, Scope, query_terms
from powermemo_gql.recall.sources import SOURCES
from powermemo_gql.recall.vectors import VectorCache, most_similar

MAX_QUERY_CHARS = 1000
MAX_FIRST = 100
MAX_FILTER_VALUES = 50
CANDIDATES = 100  # taken from each ranked list before fusion


class SearchMode(StrEnum):
    HYBRID = "hybrid"
    KEYWORD = "keyword"
    VECTOR = "vector"


class Fallback(StrEnum):
    """Why a search ran keyword-only although vectors were asked for."""

    NO_EMBEDDER = "no_embedder"
    EMBEDDING_UNAVAILABLE = "embedding_unavailable"


class VectorSearch(StrEnum):
    """Where the vector side ranked: in PostgreSQL with pgvector, or the in-process scan."""

    PGVECTOR = "pgvector"
    EXACT_SCAN = "exact_scan"


@dataclass(frozen=True)
class SearchRequest:
    query: str
    first: int = 10
    kinds: tuple[RecallKind, ...] | None = None
    topics: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    happened_after: datetime | None = None
    happened_before: datetime | None = None
    min_score: float | None = None
    mode: SearchMode = SearchMode.HYBRID


@dataclass(frozen=True)
class Hit:
    kind: RecallKind
    row: Any  # ProfileEntry, Event or EventFact
    score: float
    vector_rank: int | None
    keyword_rank: int | None
    similarity: float | None
    keyword_score: float | None


@dataclass
class SearchResult:
    hits: list[Hit]
    mode: SearchMode  # how it searched
    fallback: Fallback | None = None
    model: str | None = None  # the model of the vectors compared
    # Rows in scope the vector side could not see (no vector of the current model yet):
    # found by keyword only. None when vectors were not used.
    keyword_only_rows: int | None = None
    vector_search: VectorSearch | None = None  # None when vectors were not used


def tag_matches(tags: list[dict[str, Any]], wanted: tuple[str, ...]) -> bool:
    """ "name" matches a tag of that name; "name:value" that tag with that value."""
    for tag in tags:
        name, value = str(tag.get("tag", "")), str(tag.get("value", ""))
        if name in wanted or f"{name}:{value}" in wanted:
            return True
    return False


class SearchService:
    def __init__(self, session: AsyncSession, embedder: Embedder, vectors: VectorCache) -> None:
        self.recall = RecallRepository(session)
        self.session = session
        self.embedder = embedder
        self.vectors = vectors

    async def search(
        self, project_id: uuid.UUID, user_id: uuid.UUID, request: SearchRequest
    ) -> SearchResult:
        query = self._checked(request)
        # One indexed read when the user's memory is unchanged since this process last
        # searched it: counts, stale rows, tags and keyword matches come from memory.
        memory = await self.vectors.memory.get(self.recall, project_id, user_id)
        if request.topics is not None:
            known = await self._known_topics(project_id, memory)
            for index, topic in enumerate(request.topics):
                if topic not in known:
                    raise InvalidInput(f"topics[{index}]", f"unknown topic '{topic}'")
        if (
            request.happened_after is not None
            and request.happened_before is not None
            and request.happened_after > request.happened_before
        ):
            raise InvalidInput("happenedAfter", "must not be later than happenedBefore")
        mode, fallback = request.mode, None
        query_vector: list[float] | None = None
        if mode is not SearchMode.KEYWORD:
            if not self.embedder.enabled:
                mode, fallback = SearchMode.KEYWORD, Fallback.NO_EMBEDDER
            else:
                try:
                    query_vector = (await self.embedder.embed([query], "query")).vectors[0]
                except DomainError:  # EmbeddingUnavailable: answer by keyword, say so
                    mode, fallback = SearchMode.KEYWORD, Fallback.EMBEDDING_UNAVAILABLE
        scope = Scope(
            project_id,
            user_id,
            request.topics,
            request.happened_after,
            request.happened_before,
        )
        kinds = [
            kind
            for kind in request.kinds or tuple(RecallKind)
            if not (request.topics is not None and not SOURCES[kind].has_topic)
            and not (request.tags is not None and not SOURCES[kind].has_tags)
            and not (
                (request.happened_after or request.happened_before) and not SOURCES[kind].has_time
            )
        ]
        allowed = self._tagged_events(memory, request.tags)
        result = SearchResult(hits=[], mode=mode, fallback=fallback)
        terms = query_terms(query) if mode is not SearchMode.VECTOR else []
        if not kinds:
            return result
        documents = memory.count(kinds, scope) if terms else 0
        keyword_list = memory.keyword_matches(kinds, scope, terms) if terms else []
        stale: set[uuid.UUID] = set()
        if query_vector is not None:
            stale = memory.stale_ids(kinds, scope, self.embedder.model)
        if allowed is not None:
            keyword_list = [c for c in keyword_list if c[0].event_id in allowed]
        similar: list[tuple[Candidate, float]] = []
        if query_vector is not None:
            result.model = self.embedder.model
            result.keyword_only_rows = len(stale)
            model, dimensions = self.embedder.model, self.embedder.dimensions
            if self.vectors.use_pgvector and await pgvector.available(self.session):
                result.vector_search = VectorSearch.PGVECTOR
                nearest = await pgvector.most_similar(
                    self.session, query_vector, kinds, scope, allowed, model, dimensions, CANDIDATES
                )
            else:
                result.vector_search = VectorSearch.EXACT_SCAN
                vector_version = memory.version[1] if memory.version else 0
                cached = await self.vectors.get(
                    self.recall, user_id, model, dimensions, vector_version
                )
                nearest = most_similar(
                    cached, query_vector, kinds, scope, allowed, stale, CANDIDATES
                )
            similar = [
                (Candidate(kind, target, event, None), score)
                for kind, target, event, score in nearest
            ]
        matched = by_bm25_counted(keyword_list, terms, documents, CANDIDATES)
        result.hits = await self._fuse(similar, matched, request)
        return result

    async def _fuse(
        self,
        similar: list[tuple[Candidate, float]],
        matched: list[tuple[Candidate, float]],
        request: SearchRequest,
    ) -> list[Hit]:
        found: dict[tuple[RecallKind, uuid.UUID], dict[str, Any]] = {}
        for rank, (candidate, similarity) in enumerate(similar, start=1):
            entry = found.setdefault((candidate.kind, candidate.target_id), {})
            entry.update(vector_rank=rank, similarity=similarity)
        for rank, (candidate, score) in enumerate(matched, start=1):
            entry = found.setdefault((candidate.kind, candidate.target_id), {})
            entry.update(keyword_rank=rank, keyword_score=score)
        scored = [
            (key, fused([entry.get("vector_rank"), entry.get("keyword_rank")]), entry)
            for key, entry in found.items()
        ]
        scored = [s for s in scored if request.min_score is None or s[1] >= request.min_score]
        scored.sort(key=lambda s: (-s[1], -(s[2].get("similarity") or 0.0), str(s[0][1])))
        top = scored[: request.first]
        rows: dict[tuple[RecallKind, uuid.UUID], Any] = {}
        for kind in RecallKind:
            ids = [key[1] for key, _, _ in top if key[0] is kind]
            for row_id, row in (await self.recall.rows(kind, ids)).items():
                rows[(kind, row_id)] = row
        return [
            Hit(
                kind=key[0],
                row=rows[key],
                score=score,
                vector_rank=entry.get("vector_rank"),
                keyword_rank=entry.get("keyword_rank"),
                similarity=entry.get("similarity"),
                keyword_score=entry.get("keyword_score"),
            )
            for key, score, entry in top
            if key in rows
        ]

    def _tagged_events(
        self, memory: UserMemory, tags: tuple[str, ...] | None
    ) -> set[uuid.UUID | None] | None:
        if tags is None:
            return None
        return {
            event_id
            for event_id, event_tags in memory.event_tags()
            if tag_matches(event_tags, tags)
        }

    def _checked(self, request: SearchRequest) -> str:
        """The query, stripped; InvalidInput naming the first argument that cannot be used
        (of those checked without the database: topics and dates follow in search)."""
        query = request.query.strip()
        if not query:
            raise InvalidInput("query", "must not be empty")
        if len(query) > MAX_QUERY_CHARS:
            raise InvalidInput("query", f"must be at most {MAX_QUERY_CHARS} characters")
        check_storable(query, "query")
        if not 1 <= request.first <= MAX_FIRST:
            raise InvalidInput("first", f"must be between 1 and {MAX_FIRST}")
        if request.kinds is not None and not request.kinds:
            raise InvalidInput("kinds", "must not be empty (omit it to search every kind)")
        for name, values in (("topics", request.topics), ("tags", request.tags)):
            if values is not None and not 1 <= len(values) <= MAX_FILTER_VALUES:
                raise InvalidInput(name, f"must hold between 1 and {MAX_FILTER_VALUES} values")
        return query

    async def _known_topics(self, project_id: uuid.UUID, memory: UserMemory) -> set[str]:
        """The project's configured topics and those the user's profile holds."""
        project = await ProjectRepository(self.session).get(project_id)
        config = ProfileConfig.from_stored(project.profile_config if project else {})
        return {slot.topic for slot in config.slots} | memory.topics
