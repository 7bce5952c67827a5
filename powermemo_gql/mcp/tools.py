"""The MCP tools' use cases: each opens a unit of work and calls the same services the
GraphQL resolvers call. Results are plain JSON-able dicts; domain errors become ToolError
with the error's code first, so a model can tell "unknown user" from "bad input"."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from powermemo_gql.blobs.models import BlobType
from powermemo_gql.buffers.models import FlushTrigger
from powermemo_gql.core.global_ids import decoded_id, global_id
from powermemo_gql.core.uow import unit_of_work
from powermemo_gql.errors import Conflict, DomainError, InvalidInput, NotFound
from powermemo_gql.memory.context import ContextRequest
from powermemo_gql.profiles.models import ProfileEntryView
from powermemo_gql.profiles.service import ProfileService
from powermemo_gql.recall.context import TurnContextService
from powermemo_gql.recall.models import RecallKind
from powermemo_gql.recall.search import Hit, SearchRequest, SearchService
from powermemo_gql.resources import Resources
from powermemo_gql.usecases import UseCases
from powermemo_gql.users.models import UserView
from powermemo_gql.users.service import UserService


class Message(BaseModel):
    """One chat message to remember."""

    role: Literal["user", "assistant"] = Field(description="Who said it.")
    content: str = Field(description="What was said.")
    alias: str | None = Field(
        default=None, description="The speaker's display name, used instead of the role."
    )
    created_at: datetime | None = Field(
        default=None, description="When it was said (ISO 8601 with an offset); default now."
    )


# The services' names for what the tools call otherwise.
_RENAMED = {"first": "limit", "id": "user_id"}
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def _field_name(path: str) -> str:
    """A service's field path (GraphQL spelling) in the tools' own argument names."""
    path = path.removeprefix("blob.chat.")
    return _RENAMED.get(path) or _CAMEL.sub(r"_\1", path).lower()


def tool_error(error: DomainError) -> ToolError:
    if isinstance(error, InvalidInput):
        return ToolError(f"{error.code}: {_field_name(error.field)}: {error.reason}")
    if isinstance(error, NotFound) and error.entity == "User":
        return ToolError(
            f"{error.code}: no user '{error.id}' in this project (remember creates users; "
            "check the user_id)"
        )
    return ToolError(f"{error.code}: {error.message}")


def _entry(row: ProfileEntryView) -> dict[str, Any]:
    return {
        "entry_id": global_id("ProfileEntry", row.id),
        "topic": row.topic,
        "sub_topic": row.sub_topic,
        "content": row.content,
        "updated_at": row.updated_at.isoformat(),
    }


def _hit(hit: Hit) -> dict[str, Any]:
    found: dict[str, Any] = {"kind": hit.kind.value, "score": round(hit.score, 6)}
    row = hit.row
    if hit.kind is RecallKind.PROFILE:
        return found | _entry(row)
    text = row.summary if hit.kind is RecallKind.EVENT else row.content
    event_id = row.id if hit.kind is RecallKind.EVENT else row.event_id
    return found | {
        "text": text,
        "event_id": global_id("Event", event_id),
        "happened_from": row.happened_from.isoformat(),
        "happened_to": row.happened_to.isoformat(),
    }


@dataclass(frozen=True)
class MemoryTools:
    """The tools of one project: `project_id` comes from the caller's API key."""

    resources: Resources
    project_id: uuid.UUID

    async def _user(self, user_id: str) -> UserView:
        async with unit_of_work(self.resources.sessions) as session:
            return await UserService(session).get(self.project_id, user_id)

    async def _user_or_new(self, user_id: str) -> UserView:
        try:
            return await self._user(user_id)
        except NotFound:
            pass
        try:
            async with unit_of_work(self.resources.sessions) as session:
                return await UserService(session).create(
                    self.project_id, user_id, None, now=self.resources.clock.now()
                )
        except Conflict:  # created meanwhile by another call
            return await self._user(user_id)

    async def remember(
        self, user_id: str, messages: Sequence[Message], idempotency_key: str | None
    ) -> dict[str, Any]:
        if not messages:
            raise InvalidInput("messages", "give at least one message")
        await self._user_or_new(user_id)
        content = {"messages": [m.model_dump(exclude_none=True) for m in messages]}
        async with unit_of_work(self.resources.sessions) as session:
            inserted = await UseCases(session, self.resources).insert_blob(
                self.project_id, user_id, BlobType.CHAT, content, None, idempotency_key
            )
        return {"blob_id": global_id("Blob", inserted.blob.id), "replayed": inserted.replayed}

    async def recall(self, user_id: str, query: str, limit: int) -> dict[str, Any]:
        user = await self._user(user_id)
        request = SearchRequest(query=query, first=limit)
        resources = self.resources
        async with unit_of_work(resources.sessions) as session:
            found = await SearchService(session, resources.embedder, resources.vectors).search(
                self.project_id, user.id, request
            )
        return {"mode": found.mode.value, "hits": [_hit(h) for h in found.hits]}

    async def context(self, user_id: str, query: str | None, max_tokens: int) -> dict[str, Any]:
        user = await self._user(user_id)
        resources = self.resources
        async with unit_of_work(resources.sessions) as session:
            packed = await TurnContextService(
                session,
                resources.embedder,
                resources.vectors,
                ZoneInfo(resources.settings.timezone),
            ).build(self.project_id, user.id, ContextRequest(max_tokens=max_tokens), query=query)
        return {
            "text": packed.text,
            "tokens": packed.tokens,
            "profile_entries": packed.profile_entries,
            "events": packed.events,
        }

    async def profile(self, user_id: str, topics: Sequence[str] | None) -> dict[str, Any]:
        user = await self._user(user_id)
        async with unit_of_work(self.resources.sessions) as session:
            rows = await ProfileService(session).for_user(user.id, topics or None)
        return {"entries": [_entry(r) for r in rows]}

    async def forget(self, user_id: str, entry_id: str) -> dict[str, Any]:
        user = await self._user(user_id)
        with decoded_id(entry_id, "ProfileEntry", "entry_id") as raw:
            async with unit_of_work(self.resources.sessions) as session:
                row = await UseCases(session, self.resources).delete_profile_entry(
                    self.project_id, raw, of_user=user.id
                )
        return {
            "deleted_entry_id": global_id("ProfileEntry", row.id),
            "topic": row.topic,
            "sub_topic": row.sub_topic,
        }

    async def flush(self, user_id: str, wait: bool) -> dict[str, Any]:
        user = await self._user(user_id)
        attempt = await self.resources.flusher.on_request(
            user.project_id, user.id, FlushTrigger.MANUAL, wait
        )
        result: dict[str, Any] = {"outcome": attempt.outcome.value}
        if attempt.flush is not None:
            result |= {
                "status": attempt.flush.status,
                "items": attempt.flush.item_count,
                "error": attempt.flush.error,
            }
        return result
