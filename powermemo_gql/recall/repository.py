"""All SQL of recall: rows waiting for a vector, storing vectors, and what search loads."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    delete,
    func,
    insert,
    null,
    or_,
    select,
    union,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from powermemo_gql.events.models import Event
from powermemo_gql.profiles.models import ProfileEntry
from powermemo_gql.recall.models import (
    EventFact,
    MemoryVector,
    MemoryVectorVersion,
    RecallKind,
)
from powermemo_gql.recall.sources import SOURCES, Source
from powermemo_gql.users.models import User

WORD = re.compile(r"\w+")


# Words too common to say what a query is about ("does she eat meat?" is about eating meat):
# matching them ranks near misses that share only grammar. English; other languages keep all.
_STOP_TEXT = """a an and any are as at be been but by can could did do does doing for from had has
have he her hers him his how i if in into is it its me my no not of on or our she so than that
the their them then there these they this those to too us was we were what when where which
who whom why will with would you your"""
STOP_WORDS = frozenset(_STOP_TEXT.split())


def words(text: str) -> list[str]:
    """Lower-cased words, as both keyword sides split text (PostgreSQL 'simple' alike)."""
    return WORD.findall(text.lower())


def query_terms(text: str) -> list[str]:
    """The words of a query that say what it is about: its words less the stop words."""
    return [w for w in words(text) if w not in STOP_WORDS]


# (the user's change counter, their vector version); None: no such user.
MemoryVersion = tuple[int, int] | None


@dataclass(frozen=True)
class Scope:
    """Where a search looks: one user of one project, and the filters of the request."""

    project_id: uuid.UUID
    user_id: uuid.UUID
    topics: tuple[str, ...] | None = None
    happened_after: datetime | None = None
    happened_before: datetime | None = None


@dataclass(frozen=True)
class Candidate:
    kind: RecallKind
    target_id: uuid.UUID
    event_id: uuid.UUID | None  # the event of a fact, the event itself, or None (profile)
    payload: Any  # the vector bytes, or the text for keyword scoring


class RecallRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def _postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    # Indexing

    async def users_waiting(self, model: str, limit: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(project_id, user_id) of users with rows to embed with `model`."""
        selects = [
            select(source.project_id, source.user_id).where(_stale(source, model))
            for source in SOURCES.values()
        ]
        rows = await self.session.execute(union(*selects).limit(limit))
        return [(row[0], row[1]) for row in rows]

    async def waiting(
        self, kind: RecallKind, user_id: uuid.UUID, model: str, limit: int
    ) -> Sequence[Any]:
        """Rows of a user of this kind without a vector of `model` (new, changed or older)."""
        source = SOURCES[kind]
        stmt = (
            select(source.model)
            .where(source.user_id == user_id, _stale(source, model))
            .order_by(source.id)
            .limit(limit)
        )
        return (await self.session.scalars(stmt)).all()

    async def to_reindex(
        self,
        kind: RecallKind,
        project_id: uuid.UUID | None,
        model: str,
        missing_only: bool,
        after: uuid.UUID | None,
        limit: int,
    ) -> Sequence[Any]:
        """The next rows (by id, after `after`) without a vector of `model`; missing_only: only
        those without any vector. Keyset order: a run never reads a row twice."""
        source = SOURCES[kind]
        stmt = select(source.model).where(_to_reindex(source, project_id, model, missing_only))
        if after is not None:
            stmt = stmt.where(source.id > after)
        return (await self.session.scalars(stmt.order_by(source.id).limit(limit))).all()

    async def count_to_reindex(
        self, kind: RecallKind, project_id: uuid.UUID | None, model: str, missing_only: bool
    ) -> int:
        source = SOURCES[kind]
        stmt = select(func.count()).where(_to_reindex(source, project_id, model, missing_only))
        return int(await self.session.scalar(stmt) or 0)

    async def unmark_other_dimensions(
        self,
        kind: RecallKind,
        project_id: uuid.UUID | None,
        model: str,
        dimensions: int,
        limit: int,
    ) -> int:
        """Marks up to `limit` rows unembedded whose vector has this model's name but another
        length (embedding_dimensions changed): the indexer then embeds them again."""
        source = SOURCES[kind]
        ids = (
            select(col(MemoryVector.target_id))
            .join(source.model, source.id == col(MemoryVector.target_id))
            .where(
                col(MemoryVector.kind) == kind.value,
                col(MemoryVector.model) == model,
                col(MemoryVector.dimensions) != dimensions,
                source.embedded_model == model,
            )
            .limit(limit)
        )
        if project_id is not None:
            ids = ids.where(col(MemoryVector.project_id) == project_id)
        found = list((await self.session.scalars(ids)).all())
        if not found:
            return 0
        await self.session.execute(
            update(source.model)
            .where(source.id.in_(found), source.embedded_model == model)
            .values(embedded_model=None)
        )
        return len(found)

    async def store_vector(
        self,
        kind: RecallKind,
        row: Any,
        content: str,
        model: str,
        vector: bytes,
        dimensions: int,
        now: datetime,
    ) -> bool:
        """The vector of a row, stored at `now` (the caller's clock), unless its content
        changed since it was read (then the row stays waiting and the next pass embeds the
        new content)."""
        source = SOURCES[kind]
        marked = await self.session.execute(
            update(source.model)
            .where(source.id == row.id, source.content == content)
            .values(embedded_model=model)
        )
        if marked.rowcount != 1:  # type: ignore[attr-defined]
            return False
        await self.session.execute(
            delete(MemoryVector).where(
                col(MemoryVector.kind) == kind.value, col(MemoryVector.target_id) == row.id
            )
        )
        await self.session.execute(
            insert(MemoryVector).values(
                kind=kind.value,
                target_id=row.id,
                user_id=row.user_id,
                project_id=row.project_id,
                model=model,
                dimensions=dimensions,
                vector=vector,
                created_at=now,
            )
        )
        from powermemo_gql.recall import pgvector  # it builds on this module

        if await pgvector.available(self.session):
            await pgvector.store(self.session, kind, row.id, vector)
        return True

    async def prune(self, user_id: uuid.UUID) -> int:
        """Vectors of rows deleted since (profile entries, events and their facts)."""
        pruned = 0
        for kind, source in SOURCES.items():
            live = select(source.id).where(source.user_id == user_id)
            deleted = await self.session.execute(
                delete(MemoryVector).where(
                    col(MemoryVector.user_id) == user_id,
                    col(MemoryVector.kind) == kind.value,
                    col(MemoryVector.target_id).not_in(live),
                )
            )
            pruned += deleted.rowcount  # type: ignore[attr-defined]
        if pruned:
            await self.bump(user_id)
        return pruned

    # Searching

    async def vector_set(self, kind: RecallKind, user_id: uuid.UUID, model: str) -> list[Any]:
        """Every vector of `model` of a user's rows of this kind, with what filters read:
        (target_id, event_id, topic, happened_from, happened_to, dimensions, vector). An
        exact scan, cached by the caller (recall/vectors.py); pgvector's seam."""
        source = SOURCES[kind]
        has_time = source.has_time
        stmt = (
            select(
                col(MemoryVector.target_id),
                _event_of(source),
                col(ProfileEntry.topic) if source.has_topic else null(),
                col(source.model.happened_from) if has_time else null(),
                col(source.model.happened_to) if has_time else null(),
                col(MemoryVector.dimensions),
                col(MemoryVector.vector),
            )
            .join(source.model, source.id == col(MemoryVector.target_id))
            .where(
                col(MemoryVector.user_id) == user_id,
                col(MemoryVector.kind) == kind.value,
                col(MemoryVector.model) == model,
            )
        )
        return list(await self.session.execute(stmt))

    async def version(self, user_id: uuid.UUID) -> int:
        found = await self.session.scalar(
            select(col(MemoryVectorVersion.version)).where(
                col(MemoryVectorVersion.user_id) == user_id
            )
        )
        return int(found or 0)

    async def memory_version(self, user_id: uuid.UUID) -> MemoryVersion:
        """What moves with every change to a user's searchable memory (recall/memory_index.py):
        writes to their rows append to the change feed; their vectors bump their version."""
        vectors = (
            select(col(MemoryVectorVersion.version))
            .where(col(MemoryVectorVersion.user_id) == user_id)
            .scalar_subquery()
        )
        found = (
            await self.session.execute(
                select(col(User.change_seq), vectors).where(col(User.id) == user_id)
            )
        ).first()
        return (int(found[0] or 0), int(found[1] or 0)) if found else None

    async def index_rows(
        self, kind: RecallKind, project_id: uuid.UUID, user_id: uuid.UUID
    ) -> list[Any]:
        """Every row of a user of this kind, with what search reads of it: (id, event_id, topic,
        happened_from, happened_to, embedded_model, tags, keyword text)."""
        source = SOURCES[kind]
        has_time = source.has_time
        stmt = select(
            source.id,
            _event_of(source),
            col(ProfileEntry.topic) if source.has_topic else null(),
            col(source.model.happened_from) if has_time else null(),
            col(source.model.happened_to) if has_time else null(),
            source.embedded_model,
            col(Event.tags) if kind is RecallKind.EVENT else null(),
            source.keyword_text(),
        ).where(*_in_scope(source, Scope(project_id, user_id)))
        return list(await self.session.execute(stmt))

    async def bump(self, user_id: uuid.UUID) -> None:
        """The user's vectors changed (in this transaction): cached copies are stale."""
        dialect = postgresql if self._postgres else sqlite
        stmt = dialect.insert(MemoryVectorVersion).values(user_id=user_id, version=1)
        await self.session.execute(
            stmt.on_conflict_do_update(
                index_elements=["user_id"],
                set_={"version": col(MemoryVectorVersion.version) + 1},
            )
        )

    async def rows(self, kind: RecallKind, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Any]:
        if not ids:
            return {}
        source = SOURCES[kind]
        found = await self.session.scalars(select(source.model).where(source.id.in_(ids)))
        return {row.id: row for row in found}


def _stale(source: Source, model: str) -> ColumnElement[bool]:
    # `< model OR > model`, not `!= model`: ranges the embedded_model index can read, so
    # finding the few stale rows does not scan all of a user's rows (both databases).
    column = source.embedded_model
    return or_(column.is_(None), column < model, column > model)


def _to_reindex(
    source: Source, project_id: uuid.UUID | None, model: str, missing_only: bool
) -> ColumnElement[bool]:
    clauses = [source.embedded_model.is_(None) if missing_only else _stale(source, model)]
    if project_id is not None:
        clauses.append(source.project_id == project_id)
    return and_(*clauses)


def _event_of(source: Source) -> Any:
    if source.kind is RecallKind.FACT:
        return col(EventFact.event_id)
    if source.kind is RecallKind.EVENT:
        return col(Event.id)
    return null()


def _in_scope(source: Source, scope: Scope) -> list[ColumnElement[bool]]:
    """The request's filters on one kind (tags are applied by the caller)."""
    clauses: list[ColumnElement[bool]] = [
        source.user_id == scope.user_id,
        source.project_id == scope.project_id,
    ]
    if source.has_topic and scope.topics is not None:
        clauses.append(col(ProfileEntry.topic).in_(scope.topics))
    if source.has_time:
        if scope.happened_after is not None:
            clauses.append(col(source.model.happened_to) >= scope.happened_after)
        if scope.happened_before is not None:
            clauses.append(col(source.model.happened_from) <= scope.happened_before)
    return [and_(*clauses)]
