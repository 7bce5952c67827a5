"""Per-operation DataLoaders: nested fields are fetched in one query per level, not per parent."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

from strawberry.dataloader import DataLoader

from powermemo_gql.blobs.models import Blob as BlobRow
from powermemo_gql.blobs.models import BlobType
from powermemo_gql.blobs.repository import BLOBS_BY_CREATION
from powermemo_gql.blobs.service import BlobService
from powermemo_gql.core.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Page,
    PageArgs,
    encode_cursor,
)
from powermemo_gql.errors import InvalidInput
from powermemo_gql.graphql import nested_loaders as nested
from powermemo_gql.profiles.models import ProfileEntryRecord as ProfileEntryRow
from powermemo_gql.profiles.service import ProfileService
from powermemo_gql.users.models import User as UserRow
from powermemo_gql.users.service import UserService

if TYPE_CHECKING:
    from powermemo_gql.buffers.models import BufferItem as BufferItemRow
    from powermemo_gql.buffers.models import Flush as FlushRow
    from powermemo_gql.changes.models import Change as ChangeRow
    from powermemo_gql.events.models import EventRecord
    from powermemo_gql.graphql.context import Context
    from powermemo_gql.profiles.models import ProfileRevision as RevisionRow
    from powermemo_gql.projects.models import ApiKey as ApiKeyRow


@dataclass(frozen=True)
class ProfileKey:
    user_id: uuid.UUID
    topics: tuple[str, ...] | None
    topk: int | None
    max_tokens: int | None


@dataclass(frozen=True)
class BlobPageKey:
    user_id: uuid.UUID
    blob_type: BlobType | None
    args: PageArgs


def _first_page(rows: list[BlobRow], size: int) -> Page[BlobRow]:
    items = rows[:size]
    return Page(
        items=items,
        cursors=[encode_cursor(BLOBS_BY_CREATION.tag, b.created_at, b.id) for b in items],
        has_next_page=len(rows) > size,
        has_previous_page=False,
    )


class Loaders:
    """Each DataLoader is made on first use: an operation asks for one or two of them, and
    making all nine for every operation cost more than its own profile read's Python."""

    def __init__(self, context: Context) -> None:
        self._context = context

    @cached_property
    def user_by_row_id(self) -> DataLoader[uuid.UUID, UserRow | None]:
        return DataLoader(load_fn=self._load_users)

    @cached_property
    def blob_pages(self) -> DataLoader[BlobPageKey, Page[BlobRow]]:
        return DataLoader(load_fn=self._load_blob_pages)

    @cached_property
    def profiles(self) -> DataLoader[ProfileKey, list[ProfileEntryRow]]:
        return DataLoader(load_fn=self._load_profiles)

    @cached_property
    def histories(self) -> DataLoader[uuid.UUID, list[RevisionRow]]:
        return DataLoader(load_fn=partial(nested.histories, self._context))

    @cached_property
    def buffers(self) -> DataLoader[uuid.UUID, list[BufferItemRow]]:
        return DataLoader(load_fn=partial(nested.buffers, self._context))

    @cached_property
    def flushes(self) -> DataLoader[nested.FlushesKey, list[FlushRow]]:
        return DataLoader(load_fn=partial(nested.flushes, self._context))

    @cached_property
    def event_pages(self) -> DataLoader[nested.EventPageKey, Page[EventRecord]]:
        return DataLoader(load_fn=partial(nested.event_pages, self._context))

    @cached_property
    def change_pages(self) -> DataLoader[nested.ChangePageKey, Page[ChangeRow]]:
        return DataLoader(load_fn=partial(nested.change_pages, self._context))

    @cached_property
    def api_keys(self) -> DataLoader[uuid.UUID, list[ApiKeyRow]]:
        return DataLoader(load_fn=partial(nested.api_keys, self._context))

    async def _load_profiles(
        self, keys: Sequence[ProfileKey]
    ) -> list[list[ProfileEntryRow] | InvalidInput]:
        """Profiles of many users, one query per distinct set of arguments."""
        groups: dict[tuple[Any, ...], list[ProfileKey]] = defaultdict(list)
        for key in keys:
            groups[(key.topics, key.topk, key.max_tokens)].append(key)
        results: dict[ProfileKey, list[ProfileEntryRow] | InvalidInput] = {}
        async with self._context.uow() as session:
            service = ProfileService(session)
            for (topics, topk, max_tokens), group in groups.items():
                try:
                    found = await service.for_users(
                        [k.user_id for k in group], topics, topk, max_tokens
                    )
                except InvalidInput as error:  # reported on each field that asked
                    results.update(dict.fromkeys(group, error))
                    continue
                results.update({k: found[k.user_id] for k in group})
        return [results[key] for key in keys]

    async def _load_users(self, ids: Sequence[uuid.UUID]) -> list[UserRow | None]:
        ctx = self._context
        async with ctx.uow() as session:
            rows = await UserService(session).get_many(ctx.project_id, ids)
        by_id = {row.id: row for row in rows}
        return [by_id.get(i) for i in ids]

    async def _load_blob_pages(
        self, keys: Sequence[BlobPageKey]
    ) -> list[Page[BlobRow] | InvalidInput]:
        """First pages of many users share one windowed query; other pages go one by one."""
        results: dict[BlobPageKey, Page[BlobRow] | InvalidInput] = {}
        first_pages: dict[tuple[BlobType | None, int], list[BlobPageKey]] = defaultdict(list)
        for key in keys:
            a = key.args
            size = DEFAULT_PAGE_SIZE if a.first is None else a.first
            if (
                a.after is None
                and a.before is None
                and a.last is None
                and 0 <= size <= MAX_PAGE_SIZE
            ):
                first_pages[(key.blob_type, size)].append(key)
        async with self._context.uow() as session:
            blobs = BlobService(session)
            for (blob_type, size), group in first_pages.items():
                rows = await blobs.first_pages([k.user_id for k in group], blob_type, size)
                for key in group:
                    results[key] = _first_page(rows[key.user_id], size)
            for key in keys:
                if key not in results:
                    try:
                        results[key] = await blobs.list_for_user(
                            key.user_id, key.blob_type, key.args
                        )
                    except InvalidInput as error:  # reported on that field alone
                        results[key] = error
        return [results[key] for key in keys]
