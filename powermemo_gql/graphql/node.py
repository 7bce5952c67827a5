"""The Node interface; its ids are global ids (core/global_ids.py), decoded there, once."""

from __future__ import annotations

import uuid

import strawberry

from powermemo_gql.core import global_ids
from powermemo_gql.core.global_ids import decoded_id, raw_id, split_global_id

__all__ = ["Node", "decoded_id", "global_id", "optional_global_id", "raw_id", "split_global_id"]


@strawberry.interface(description="An object with a global id: fetch it again with node(id:).")
class Node:
    @strawberry.field(
        description="Opaque and global: base64 of the type name and the object's own id."
    )
    def id(self) -> strawberry.ID:
        raise NotImplementedError  # a resolver, not a dataclass field: each type has its own


def global_id(type_name: str, raw: uuid.UUID | str) -> strawberry.ID:
    return strawberry.ID(global_ids.global_id(type_name, raw))


def optional_global_id(type_name: str, raw: uuid.UUID | str | None) -> strawberry.ID | None:
    return global_id(type_name, raw) if raw else None
