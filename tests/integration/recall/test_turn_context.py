"""user.context(query, chats): what the turn is about is packed first, never over the budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.applications import Starlette

from powermemo_gql.core.tokens import count_tokens
from tests.integration.recall.conftest import Memory
from tests.support import ProjectHandle

CONTEXT = """
query($user: ID!, $maxTokens: Int! = 1000, $query: String, $chats: [ChatMessageInput!],
      $onlyTopics: [String!]) {
  user(userId: $user) {
    context(maxTokens: $maxTokens, query: $query, chats: $chats, onlyTopics: $onlyTopics) {
      text tokens profileEntries events
    }
  }
}
"""
VEGETARIAN = "Vegetarian, loves Ethiopian cuisine"


@pytest.fixture
async def alice(app: Starlette, project: ProjectHandle) -> Memory:
    """A profile whose relevant entry is the oldest, and a relevant event older than fifty
    recent ones: without the query neither comes first, or at all."""
    memory = await Memory(app, project.api, "alice").create()
    await memory.entry("interest", "food", VEGETARIAN)
    for i in range(12):
        await memory.entry("work", f"project_{i}", f"Ran project number {i} at the lab")
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    await memory.event(
        "- Visited a vegan restaurant in Addis Ababa [said 2020-01-01]", happened=long_ago
    )
    for i in range(55):
        await memory.event(
            f"- Wrote lab report {i} [said 2024-05-01]",
            happened=datetime(2024, 5, 1, tzinfo=UTC) + timedelta(hours=i),
        )
    await memory.indexed()
    return memory


async def _context(memory: Memory, **variables: Any) -> dict[str, Any]:
    data = await memory.api.ok(CONTEXT, user=memory.user, **variables)
    result: dict[str, Any] = data["user"]["context"]
    return result


async def test_the_query_brings_what_it_is_about_first(alice: Memory) -> None:
    plain = await _context(alice, maxTokens=150)
    assert VEGETARIAN not in plain["text"]
    assert "Addis Ababa" not in plain["text"]

    relevant = await _context(alice, maxTokens=150, query="Does she eat meat?")
    text = relevant["text"]
    assert relevant["tokens"] == count_tokens(text) <= 150
    profile_lines = [line for line in text.splitlines() if line.startswith("- interest::")]
    assert profile_lines[0] == f"- interest::food: {VEGETARIAN}"
    assert text.index(VEGETARIAN) < text.index("project_")
    # The relevant event is older than the 50 recent ones the plain context reads.
    assert "Addis Ababa" in text


async def test_the_chat_chooses_like_a_query(alice: Memory) -> None:
    chats = [
        {"role": "USER", "content": "I'm planning dinner for Friday."},
        {"role": "ASSISTANT", "content": "Nice! Any preferences?"},
        {"role": "USER", "content": "What should I cook for her, does she eat meat?"},
    ]
    relevant = await _context(alice, maxTokens=150, chats=chats)
    assert VEGETARIAN in relevant["text"]
    assert relevant["tokens"] <= 150


async def test_without_query_or_chats_the_context_is_as_before(alice: Memory) -> None:
    assert await _context(alice, maxTokens=300) == await _context(alice, maxTokens=300, chats=[])


async def test_filters_and_budget_still_hold_with_a_query(alice: Memory) -> None:
    only_work = await _context(
        alice, maxTokens=400, query="Does she eat meat?", onlyTopics=["work"]
    )
    assert VEGETARIAN not in only_work["text"]
    assert "project_" in only_work["text"]
    for budget in (5, 40, 120):
        small = await _context(alice, maxTokens=budget, query="Does she eat meat?")
        assert small["tokens"] == count_tokens(small["text"]) <= budget


async def test_bad_turn_input_names_the_field(alice: Memory) -> None:
    too_long = await alice.api.run(CONTEXT, user=alice.user, query="x" * 1001)
    assert too_long.error_codes() == ["BAD_USER_INPUT"]
    assert "query" in too_long.errors[0]["message"]
    many = [{"role": "USER", "content": "hi"}] * 51
    too_many = await alice.api.run(CONTEXT, user=alice.user, chats=many)
    assert too_many.error_codes() == ["BAD_USER_INPUT"]
    assert "chats" in too_many.errors[0]["message"]
