"""DataLoaders for the nested lists of users, profile entries and projects: each level of a
query costs one statement, however many parents it lists."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from powermemo_gql.buffers.models import BufferItem as BufferItemRow
from powermemo_gql.buffers.models import Flush as FlushRow
from powermemo_gql.buffers.service import BufferService
from powermemo_gql.changes.models import Change as ChangeRow
from powermemo_gql.changes.service import ChangeService
from powermemo_gql.core.pagination import Page, PageArgs, plain_first_page
from powermemo_gql.errors import InvalidInput
from powermemo_gql.events.models import EventRecord
from powermemo_gql.events.service import EventService
from powermemo_gql.profiles.models import ProfileRevision as RevisionRow
from powermemo_gql.profiles.service import ProfileService
from powermemo_gql.projects.models import ApiKey as ApiKeyRow
from powermemo_gql.projects.service import ProjectService

if TYPE_CHECKING:
    from powermemo_gql.graphql.context import Context

T = TypeVar("T")
K = TypeVar("K")


@dataclass(frozen=True)
class FlushesKey:
    user_id: uuid.UUID
    last: int


@dataclass(frozen=True)
class EventPageKey:
    user_id: uuid.UUID
    args: PageArgs
    search: str | None
    tags: tuple[str, ...] | None


@dataclass(frozen=True)
class ChangePageKey:
    user_id: uuid.UUID
    args: PageArgs


async def histories(context: Context, ids: Sequence[uuid.UUID]) -> list[list[RevisionRow]]:
    async with context.uow() as session:
        found = await ProfileService(session).histories(ids)
    return [found[i] for i in ids]


async def buffers(context: Context, ids: Sequence[uuid.UUID]) -> list[list[BufferItemRow]]:
    async with context.uow() as session:
        found = await BufferService(session).pending_of_users(ids)
    return [found[i] for i in ids]


async def api_keys(context: Context, ids: Sequence[uuid.UUID]) -> list[list[ApiKeyRow]]:
    async with context.uow() as session:
        found = await ProjectService(session).api_keys_of_projects(ids)
    return [found[i] for i in ids]


async def flushes(context: Context, keys: Sequence[FlushesKey]) -> list[list[FlushRow]]:
    by_last: dict[int, list[uuid.UUID]] = defaultdict(list)
    for key in keys:
        by_last[key.last].append(key.user_id)
    found: dict[FlushesKey, list[FlushRow]] = {}
    async with context.uow() as session:
        service = BufferService(session)
        for last, user_ids in by_last.items():
            rows = await service.recent_flushes_of_users(user_ids, last)
            found.update({FlushesKey(u, last): rows[u] for u in user_ids})
    return [found[key] for key in keys]


async def _pages(
    keys: Sequence[K],
    plain_size: Callable[[K], int | None],
    user_of: Callable[[K], uuid.UUID],
    batch: Callable[[Sequence[uuid.UUID], int], Awaitable[dict[uuid.UUID, Page[T]]]],
    one: Callable[[K], Awaitable[Page[T]]],
) -> list[Page[T] | InvalidInput]:
    """Plain first pages share one windowed query per size; any other page (a cursor, a
    filter, a size out of range) is read on its own, its errors reported on its field."""
    results: dict[K, Page[T] | InvalidInput] = {}
    by_size: dict[int, list[K]] = defaultdict(list)
    for key in keys:
        size = plain_size(key)
        if size is not None:
            by_size[size].append(key)
    for size, group in by_size.items():
        pages = await batch([user_of(k) for k in group], size)
        results.update({k: pages[user_of(k)] for k in group})
    for key in keys:
        if key not in results:
            try:
                results[key] = await one(key)
            except InvalidInput as error:
                results[key] = error
    return [results[key] for key in keys]


async def event_pages(
    context: Context, keys: Sequence[EventPageKey]
) -> list[Page[EventRecord] | InvalidInput]:
    def plain(key: EventPageKey) -> int | None:
        return plain_first_page(key.args) if key.search is None and key.tags is None else None

    async with context.uow() as session:
        service = EventService(session)
        return await _pages(
            keys,
            plain,
            lambda k: k.user_id,
            service.first_pages,
            lambda k: service.for_user(k.user_id, k.args, k.search, k.tags),
        )


async def change_pages(
    context: Context, keys: Sequence[ChangePageKey]
) -> list[Page[ChangeRow] | InvalidInput]:
    async with context.uow() as session:
        service = ChangeService(session)
        return await _pages(
            keys,
            lambda k: plain_first_page(k.args),
            lambda k: k.user_id,
            service.first_pages,
            lambda k: service.for_user(k.user_id, k.args),
        )
