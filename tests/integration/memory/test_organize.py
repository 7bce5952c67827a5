"""Topics past max_profile_subtopics are regrouped; long entries are shortened."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from asgi_lifespan import LifespanManager

from powermemo_gql.app import create_app
from tests.conftest import make_settings
from tests.integration.memory.conftest import memory_responder
from tests.llm_server import Reply, ScriptedLLM, json_reply
from tests.support import ROOT_TOKEN, Api, create_project

SETUP = """
mutation {
  createUser(input: {userId: "alice"}) { __typename }
  a: addProfileEntry(input: {userId: "alice", topic: "work", subTopic: "a", content: "A"}) {
    __typename
  }
  b: addProfileEntry(input: {userId: "alice", topic: "work", subTopic: "b", content: "B"}) {
    __typename
  }
  insertBlob(input: {userId: "alice", blob: {document: {content: "New work facts."}}}) {
    __typename
  }
}
"""
MORE_ENTRIES = """
mutation {
  d: addProfileEntry(input: {userId: "alice", topic: "work", subTopic: "d", content: "D"}) {
    __typename
  }
  e: addProfileEntry(input: {userId: "alice", topic: "work", subTopic: "e", content: "E"}) {
    __typename
  }
}
"""
FLUSH = """
mutation {
  flushBuffer(input: {userId: "alice", wait: true}) {
    ... on FlushBufferPayload { flush { status error } }
  }
}
"""
PROFILE = """
{ user(userId: "alice") {
    profile { subTopic content history { content action source } }
    events(first: 1) { nodes { profileDelta { action subTopic content previous } } }
} }
"""


@asynccontextmanager
async def _project_api(database_url: str, llm: ScriptedLLM, **overrides: Any) -> AsyncIterator[Api]:
    app = create_app(make_settings(database_url, llm_base_url=llm.base_url, **overrides))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        project = await create_project(app, Api(app, ROOT_TOKEN), "organize")
        yield project.api


def _with(
    extra: dict[str, Any], base: Callable[[dict[str, Any]], Reply]
) -> Callable[[dict[str, Any]], Reply]:
    def respond(request: dict[str, Any]) -> Reply:
        purpose = request["headers"].get("x-powermemo-purpose", "")
        return json_reply(extra[purpose]) if purpose in extra else base(request)

    return respond


async def test_topic_past_the_limit_is_regrouped(database_url: str, llm: ScriptedLLM) -> None:
    llm.responder = _with(
        {
            "organize": {
                "entries": [
                    {"sub_topic": "a", "content": "A and C"},
                    {"sub_topic": "b2", "content": "B"},
                ]
            }
        },
        memory_responder(facts=[{"topic": "work", "sub_topic": "c", "content": "C"}]),
    )
    # a, b, d, e and the new c: 5 sub-topics, past the limit of 4.
    async with _project_api(database_url, llm, max_profile_subtopics=4) as api:
        await api.ok(SETUP)
        await api.ok(MORE_ENTRIES)
        assert (await api.ok(FLUSH))["flushBuffer"]["flush"] == {"status": "DONE", "error": None}
        user = (await api.ok(PROFILE))["user"]

    assert llm.purposes() == ["summarize", "extract", "organize"]
    organize_input = llm.requests[2]["body"]["messages"][1]["content"]
    for sub_topic in ('"a"', '"b"', '"c"', '"d"', '"e"'):
        assert sub_topic in organize_input
    # Regrouped to half the limit, so that the next flush does not regroup again at once.
    assert "at most 2 sub-topics" in llm.requests[2]["body"]["messages"][0]["content"]
    profile = {e["subTopic"]: e for e in user["profile"]}
    assert set(profile) == {"a", "b2"}
    assert profile["a"]["content"] == "A and C"
    assert profile["a"]["history"] == [{"content": "A", "action": "UPDATE", "source": "LLM"}]
    delta = user["events"]["nodes"][0]["profileDelta"]
    assert {(d["action"], d["subTopic"]) for d in delta} == {
        ("UPDATE", "a"),
        ("DELETE", "b"),
        ("DELETE", "d"),
        ("DELETE", "e"),
        ("ADD", "b2"),
    }
    deleted = [d for d in delta if d["action"] == "DELETE"]
    assert all(d["content"] is None and d["previous"] for d in deleted)


async def test_regrouping_keeps_at_most_half_the_limit(database_url: str, llm: ScriptedLLM) -> None:
    """A model that returns more sub-topics than asked: the extra ones are folded into the
    last one kept, not lost, and the topic ends below its trigger."""
    llm.responder = _with(
        {
            "organize": {
                "entries": [
                    {"sub_topic": "a", "content": "A"},
                    {"sub_topic": "b", "content": "B"},
                    {"sub_topic": "c", "content": "C"},
                    {"sub_topic": "d", "content": "D and E"},
                ]
            }
        },
        memory_responder(facts=[{"topic": "work", "sub_topic": "c", "content": "C"}]),
    )
    async with _project_api(database_url, llm, max_profile_subtopics=4) as api:
        await api.ok(SETUP)
        await api.ok(MORE_ENTRIES)
        assert (await api.ok(FLUSH))["flushBuffer"]["flush"]["status"] == "DONE"
        profile = {e["subTopic"]: e["content"] for e in (await api.ok(PROFILE))["user"]["profile"]}
    assert profile == {"a": "A", "b": "B\nC\nD and E"}


async def test_long_entries_are_shortened(database_url: str, llm: ScriptedLLM) -> None:
    long_text = "teaches chemistry, " * 30
    llm.responder = _with(
        {"shorten": {"entries": [{"index": 0, "content": "chemistry teacher"}]}},
        memory_responder(facts=[{"topic": "work", "sub_topic": "title", "content": long_text}]),
    )
    async with _project_api(database_url, llm, max_profile_entry_tokens=16) as api:
        await api.ok(SETUP)
        assert (await api.ok(FLUSH))["flushBuffer"]["flush"]["status"] == "DONE"
        profile = {e["subTopic"]: e for e in (await api.ok(PROFILE))["user"]["profile"]}

    assert llm.purposes() == ["summarize", "extract", "shorten"]
    assert long_text.strip() in llm.requests[2]["body"]["messages"][1]["content"]
    assert profile["title"]["content"] == "chemistry teacher"
    # Entries already short enough are left alone.
    assert profile["a"]["content"] == "A"


async def test_within_limits_no_extra_calls(database_url: str, llm: ScriptedLLM) -> None:
    llm.responder = memory_responder(facts=[{"topic": "work", "sub_topic": "c", "content": "C"}])
    async with _project_api(database_url, llm, max_profile_subtopics=3) as api:
        await api.ok(SETUP)
        await api.ok(FLUSH)
    assert llm.purposes() == ["summarize", "extract"]


async def test_strict_mode_holds_when_regrouping(database_url: str, llm: ScriptedLLM) -> None:
    llm.responder = _with(
        {
            "organize": {
                "entries": [
                    {"sub_topic": "a", "content": "A and C"},
                    {"sub_topic": "invented", "content": "B"},
                ]
            }
        },
        memory_responder(facts=[{"topic": "work", "sub_topic": "c", "content": "C"}]),
    )
    async with _project_api(database_url, llm, max_profile_subtopics=2) as api:
        slots = [{"topic": "work", "subTopics": [{"name": n} for n in "abc"]}]
        await api.ok(
            "mutation($slots: [ProfileSlotInput!]) {"
            " setProfileConfig(input: {slots: $slots, strict: true}) { __typename } }",
            slots=slots,
        )
        await api.ok(SETUP)
        assert (await api.ok(FLUSH))["flushBuffer"]["flush"]["status"] == "DONE"
        profile = {e["subTopic"] for e in (await api.ok(PROFILE))["user"]["profile"]}
    assert profile == {"a"}  # "invented" is not a slot; "b" was regrouped away
