"""A flush's event is split into facts (one per summary line), and all of it is indexed
once the flush committed."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlmodel import col
from starlette.applications import Starlette

from powermemo_gql.events.models import Event
from powermemo_gql.recall.models import EventFact, MemoryVector
from powermemo_gql.resources import Resources
from powermemo_gql.settings import Settings
from tests.integration.memory.conftest import llm, memory_responder, memory_settings
from tests.integration.recall.conftest import Memory
from tests.llm_server import ScriptedLLM
from tests.support import ProjectHandle, raw_uuid

__all__ = ["llm"]  # the scripted LLM fixture, used here too

INSERT_CHAT = """
mutation($userId: ID!, $text: String!) {
  insertBlob(input: {userId: $userId, blob: {chat: {messages: [
    {role: USER, content: $text, alias: "Alice"}
  ]}}}) { ... on InsertBlobPayload { blob { id } } }
}
"""
FLUSH = """
mutation($userId: ID!) {
  flushBuffer(input: {userId: $userId, wait: true}) {
    ... on FlushBufferPayload { flush { status } }
  }
}
"""
SUMMARY = "- Went hiking in the Alps [said 2024-03-06]\n\n- Bought new boots [said 2024-03-06]"


async def test_a_flush_writes_facts_and_they_are_indexed(
    app: Starlette, project: ProjectHandle, llm: ScriptedLLM
) -> None:
    llm.responder = memory_responder(summary=SUMMARY)
    alice = await Memory(app, project.api, "alice").create()
    inserted = await project.api.ok(INSERT_CHAT, userId="alice", text="I went hiking.")
    blob_id = inserted["insertBlob"]["blob"]["id"]
    flushed = await project.api.ok(FLUSH, userId="alice")
    assert flushed["flushBuffer"]["flush"]["status"] == "DONE"
    await alice.indexed()

    resources: Resources = app.state.resources
    async with resources.sessions() as session:
        event = (await session.scalars(select(Event))).one()
        facts = (await session.scalars(select(EventFact).order_by(col(EventFact.position)))).all()
        vectors = (await session.scalars(select(MemoryVector))).all()
    assert [f.content for f in facts] == [
        "Went hiking in the Alps [said 2024-03-06]",
        "Bought new boots [said 2024-03-06]",
    ]
    for fact in facts:
        assert fact.event_id == event.id
        assert fact.source_blob_ids == [str(raw_uuid(blob_id))]  # rows keep raw ids
        assert (fact.happened_from, fact.happened_to) == (event.happened_from, event.happened_to)
    # The event, its two facts and the two profile entries the flush wrote.
    assert sorted(v.kind for v in vectors) == ["event", "fact", "fact", "profile", "profile"]

    found = await alice.search("boots", kinds=["FACT"])
    assert found["hits"][0]["fact"]["content"] == "Bought new boots [said 2024-03-06]"


@pytest.fixture
def settings(database_url: str, llm: ScriptedLLM) -> Settings:
    # Overrides the suite's settings: flushes talk to the scripted LLM.
    return memory_settings(database_url, llm)
