"""The recall benchmark's generated set keeps its promises (bench/recall_data.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench.recall_data import (
    RecallSet,
    bulk_memories,
    check,
    content_words,
    first_rank,
    generate,
    in_window,
    scores,
)


@pytest.fixture(scope="module")
def recall_set() -> RecallSet:
    return generate()


def test_counts(recall_set: RecallSet) -> None:
    kinds = {m.kind for m in recall_set.memories}
    assert len(recall_set.users) >= 10
    assert len(recall_set.memories) >= 300
    assert len(recall_set.queries) >= 200
    assert kinds == {"profile", "event", "fact"}
    paraphrases = [q for q in recall_set.queries if q.kind == "paraphrase"]
    assert len(paraphrases) > len(recall_set.queries) / 2  # most queries are paraphrases
    assert any(q.kind == "lexical" for q in recall_set.queries)
    assert any(q.kind == "timed" for q in recall_set.queries)


def test_paraphrases_share_no_content_word_with_their_targets(recall_set: RecallSet) -> None:
    for query in recall_set.queries:
        if query.kind == "paraphrase":
            for target in query.targets:
                text = recall_set.memory(target).indexed_text
                assert not content_words(query.text) & content_words(text), (query, text)


def test_content_words_drop_stop_words_and_stem() -> None:
    assert content_words("Does she eat meat?") == {"eat", "meat"}
    assert content_words("Loves hiking") == content_words("loving the hikes")


def test_timed_queries_have_a_decoy_outside_their_window(recall_set: RecallSet) -> None:
    timed = [q for q in recall_set.queries if q.kind == "timed"]
    assert timed
    for query in timed:
        assert query.happened_after is not None
        assert query.happened_before is not None
        assert query.decoys
        for decoy in query.decoys:
            assert not in_window(
                recall_set.memory(decoy), query.happened_after, query.happened_before
            )
        for target in query.targets:
            assert in_window(recall_set.memory(target), query.happened_after, query.happened_before)


def test_targets_belong_to_the_querying_user_among_near_misses(recall_set: RecallSet) -> None:
    for query in recall_set.queries:
        for target in query.targets:
            memory = recall_set.memory(target)
            assert memory.user == query.user
            if memory.kind == "profile":  # another entry of the same topic is a near miss
                near = [
                    m
                    for m in recall_set.of_user(query.user)
                    if m.kind == "profile" and m.topic == memory.topic and m.id != memory.id
                ]
                assert near, memory


def test_facts_are_the_lines_of_their_event(recall_set: RecallSet) -> None:
    for fact in (m for m in recall_set.memories if m.kind == "fact"):
        event = recall_set.memory(fact.event_id)
        assert f"- {fact.content}" in event.content.splitlines()
        assert (fact.happened_from, fact.happened_to) == (event.happened_from, event.happened_to)
        assert "[said " in fact.content


def test_deterministic_for_a_seed() -> None:
    assert generate(seed=3) == generate(seed=3)
    assert generate(seed=3) != generate(seed=4)


def test_check_rejects_a_paraphrase_sharing_a_word(recall_set: RecallSet) -> None:
    query = next(q for q in recall_set.queries if q.kind == "paraphrase")
    target = recall_set.memory(query.targets[0])
    broken = replace(query, text=f"{query.text} {target.content.split()[0]}")
    bad_set = replace(recall_set, queries=(broken,))
    with pytest.raises(ValueError, match="shares"):
        check(bad_set)


def test_check_rejects_a_decoy_inside_the_window(recall_set: RecallSet) -> None:
    query = next(q for q in recall_set.queries if q.kind == "timed")
    broken = replace(query, decoys=query.targets)
    with pytest.raises(ValueError, match="inside the window"):
        check(replace(recall_set, queries=(broken,)))


def test_scores_of_first_target_ranks() -> None:
    assert first_rank(["a", "b", "c"], ("c", "b")) == 2
    assert first_rank(["a"], ("z",)) is None
    recall_at_1, recall_at_5, mrr = scores([1, 2, None, 6])
    assert (recall_at_1, recall_at_5) == (0.25, 0.5)
    assert mrr == pytest.approx((1 + 1 / 2 + 1 / 6) / 4)


def test_bulk_memories_count_and_unique_slots() -> None:
    entries, events = bulk_memories(1000, seed=1)
    assert len(entries) + sum(1 + len(e.notes) for e in events) == 1000
    assert len({(topic, sub_topic) for topic, sub_topic, _ in entries}) == len(entries)
    assert events
    assert bulk_memories(1000, seed=1) == (entries, events)
