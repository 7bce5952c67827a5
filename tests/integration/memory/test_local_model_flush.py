"""A flush through a small local model's bent answers, over the real openai client."""

from __future__ import annotations

from typing import Any

from tests.llm_server import Reply, ScriptedLLM
from tests.support import ProjectHandle

SETUP = """
mutation($text: String!) {
  createUser(input: {userId: "alice"}) { __typename }
  insertBlob(input: {userId: "alice", blob: {chat: {messages: [
    {role: USER, content: $text, alias: "Alice"}
  ]}}}) { __typename }
}
"""
FLUSH = """
mutation {
  flushBuffer(input: {userId: "alice", wait: true}) {
    ... on FlushBufferPayload { flush { status error llmCalls droppedItems } }
  }
}
"""
MEMORY = """
query {
  user(userId: "alice") {
    profile { topic subTopic content }
    events(first: 1) { nodes { summary } }
  }
}
"""

# What a small model answers to each step: reasoning, fences, other key names, JSONL,
# a number for a text, one item that is unusable.
BENT_ANSWERS = {
    "summarize": "<think>The user talks about work.</think>\n```json\n"
    "{'summary': 'Alice teaches chemistry in Lyon.\nShe is 34.',}\n```",
    "extract": 'Here are the facts:\n{"topic": "work", "subTopic": "title", "value": '
    '"chemistry teacher"}\n{"topic": "basic_info", "sub-topic": "age", "content": 34}\n'
    '{"topic": "contact_info", "content": "no sub-topic: dropped"}\n',
}


def _bent(request: dict[str, Any]) -> Reply:
    purpose = request["headers"].get("x-powermemo-purpose", "")
    return Reply(content=BENT_ANSWERS[purpose])


async def test_a_flush_keeps_what_is_usable_in_bent_answers(
    project: ProjectHandle, llm: ScriptedLLM
) -> None:
    llm.responder = _bent
    await project.api.ok(SETUP, text="I teach chemistry in Lyon. I'm 34.")

    flush = (await project.api.ok(FLUSH))["flushBuffer"]["flush"]

    # No step asked twice; the fact without a sub-topic is the one item left out.
    assert flush == {"status": "DONE", "error": None, "llmCalls": 2, "droppedItems": 1}
    memory = (await project.api.ok(MEMORY))["user"]
    assert sorted((e["topic"], e["subTopic"], e["content"]) for e in memory["profile"]) == [
        ("basic_info", "age", "34"),
        ("work", "title", "chemistry teacher"),
    ]
    assert memory["events"]["nodes"] == [
        {"summary": "Alice teaches chemistry in Lyon.\nShe is 34."}
    ]
