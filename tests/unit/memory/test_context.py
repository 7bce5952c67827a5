from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from powermemo_gql.core.tokens import count_tokens
from powermemo_gql.errors import InvalidInput
from powermemo_gql.events.models import Event
from powermemo_gql.memory.context import ContextRequest, pack_context
from powermemo_gql.profiles.models import ProfileEntry

NOW = datetime(2026, 11, 24, tzinfo=UTC)
PROJECT, USER = uuid.uuid4(), uuid.uuid4()


def _entry(topic: str, sub_topic: str, content: str, age_minutes: int = 0) -> ProfileEntry:
    return ProfileEntry(
        project_id=PROJECT,
        user_id=USER,
        topic=topic,
        sub_topic=sub_topic,
        content=content,
        updated_at=NOW - timedelta(minutes=age_minutes),
    )


def _event(summary: str, days_ago: int = 0) -> Event:
    said = NOW - timedelta(days=days_ago)
    return Event(
        project_id=PROJECT,
        user_id=USER,
        summary=summary,
        happened_from=said,
        happened_to=said,
        created_at=NOW,
    )


PROFILE = [
    _entry(topic, f"sub{i}", f"{topic} fact number {i} with some words", age_minutes=i)
    for i in range(40)
    for topic in ("work", "interest", "basic_info")
]
EVENTS = [
    _event(f"Event {i}: the user did something notable, described briefly.", i) for i in range(30)
]


@pytest.mark.parametrize("max_tokens", [1, 5, 12, 20, 33, 50, 100, 257, 1000, 5000])
@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.6, 1.0])
def test_never_over_budget(max_tokens: int, ratio: float) -> None:
    packed = pack_context(
        ContextRequest(max_tokens=max_tokens, profile_event_ratio=ratio, include_buffer=True),
        PROFILE,
        EVENTS,
        ["alice: a message not yet processed"] * 10,
    )
    assert packed.tokens == count_tokens(packed.text)
    assert packed.tokens <= max_tokens


def test_everything_fits_in_a_large_budget() -> None:
    packed = pack_context(ContextRequest(max_tokens=50_000), PROFILE, EVENTS, [])
    assert (packed.profile_entries, packed.events) == (len(PROFILE), len(EVENTS))
    assert packed.text.startswith("<memory>\n# What we know about the user\n- ")
    assert packed.text.endswith("</memory>")
    assert "- [2026-11-24] Event 0:" in packed.text


def test_budget_is_shared_by_ratio() -> None:
    profile_heavy = pack_context(
        ContextRequest(max_tokens=300, profile_event_ratio=0.9), PROFILE, EVENTS, []
    )
    event_heavy = pack_context(
        ContextRequest(max_tokens=300, profile_event_ratio=0.1), PROFILE, EVENTS, []
    )
    assert profile_heavy.profile_entries > event_heavy.profile_entries
    assert profile_heavy.events < event_heavy.events


def test_unused_event_budget_goes_to_the_profile() -> None:
    packed = pack_context(ContextRequest(max_tokens=300, profile_event_ratio=0.2), PROFILE, [], [])
    alone = pack_context(ContextRequest(max_tokens=300, profile_event_ratio=1.0), PROFILE, [], [])
    assert packed.profile_entries == alone.profile_entries > 0


def test_preferred_topics_come_first_and_only_topics_filter() -> None:
    packed = pack_context(
        ContextRequest(max_tokens=2000, prefer_topics=["interest"]), PROFILE, [], []
    )
    first_line = packed.text.splitlines()[2]
    assert first_line.startswith("- interest::sub0:")
    only = pack_context(ContextRequest(max_tokens=5000, only_topics=["work"]), PROFILE, [], [])
    assert only.profile_entries == 40
    assert "interest::" not in only.text


def test_buffer_only_when_asked() -> None:
    texts = ["alice: I just adopted a cat"]
    assert "adopted" not in pack_context(ContextRequest(max_tokens=2000), [], [], texts).text
    packed = pack_context(ContextRequest(max_tokens=2000, include_buffer=True), [], [], texts)
    assert "# Recent messages, not yet in memory\nalice: I just adopted a cat\n" in packed.text


def test_nothing_to_say_is_an_empty_string() -> None:
    assert pack_context(ContextRequest(max_tokens=500), [], [], []).text == ""
    assert pack_context(ContextRequest(max_tokens=3), PROFILE, EVENTS, []).text == ""


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (ContextRequest(max_tokens=0), "maxTokens"),
        (ContextRequest(max_tokens=100_001), "maxTokens"),
        (ContextRequest(profile_event_ratio=1.5), "profileEventRatio"),
        (ContextRequest(profile_event_ratio=-0.1), "profileEventRatio"),
    ],
)
def test_bad_requests_name_the_argument(request_: ContextRequest, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        pack_context(request_, PROFILE, EVENTS, [])
    assert caught.value.field == field


def test_events_are_dated_by_when_they_happened() -> None:
    """An imported history is dated as said: the span of its messages, not its flush."""
    event = Event(
        project_id=PROJECT,
        user_id=USER,
        summary="- Went hiking in the Alps [said 2024-03-06]\n- Bought new boots [said 2024-03-04]",
        happened_from=datetime(2024, 3, 4, 9, tzinfo=UTC),
        happened_to=datetime(2024, 3, 6, 18, tzinfo=UTC),
        created_at=NOW,
    )
    packed = pack_context(ContextRequest(max_tokens=500), [], [event], [])
    assert (
        "- [2024-03-04..03-06] Went hiking in the Alps [said 2024-03-06]\n"
        "  Bought new boots [said 2024-03-04]\n"
    ) in packed.text
    assert "2026" not in packed.text


def test_event_days_are_in_the_configured_time_zone() -> None:
    from zoneinfo import ZoneInfo

    late = datetime(2024, 3, 4, 20, 0, tzinfo=UTC)  # 2024-03-05 05:00 in Tokyo
    event = Event(
        project_id=PROJECT, user_id=USER, summary="Late call", happened_from=late, happened_to=late
    )
    utc = pack_context(ContextRequest(max_tokens=200), [], [event], [])
    tokyo = pack_context(ContextRequest(max_tokens=200), [], [event], [], ZoneInfo("Asia/Tokyo"))
    assert "- [2024-03-04] Late call" in utc.text
    assert "- [2024-03-05] Late call" in tokyo.text
