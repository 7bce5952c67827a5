"""Embedding tokens per flush: what indexing the rows a flush wrote cost is added to that
flush (its event, the event's facts, the entries it added or changed), as the provider
reported it, once; rows written by hand are the project's only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from powermemo_gql.app import create_app
from powermemo_gql.resources import Resources
from tests.integration.memory.conftest import memory_responder, memory_settings
from tests.integration.recall.conftest import Memory
from tests.llm_server import Reply, ScriptedLLM, running_llm, word_count
from tests.support import ROOT_TOKEN, Api, ProjectHandle, create_project

INSERT_CHAT = """
mutation($userId: ID!, $text: String!) {
  insertBlob(input: {userId: $userId, blob: {chat: {messages: [
    {role: USER, content: $text, alias: "Alice"}
  ]}}}) { __typename }
}
"""
FLUSH = """
mutation($userId: ID!) {
  flushBuffer(input: {userId: $userId, wait: true}) {
    ... on FlushBufferPayload { flush { id status embeddingTexts embeddingTokens } }
  }
}
"""
FLUSHES = """
query($userId: ID!) {
  user(userId: $userId) { flushes { id embeddingTexts embeddingTokens } }
}
"""
USAGE = "{ llmUsage { embeddingTexts embeddingTokens } }"

FIRST = "- Went hiking in the Alps [said 2024-03-06]\n- Bought new boots [said 2024-03-06]"
# What the first flush's rows are embedded as: its event, the event's two facts and the
# two entries memory_responder extracts.
FIRST_TEXTS = [
    FIRST,
    "Went hiking in the Alps [said 2024-03-06]",
    "Bought new boots [said 2024-03-06]",
    "work / title: chemistry teacher",
    "contact_info / city: Lyon",
]
SECOND = "- Moved to Paris [said 2024-04-01]"
# The second flush's event, its one fact, and the city entry it updates.
SECOND_TEXTS = [
    SECOND,
    "Moved to Paris [said 2024-04-01]",
    "contact_info / city: Paris (moved from Lyon)",
]
MANUAL_TEXT = "interest / pets: Has a cat"


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with running_llm() as server:
        yield server


@pytest.fixture
async def app(database_url: str, llm: ScriptedLLM) -> AsyncIterator[Starlette]:
    # Chat completions and embeddings both from the loopback server; an embedding failure
    # is not retried inside the embedder, so it fails the indexing pass.
    settings = memory_settings(
        database_url,
        llm,
        embedding_provider="openai",
        embedding_base_url=llm.base_url,
        embedding_model="scripted-embedder",
        embedding_dimensions=8,
        embedding_max_retries=0,
    )
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=60):
        yield application


@pytest.fixture
async def project(app: Starlette) -> ProjectHandle:
    return await create_project(app, Api(app, ROOT_TOKEN), "flush-embeddings")


async def _flush(project: ProjectHandle, text: str) -> str:
    await project.api.ok(INSERT_CHAT, userId="alice", text=text)
    flushed = (await project.api.ok(FLUSH, userId="alice"))["flushBuffer"]["flush"]
    assert flushed["status"] == "DONE"
    flush_id: str = flushed["id"]
    return flush_id


async def _charges(project: ProjectHandle) -> dict[str, tuple[int, int]]:
    """Per flush id, (embeddingTexts, embeddingTokens)."""
    data = await project.api.ok(FLUSHES, userId="alice")
    return {f["id"]: (f["embeddingTexts"], f["embeddingTokens"]) for f in data["user"]["flushes"]}


def _embedded(llm: ScriptedLLM, since: int = 0) -> list[str]:
    return sorted(text for batch in llm.embedding_inputs()[since:] for text in batch)


async def test_a_flush_is_charged_for_embedding_the_rows_it_wrote(
    app: Starlette, project: ProjectHandle, llm: ScriptedLLM
) -> None:
    alice = await Memory(app, project.api, "alice").create()
    llm.responder = memory_responder(summary=FIRST)
    first = await _flush(project, "I went hiking in the Alps and bought boots.")
    await alice.indexed()

    assert _embedded(llm) == sorted(FIRST_TEXTS)
    assert await _charges(project) == {first: (5, word_count(FIRST_TEXTS))}

    # An entry written by hand is the project's cost, no flush's.
    await alice.entry("interest", "pets", "Has a cat")
    await alice.indexed()
    assert await _charges(project) == {first: (5, word_count(FIRST_TEXTS))}

    # A second flush, updating an entry the first wrote: its rows are its own.
    seen = len(llm.embedding_inputs())
    llm.responder = memory_responder(
        summary=SECOND,
        facts=[{"topic": "contact_info", "sub_topic": "city", "content": "Paris"}],
        decisions=[{"index": 0, "action": "update", "content": "Paris (moved from Lyon)"}],
    )
    second = await _flush(project, "I moved to Paris.")
    await alice.indexed()

    assert _embedded(llm, seen) == sorted(SECOND_TEXTS)
    assert await _charges(project) == {
        first: (5, word_count(FIRST_TEXTS)),
        second: (3, word_count(SECOND_TEXTS)),
    }
    # The same tokens are in the project's totals, with those of the entry written by hand.
    assert (await project.api.ok(USAGE))["llmUsage"] == {
        "embeddingTexts": 9,
        "embeddingTokens": word_count([*FIRST_TEXTS, *SECOND_TEXTS, MANUAL_TEXT]),
    }


async def test_an_embedding_that_failed_is_charged_once_when_retried(
    app: Starlette, project: ProjectHandle, llm: ScriptedLLM
) -> None:
    alice = await Memory(app, project.api, "alice").create()
    resources: Resources = app.state.resources
    llm.responder = memory_responder(summary=FIRST)
    llm.add_embedding_replies(Reply(status=500, content="embeddings down"))
    flush = await _flush(project, "I went hiking in the Alps and bought boots.")
    await alice.indexed()  # the pass the flush poked failed on its first call

    assert len(llm.embedding_requests) == 1
    assert await _charges(project) == {flush: (0, 0)}

    # The catch-up pass embeds them all; a pass after it finds nothing more to charge.
    assert await resources.indexer.index_waiting() == 5
    assert await resources.indexer.index_waiting() == 0
    # The failed request carried some of the texts again embedded since: they cost nothing.
    assert _embedded(llm, 1) == sorted(FIRST_TEXTS)
    assert await _charges(project) == {flush: (5, word_count(FIRST_TEXTS))}
    assert (await project.api.ok(USAGE))["llmUsage"] == {
        "embeddingTexts": 5,
        "embeddingTokens": word_count(FIRST_TEXTS),
    }


async def test_rows_embedded_by_two_passes_at_once_are_charged_once(
    app: Starlette, project: ProjectHandle, llm: ScriptedLLM
) -> None:
    alice = await Memory(app, project.api, "alice").create()
    resources: Resources = app.state.resources
    llm.responder = memory_responder(summary=FIRST)
    # Slow answers: the pass the flush pokes and a catch-up pass both read the entries
    # before either stores their vectors, so both embed them (as two instances may).
    llm.add_embedding_replies(Reply(delay=0.5), Reply(delay=0.5))
    flush = await _flush(project, "I went hiking in the Alps and bought boots.")
    await resources.indexer.index_waiting()
    await alice.indexed()

    usage = (await project.api.ok(USAGE))["llmUsage"]
    assert usage["embeddingTexts"] > 5  # some texts were embedded twice: the project paid
    assert await _charges(project) == {flush: (5, word_count(FIRST_TEXTS))}


IMPORT = """
mutation($userId: ID!, $text: String!) {
  importProfile(input: {userId: $userId, text: $text}) { __typename }
}
"""


async def test_an_import_is_charged_for_the_entries_it_wrote(
    app: Starlette, project: ProjectHandle, llm: ScriptedLLM
) -> None:
    # An import is recorded as a flush (trigger IMPORT) with its LLM usage: its entries'
    # embedding is counted on it too.
    alice = await Memory(app, project.api, "alice").create()
    llm.responder = memory_responder()
    await project.api.ok(IMPORT, userId="alice", text="Alice teaches chemistry in Lyon.")
    await alice.indexed()

    [charge] = (await _charges(project)).values()
    entries = ["work / title: chemistry teacher", "contact_info / city: Lyon"]
    assert _embedded(llm) == sorted(entries)
    assert charge == (2, word_count(entries))


UPDATE_ENTRY = """
mutation($id: ID!, $content: String!) {
  updateProfileEntry(input: {id: $id, content: $content}) { __typename }
}
"""
PROFILE = 'query { user(userId: "alice") { profile { id subTopic } } }'


async def test_an_entry_edited_before_it_was_embedded_is_no_flushs_cost(
    app: Starlette, project: ProjectHandle, llm: ScriptedLLM
) -> None:
    alice = await Memory(app, project.api, "alice").create()
    resources: Resources = app.state.resources
    llm.responder = memory_responder(summary=FIRST)
    llm.add_embedding_replies(Reply(status=500, content="embeddings down"))
    flush = await _flush(project, "I went hiking in the Alps and bought boots.")
    await alice.indexed()  # failed: the flush's rows wait
    profile = (await project.api.ok(PROFILE))["user"]["profile"]
    city = next(e["id"] for e in profile if e["subTopic"] == "city")
    await project.api.ok(UPDATE_ENTRY, id=city, content="Marseille")
    await alice.indexed()
    await resources.indexer.index_waiting()

    mine = [t for t in FIRST_TEXTS if t != "contact_info / city: Lyon"]
    assert _embedded(llm, 1) == sorted([*mine, "contact_info / city: Marseille"])
    assert await _charges(project) == {flush: (4, word_count(mine))}
