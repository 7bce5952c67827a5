"""user.search: hybrid beats keyword on a paraphrase, kinds and filters, isolation, errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from starlette.applications import Starlette

from powermemo_gql.core.global_ids import global_id
from tests.conftest import ProjectFactory
from tests.integration.recall.conftest import Memory, texts
from tests.support import ProjectHandle

VEGETARIAN = "Vegetarian, loves Ethiopian cuisine"


@pytest.fixture
async def alice(app: Starlette, project: ProjectHandle) -> Memory:
    memory = await Memory(app, project.api, "alice").create()
    await memory.entry("interest", "food", VEGETARIAN)
    await memory.entry("work", "title", "Chemistry teacher in Lyon")
    await memory.entry("interest", "pets", "Has a cat named Miso")
    await memory.indexed()
    return memory


async def test_hybrid_finds_a_paraphrase_keyword_search_cannot(alice: Memory) -> None:
    keyword = await alice.search("Does she eat meat?", mode="KEYWORD")
    assert keyword["mode"] == "KEYWORD"
    assert keyword["fallback"] is None
    assert VEGETARIAN not in texts(keyword)

    hybrid = await alice.search("Does she eat meat?")
    assert hybrid["mode"] == "HYBRID"
    assert hybrid["fallback"] is None
    assert hybrid["model"] == "fake:words-v1"
    assert hybrid["keywordOnlyRows"] == 0
    top = hybrid["hits"][0]
    assert top["entry"]["content"] == VEGETARIAN
    assert top["kind"] == "PROFILE"
    assert top["vectorRank"] == 1
    assert top["keywordRank"] is None
    assert top["score"] == pytest.approx(1 / 61)
    # Ranked by fused score, best first.
    scores = [hit["score"] for hit in hybrid["hits"]]
    assert scores == sorted(scores, reverse=True)


async def test_a_word_match_and_a_close_vector_rank_first(alice: Memory) -> None:
    result = await alice.search("cat")
    top = result["hits"][0]
    assert top["entry"]["content"] == "Has a cat named Miso"
    assert top["vectorRank"] == 1
    assert top["keywordRank"] == 1
    assert top["score"] == pytest.approx(2 / 61)
    assert top["keywordScore"] > 0
    assert top["similarity"] > 0


async def test_vector_mode_ranks_by_meaning_only(alice: Memory) -> None:
    result = await alice.search("vegan food", mode="VECTOR", first=1)
    assert result["mode"] == "VECTOR"
    [hit] = result["hits"]
    assert hit["entry"]["content"] == VEGETARIAN
    assert hit["keywordRank"] is None
    assert hit["keywordScore"] is None


async def test_min_score_and_first_cut_the_hits(alice: Memory) -> None:
    everything = await alice.search("cat")
    assert len(everything["hits"]) == 3  # every row has a vector rank
    only_both = await alice.search("cat", minScore=1.5 / 61)
    assert texts(only_both) == ["Has a cat named Miso"]
    assert len((await alice.search("cat", first=2))["hits"]) == 2


async def test_kinds_and_filters(alice: Memory) -> None:
    march = datetime(2024, 3, 6, tzinfo=UTC)
    may = datetime(2024, 5, 1, tzinfo=UTC)
    hiking = await alice.event(
        "- Went hiking in the Alps [said 2024-03-06]\n- Bought new boots [said 2024-03-06]",
        tags=[{"tag": "activity", "value": "sport"}],
        happened=march,
    )
    await alice.event("- Cooked a vegan stew for friends", happened=may)
    await alice.indexed()

    facts = await alice.search("hiking boots", kinds=["FACT"])
    assert {hit["kind"] for hit in facts["hits"]} == {"FACT"}
    assert set(texts(facts)[:2]) == {
        "Went hiking in the Alps [said 2024-03-06]",
        "Bought new boots [said 2024-03-06]",
    }
    boots = next(h for h in facts["hits"] if h["fact"]["content"].startswith("Bought"))
    assert boots["fact"]["eventId"] == global_id("Event", hiking)
    assert boots["fact"]["sourceBlobIds"] == [global_id("Blob", "blob-1")]
    assert boots["keywordRank"] is not None

    events = await alice.search("hiking", kinds=["EVENT"], mode="KEYWORD")
    assert [h["event"]["id"] for h in events["hits"]] == [global_id("Event", hiking)]

    # Tags keep events and facts carrying them (profile entries have no tags).
    tagged = await alice.search("stew boots hiking", tags=["activity"], mode="KEYWORD")
    assert tagged["hits"]
    assert all(
        (h["event"] or {}).get("id") == global_id("Event", hiking)
        or (h["fact"] or {}).get("eventId") == global_id("Event", hiking)
        for h in tagged["hits"]
    )
    assert (await alice.search("hiking", tags=["activity:music"]))["hits"] == []

    # Time keeps events and facts whose span overlaps it.
    after_april = await alice.search("hiking stew", after="2024-04-01T00:00:00Z", mode="KEYWORD")
    assert sorted(texts(after_april)) == [
        "- Cooked a vegan stew for friends",  # the event
        "Cooked a vegan stew for friends",  # its one fact
    ]
    before_april = await alice.search("hiking stew", before="2024-04-01T00:00:00Z", mode="KEYWORD")
    assert {h["kind"] for h in before_april["hits"]} == {"EVENT", "FACT"}
    assert all("stew" not in t for t in texts(before_april))

    # Topics keep profile entries of those topics.
    work = await alice.search("teacher cat", topics=["work"])
    assert texts(work) == ["Chemistry teacher in Lyon"]


async def test_search_sees_one_user_of_one_project(
    alice: Memory, app: Starlette, project: ProjectHandle, make_project: ProjectFactory
) -> None:
    bob = await Memory(app, project.api, "bob").create()
    await bob.entry("interest", "pets", "Has a cat named Felix")
    other = await make_project("other")
    stranger = await Memory(app, other.api, "alice").create()  # same id, other project
    await stranger.entry("interest", "pets", "Has a cat named Tom")
    await bob.indexed()

    for mode in ("HYBRID", "KEYWORD", "VECTOR"):
        found = texts(await alice.search("cat named", mode=mode))
        assert "Has a cat named Miso" in found
        assert not {"Has a cat named Felix", "Has a cat named Tom"} & set(found)
    assert "Has a cat named Tom" in texts(await stranger.search("cat"))


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"query": "   "}, "query"),
        ({"query": "x" * 1001}, "query"),
        ({"query": "cat", "first": 0}, "first"),
        ({"query": "cat", "first": 101}, "first"),
        ({"query": "cat", "kinds": []}, "kinds"),
        ({"query": "cat", "topics": ["interest", "astrology"]}, "topics[1]"),
        (
            {"query": "cat", "after": "2024-05-01T00:00:00Z", "before": "2024-04-01T00:00:00Z"},
            "happenedAfter",
        ),
    ],
)
async def test_bad_input_is_a_typed_error_naming_the_field(
    alice: Memory, variables: dict[str, object], field: str
) -> None:
    query = str(variables.pop("query"))
    result = await alice.search(query, **variables)
    assert result["__typename"] == "InvalidInput"
    assert result["code"] == "INVALID_INPUT"
    assert result["field"] == field


async def test_stop_words_alone_match_nothing(alice: Memory) -> None:
    """'in', 'a' stand in many an entry: grammar says nothing about what a query is about."""
    only_grammar = await alice.search("is it in a", mode="KEYWORD")
    assert only_grammar["hits"] == []  # "in" (teacher in Lyon) and "a" (has a cat) not matched
    worded = await alice.search("is a cat in it", mode="KEYWORD")
    assert [h["entry"]["content"] for h in worded["hits"]] == ["Has a cat named Miso"]
