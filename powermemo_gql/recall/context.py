"""Context relevant to the turn: what the app's query or the current chat is about, found by
the hybrid search, is packed first; the rest follows as in the plain context."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from powermemo_gql.core.validation import check_storable
from powermemo_gql.errors import InvalidInput
from powermemo_gql.memory.context import ContextRequest, ContextService, PackedContext, Relevance
from powermemo_gql.recall.embeddings import Embedder
from powermemo_gql.recall.models import RecallKind
from powermemo_gql.recall.search import MAX_QUERY_CHARS, SearchRequest, SearchService
from powermemo_gql.recall.vectors import VectorCache

MAX_CHAT_MESSAGES = 50
# Hits of the search packed before the rest (they fill the budget first, best first).
RELEVANT_HITS = 30


def turn_text(query: str | None, chats: Sequence[str]) -> str | None:
    """What to search for: the query, then the chat's latest messages, cut to the search's
    length from the end (the latest words matter most)."""
    parts = [query.strip()] if query and query.strip() else []
    parts += [c.strip() for c in chats if c.strip()]
    text = "\n".join(parts)
    return text[-MAX_QUERY_CHARS:].strip() or None


class TurnContextService:
    def __init__(
        self, session: AsyncSession, embedder: Embedder, vectors: VectorCache, zone: ZoneInfo
    ) -> None:
        self.session = session
        self.search = SearchService(session, embedder, vectors)
        self.zone = zone

    async def build(
        self,
        project_id: uuid.UUID,
        user_id: uuid.UUID,
        request: ContextRequest,
        query: str | None = None,
        chats: Sequence[str] = (),
    ) -> PackedContext:
        """Without query or chats: exactly the plain context."""
        request = request.checked()
        if query is not None:
            check_storable(query, "query")
            if len(query) > MAX_QUERY_CHARS:
                raise InvalidInput("query", f"must be at most {MAX_QUERY_CHARS} characters")
        if len(chats) > MAX_CHAT_MESSAGES:
            raise InvalidInput("chats", f"at most {MAX_CHAT_MESSAGES} messages")
        for i, content in enumerate(chats):
            check_storable(content, f"chats[{i}].content")
        text = turn_text(query, chats)
        if text is not None:
            found = await self.search.search(
                project_id, user_id, SearchRequest(query=text, first=RELEVANT_HITS)
            )
            entries = [h.row.id for h in found.hits if h.kind is RecallKind.PROFILE]
            events = [
                h.row.id if h.kind is RecallKind.EVENT else h.row.event_id
                for h in found.hits
                if h.kind is not RecallKind.PROFILE
            ]
            request = dataclasses.replace(
                request, relevance=Relevance(entries, list(dict.fromkeys(events)))
            )
        return await ContextService(self.session, self.zone).build(user_id, request)
