"""user.search over GraphQL: hybrid (vector + keyword) search of one user's memory."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from powermemo_gql.graphql.context import Info
from powermemo_gql.graphql.enums import described_enum
from powermemo_gql.graphql.errors import InvalidInput, domain_errors_as_results
from powermemo_gql.graphql.memory import Event
from powermemo_gql.graphql.node import global_id
from powermemo_gql.graphql.profiles import ProfileEntry
from powermemo_gql.recall.models import EventFact as EventFactRow
from powermemo_gql.recall.models import RecallKind
from powermemo_gql.recall.search import Fallback, Hit, SearchMode, SearchRequest, SearchService
from powermemo_gql.users.models import UserView as UserRow

SearchKind = described_enum(
    RecallKind,
    name="SearchKind",
    description="What a hit is.",
    values={
        "PROFILE": "A profile entry: SearchHit.entry.",
        "EVENT": "An event: SearchHit.event.",
        "FACT": "One fact line of an event's summary: SearchHit.fact.",
    },
)
SearchModeType = described_enum(
    SearchMode,
    name="SearchMode",
    description=(
        "HYBRID: vector similarity and keyword rank, fused; KEYWORD: words only; "
        "VECTOR: meaning only."
    ),
    values={
        "HYBRID": "Vector similarity and keyword (BM25) rank, fused by reciprocal rank.",
        "KEYWORD": "Words only (BM25); needs no embedding provider.",
        "VECTOR": "Meaning only: cosine similarity of embeddings.",
    },
)

_REASONS = {
    Fallback.NO_EMBEDDER: "No embedding provider is configured: searched by keyword only.",
    Fallback.EMBEDDING_UNAVAILABLE: (
        "The embedding provider did not answer, even after retries: searched by keyword only."
    ),
}
SearchFallback = described_enum(
    Fallback,
    name="SearchFallback",
    description="Why a search asked for vectors ran by keyword only.",
    values={fallback.name: reason for fallback, reason in _REASONS.items()},
)


@strawberry.type(description="One dated fact line of an event's summary.")
class EventFact:
    row: strawberry.Private[EventFactRow]

    @strawberry.field(
        description="The fact's own id (a fact is not a Node: it is rebuilt with its event)."
    )
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field(description="The line of the summary, without its bullet.")
    def content(self) -> str:
        return self.row.content

    @strawberry.field(description="The event whose summary holds this fact.")
    def event_id(self) -> strawberry.ID:
        return global_id("Event", self.row.event_id)

    @strawberry.field(description="Its event's happenedFrom.")
    def happened_from(self) -> datetime:
        return self.row.happened_from

    @strawberry.field(description="Its event's happenedTo.")
    def happened_to(self) -> datetime:
        return self.row.happened_to

    @strawberry.field(description="The blobs its event was made from.")
    def source_blob_ids(self) -> list[strawberry.ID]:
        return [global_id("Blob", b) for b in self.row.source_blob_ids]


@strawberry.type(description="One result of a search; exactly one of entry, event, fact is set.")
class SearchHit:
    hit: strawberry.Private[Hit]

    @strawberry.field(
        description="Reciprocal rank fusion of vectorRank and keywordRank: sum of 1/(60+rank)."
    )
    def score(self) -> float:
        return self.hit.score

    @strawberry.field(description="What it is; the field of that kind is set.")
    def kind(self) -> SearchKind:  # type: ignore[valid-type]
        return self.hit.kind

    @strawberry.field(description="The profile entry, for a PROFILE hit.")
    def entry(self) -> ProfileEntry | None:
        return ProfileEntry.of(self.hit.row) if self.hit.kind is RecallKind.PROFILE else None

    @strawberry.field(description="The event, for an EVENT hit.")
    def event(self) -> Event | None:
        return Event(row=self.hit.row) if self.hit.kind is RecallKind.EVENT else None

    @strawberry.field(description="The fact, for a FACT hit.")
    def fact(self) -> EventFact | None:
        return EventFact(row=self.hit.row) if self.hit.kind is RecallKind.FACT else None

    @strawberry.field(description="Its place by vector similarity (1 = closest), or null.")
    def vector_rank(self) -> int | None:
        return self.hit.vector_rank

    @strawberry.field(description="Its place by keyword (BM25) score (1 = best), or null.")
    def keyword_rank(self) -> int | None:
        return self.hit.keyword_rank

    @strawberry.field(description="Cosine similarity to the query, when compared.")
    def similarity(self) -> float | None:
        return self.hit.similarity

    @strawberry.field(description="BM25 score for the query's words, when any matched.")
    def keyword_score(self) -> float | None:
        return self.hit.keyword_score


@strawberry.type(description="The hits of a search, best first, and how it searched.")
class SearchResults:
    hits: list[SearchHit] = strawberry.field(description="At most `first` hits, best first.")
    mode: SearchModeType = strawberry.field(  # type: ignore[valid-type]
        description="The mode used: KEYWORD when vectors were asked for but not available."
    )
    fallback: SearchFallback | None = strawberry.field(  # type: ignore[valid-type]
        description="Why the mode used is not the one asked for, or null."
    )
    reason: str | None = strawberry.field(description="The fallback, in words.")
    model: str | None = strawberry.field(
        description="The embedding model whose vectors were compared, or null."
    )
    keyword_only_rows: int | None = strawberry.field(
        description=(
            "Rows in scope without a vector of that model yet (new, or made by another "
            "model): found by keyword only. Null when vectors were not used."
        )
    )


SearchResult = Annotated[
    SearchResults | InvalidInput,
    strawberry.union("SearchResult", description="The hits, or the argument that cannot be used."),
]


@domain_errors_as_results()
async def search_user(
    info: Info,
    user: UserRow,
    query: str,
    first: int,
    kinds: list[RecallKind] | None,
    topics: list[str] | None,
    tags: list[str] | None,
    happened_after: datetime | None,
    happened_before: datetime | None,
    min_score: float | None,
    mode: SearchMode,
) -> SearchResults | InvalidInput:
    """The resolver of User.search (declared on User, done here)."""
    request = SearchRequest(
        query=query,
        first=first,
        kinds=tuple(kinds) if kinds is not None else None,
        topics=tuple(topics) if topics is not None else None,
        tags=tuple(tags) if tags is not None else None,
        happened_after=happened_after,
        happened_before=happened_before,
        min_score=min_score,
        mode=mode,
    )
    resources = info.context.resources
    async with info.context.uow() as session:
        found = await SearchService(session, resources.embedder, resources.vectors).search(
            user.project_id, user.id, request
        )
    return SearchResults(
        hits=[SearchHit(hit=hit) for hit in found.hits],
        mode=found.mode,
        fallback=found.fallback,
        reason=_REASONS[found.fallback] if found.fallback else None,
        model=found.model,
        keyword_only_rows=found.keyword_only_rows,
    )
