"""Apps of the recall tests: a word embedder (tests/recall_support.py) unless a test says
otherwise, and helpers writing a user's memory."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select
from sqlmodel import col
from starlette.applications import Starlette

from powermemo_gql.app import create_app
from powermemo_gql.core.clock import FakeClock
from powermemo_gql.core.types import utcnow
from powermemo_gql.events.models import Event
from powermemo_gql.recall.facts import facts_of
from powermemo_gql.resources import Resources
from powermemo_gql.settings import Settings
from powermemo_gql.users.models import User
from tests.conftest import FAKE_NOW
from tests.recall_support import WordEmbedder
from tests.support import Api

SEARCH = """
query($user: ID!, $query: String!, $first: Int! = 10, $kinds: [SearchKind!],
      $topics: [String!], $tags: [String!], $after: DateTime, $before: DateTime,
      $minScore: Float, $mode: SearchMode! = HYBRID) {
  user(userId: $user) {
    search(query: $query, first: $first, kinds: $kinds, topics: $topics, tags: $tags,
           happenedAfter: $after, happenedBefore: $before, minScore: $minScore, mode: $mode) {
      __typename
      ... on SearchResults {
        mode fallback reason model keywordOnlyRows
        hits {
          score kind vectorRank keywordRank similarity keywordScore
          entry { id topic subTopic content }
          event { id summary }
          fact { id content eventId happenedFrom sourceBlobIds }
        }
      }
      ... on InvalidInput { code field message }
    }
  }
}
"""
CREATE_USER = "mutation($id: ID!) { createUser(input: {userId: $id}) { __typename } }"
ADD_ENTRY = """
mutation($user: ID!, $topic: String!, $sub: String!, $content: String!) {
  addProfileEntry(input: {userId: $user, topic: $topic, subTopic: $sub, content: $content}) {
    __typename ... on AddProfileEntryPayload { entry { id } }
  }
}
"""


@pytest.fixture
def embedder() -> WordEmbedder:
    return WordEmbedder()


@pytest.fixture
async def app(
    settings: Settings, embedder: WordEmbedder, request: pytest.FixtureRequest
) -> AsyncIterator[Starlette]:
    # Overrides the suite's app: this one embeds with the word embedder (and runs on the fake
    # clock as the suite's does, for a test marked fake_clock).
    fake = request.node.get_closest_marker("fake_clock") is not None
    application = create_app(
        settings, embedder=embedder, clock=FakeClock(FAKE_NOW) if fake else None
    )
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


@dataclass
class Memory:
    """Writes one user's memory through the API (profile) or the write path's rows
    (events, as a flush writes them), and searches it."""

    app: Starlette
    api: Api
    user: str

    @property
    def resources(self) -> Resources:
        resources: Resources = self.app.state.resources
        return resources

    async def create(self) -> Memory:
        await self.api.ok(CREATE_USER, id=self.user)
        return self

    async def entry(self, topic: str, sub_topic: str, content: str) -> str:
        data = await self.api.ok(
            ADD_ENTRY, user=self.user, topic=topic, sub=sub_topic, content=content
        )
        entry_id: str = data["addProfileEntry"]["entry"]["id"]
        return entry_id

    async def event(
        self,
        summary: str,
        tags: list[dict[str, str]] | None = None,
        happened: datetime | None = None,
    ) -> uuid.UUID:
        """An event and its facts, committed, then the indexer poked as after a flush."""
        at = happened or utcnow()
        async with self.resources.sessions() as session, session.begin():
            user = (
                await session.scalars(select(User).where(col(User.external_id) == self.user))
            ).one()
            event = Event(
                project_id=user.project_id,
                user_id=user.id,
                summary=summary,
                tags=tags or [],
                happened_from=at,
                happened_to=at,
            )
            session.add(event)
            await session.flush()
            session.add_all(facts_of(event, ["blob-1"], now=event.created_at))
        await self.resources.feed.notify(user.id)
        return event.id

    async def indexed(self) -> None:
        await self.resources.indexer.idle()

    async def search(self, query: str, **variables: Any) -> dict[str, Any]:
        data = await self.api.ok(SEARCH, user=self.user, query=query, **variables)
        result: dict[str, Any] = data["user"]["search"]
        return result


def texts(result: dict[str, Any]) -> list[str]:
    """What each hit says, in order: entry content, event summary or fact content."""
    said = []
    for hit in result["hits"]:
        if hit["entry"]:
            said.append(hit["entry"]["content"])
        elif hit["event"]:
            said.append(hit["event"]["summary"])
        else:
            said.append(hit["fact"]["content"])
    return said
