"""importProfile: facts from free text, merged like a flush's, marked as imported."""

from __future__ import annotations

from typing import Any

from tests.integration.memory.conftest import memory_responder
from tests.llm_server import Reply, ScriptedLLM
from tests.support import Api, ProjectHandle

IMPORT = """
mutation($userId: ID!, $text: String!) {
  importProfile(input: {userId: $userId, text: $text}) {
    __typename
    ... on ImportProfilePayload {
      entries { topic subTopic content source history { content } }
      llmCalls inputTokens outputTokens
    }
    ... on Error { code message }
    ... on InvalidInput { field }
  }
}
"""
BIO = "Alice is a chemistry teacher living in Lyon."


async def _import(api: Api, text: str = BIO, user: str = "alice") -> dict[str, Any]:
    result: dict[str, Any] = (await api.ok(IMPORT, userId=user, text=text))["importProfile"]
    return result


async def _alice(project: ProjectHandle) -> Api:
    await project.api.ok('mutation { createUser(input: {userId: "alice"}) { __typename } }')
    return project.api


async def test_import_adds_entries_marked_as_imported(
    project: ProjectHandle, llm: ScriptedLLM
) -> None:
    api = await _alice(project)
    llm.responder = memory_responder()
    result = await _import(api)
    assert result["__typename"] == "ImportProfilePayload"
    assert llm.purposes() == ["extract"]  # the text is the material: no summary, no event
    assert llm.requests[0]["body"]["messages"][1]["content"] == BIO
    assert (result["llmCalls"], result["inputTokens"], result["outputTokens"]) == (1, 100, 20)
    entries = {(e["topic"], e["subTopic"]): e for e in result["entries"]}
    assert entries[("work", "title")]["content"] == "chemistry teacher"
    assert {e["source"] for e in result["entries"]} == {"IMPORT"}
    memory = await api.ok(
        '{ user(userId: "alice") { events(first: 1) { nodes { id } } flushes { trigger status } } }'
    )
    assert memory["user"]["events"]["nodes"] == []
    # Recorded as a flush without items, so the project's usage counts it.
    assert memory["user"]["flushes"] == [{"trigger": "IMPORT", "status": "DONE"}]
    usage = await api.ok("{ llmUsage { flushes llmCalls inputTokens outputTokens } }")
    assert usage["llmUsage"] == {
        "flushes": 1,
        "llmCalls": 1,
        "inputTokens": 100,
        "outputTokens": 20,
    }


async def test_import_merges_into_existing_entries(
    project: ProjectHandle, llm: ScriptedLLM
) -> None:
    api = await _alice(project)
    llm.responder = memory_responder()
    await _import(api)
    llm.responder = memory_responder(
        facts=[{"topic": "contact_info", "sub_topic": "city", "content": "Paris"}],
        decisions=[{"index": 0, "action": "update", "content": "Paris"}],
    )
    result = await _import(api, "She now lives in Paris.")
    assert llm.purposes()[-2:] == ["extract", "merge"]
    assert result["entries"] == [
        {
            "topic": "contact_info",
            "subTopic": "city",
            "content": "Paris",
            "source": "IMPORT",
            "history": [{"content": "Lyon"}],
        }
    ]


async def test_llm_failure_is_a_typed_error_and_changes_nothing(
    project: ProjectHandle, llm: ScriptedLLM
) -> None:
    api = await _alice(project)
    llm.responder = lambda _request: Reply(status=500)
    result = await _import(api)
    assert result["__typename"] == "LLMUnavailable"
    assert result["code"] == "LLM_UNAVAILABLE"
    assert "HTTP 500" in result["message"]
    memory = await api.ok(
        '{ user(userId: "alice") { profile { id } flushes { trigger status llmCalls } } }'
    )
    assert memory["user"]["profile"] == []
    assert memory["user"]["flushes"] == [{"trigger": "IMPORT", "status": "FAILED", "llmCalls": 0}]


async def test_bad_text_and_unknown_user(project: ProjectHandle, llm: ScriptedLLM) -> None:
    api = await _alice(project)
    empty = await _import(api, "   ")
    assert (empty["__typename"], empty["field"]) == ("InvalidInput", "text")
    too_long = await _import(api, "x" * 50_001)
    assert (too_long["__typename"], too_long["field"]) == ("InvalidInput", "text")
    ghost = await _import(api, BIO, user="ghost")
    assert ghost["__typename"] == "NotFound"
    assert llm.requests == []
