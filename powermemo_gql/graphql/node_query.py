"""node(id) and nodes(ids): any object by its global id, within what the caller may see."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import strawberry

from powermemo_gql.blobs.models import Blob as BlobRow
from powermemo_gql.buffers.models import Flush as FlushRow
from powermemo_gql.core.nodes import NodeService
from powermemo_gql.core.repository import parse_uuid
from powermemo_gql.errors import InvalidInput
from powermemo_gql.events.models import Event as EventRow
from powermemo_gql.graphql.blobs import to_blob
from powermemo_gql.graphql.context import Info
from powermemo_gql.graphql.memory import Event, Flush
from powermemo_gql.graphql.node import Node, split_global_id
from powermemo_gql.graphql.pagination import query_input_errors
from powermemo_gql.graphql.profiles import ProfileEntry
from powermemo_gql.graphql.projects import ApiKey, Project
from powermemo_gql.graphql.users import User
from powermemo_gql.profiles.models import ProfileEntry as ProfileEntryRow
from powermemo_gql.projects.models import ApiKey as ApiKeyRow
from powermemo_gql.projects.models import Project as ProjectRow
from powermemo_gql.users.models import User as UserRow

MAX_NODES = 100


@dataclass(frozen=True)
class _Kind:
    model: type[Any]
    wrap: Callable[[Any], Node]
    root_only: bool = False  # projects and keys; the rest belongs to the caller's project


_KINDS: dict[str, _Kind] = {
    "User": _Kind(UserRow, lambda row: User(row=row)),
    "Blob": _Kind(BlobRow, to_blob),
    "ProfileEntry": _Kind(ProfileEntryRow, ProfileEntry.of),
    "Event": _Kind(EventRow, lambda row: Event(row=row)),
    "Flush": _Kind(FlushRow, lambda row: Flush(row=row)),
    "Project": _Kind(ProjectRow, lambda row: Project(row=row), root_only=True),
    "ApiKey": _Kind(ApiKeyRow, lambda row: ApiKey(row=row), root_only=True),
}


async def resolve_nodes(
    info: Info, ids: Sequence[str], field_of: Callable[[int], str]
) -> list[Node | None]:
    """The objects of `ids`, in order; None for what is missing or not the caller's. One
    statement per type asked for, whatever the number of ids. A malformed id is refused,
    naming field_of(its position)."""
    with query_input_errors():
        decoded = [split_global_id(value, field_of(i)) for i, value in enumerate(ids)]
    keys = [(type_name, parse_uuid(raw)) for type_name, raw in decoded]
    wanted: dict[str, set[uuid.UUID]] = defaultdict(set)
    principal = info.context.principal
    for type_name, key in keys:
        kind = _KINDS.get(type_name)
        if kind is None or key is None:
            continue  # no such type, or an id no row has: not found
        if principal.is_root if kind.root_only else principal.project_id is not None:
            wanted[type_name].add(key)
    found: dict[tuple[str, uuid.UUID], Any] = {}
    if wanted:
        async with info.context.uow() as session:
            service = NodeService(session)
            for type_name, keys_of_type in wanted.items():
                kind = _KINDS[type_name]
                scope = None if kind.root_only else principal.project_id
                rows = await service.find(kind.model, sorted(keys_of_type), scope)
                found.update({(type_name, key): row for key, row in rows.items()})
    return [
        _KINDS[type_name].wrap(found[(type_name, key)])
        if key is not None and (type_name, key) in found
        else None
        for type_name, key in keys
    ]


@strawberry.type
class NodeQuery:
    @strawberry.field(
        description=(
            "Any object by its global id, or null when it does not exist or is not the "
            "caller's (projects and API keys: root only)."
        )
    )
    async def node(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="A global id.")],
    ) -> Node | None:
        return (await resolve_nodes(info, [id], lambda _: "id"))[0]

    @strawberry.field(
        description=(
            f"Objects by their global ids (at most {MAX_NODES}), in the order asked, null "
            "for each one missing or not the caller's."
        )
    )
    async def nodes(
        self,
        info: Info,
        ids: Annotated[
            list[strawberry.ID],
            strawberry.argument(description="Global ids, at most 100; answered in this order."),
        ],
    ) -> list[Node | None]:
        if len(ids) > MAX_NODES:
            with query_input_errors():
                raise InvalidInput("ids", f"at most {MAX_NODES} ids")
        return await resolve_nodes(info, ids, lambda i: f"ids[{i}]")
