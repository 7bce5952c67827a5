"""Dated transcripts in prompt-sized chunks, token splitting, and profile key matching."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from powermemo_gql.blobs.models import BlobType
from powermemo_gql.core.tokens import count_tokens, split_by_tokens, truncate_tokens
from powermemo_gql.memory.keys import KeyIndex, normalise, similar
from powermemo_gql.memory.transcript import Line, chunks, lines_of, render, span

UTC_ZONE = ZoneInfo("UTC")
T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)


def test_lines_take_the_message_time_else_the_insertion() -> None:
    inserted = datetime(2025, 1, 1, tzinfo=UTC)
    payload = {
        "messages": [
            {"role": "user", "content": "a", "created_at": "2024-03-04T09:00:00+01:00"},
            {"role": "assistant", "content": "b", "alias": "Bot"},
        ]
    }
    first, second = lines_of(BlobType.CHAT, payload, inserted)
    assert first == Line(datetime(2024, 3, 4, 8, 0, tzinfo=UTC), "user", "a")
    assert second == Line(inserted, "Bot", "b")
    assert span([first, second]) == (first.said_at, inserted)
    assert span([]) is None


def test_render_shows_days_and_times_only_where_they_matter() -> None:
    lines = [
        Line(T0, "user", "one"),
        Line(T0 + timedelta(minutes=30), "user", "two"),
        Line(T0 + timedelta(hours=2), "user", "three"),
        Line(T0 + timedelta(days=1), "user", "four"),
    ]
    assert render(lines, UTC_ZONE) == (
        "[2024-03-04 Mon]\n09:00 user: one\nuser: two\n11:00 user: three\n"
        "[2024-03-05 Tue]\n09:00 user: four\n"
    )


def test_chunks_fit_the_budget_and_each_starts_dated() -> None:
    lines = [
        Line(T0 + timedelta(minutes=i), "user", f"message number {i} " * 5) for i in range(200)
    ]
    pieces = chunks(lines, 300, UTC_ZONE)
    assert len(pieces) > 5
    for piece in pieces:
        assert count_tokens(piece) <= 300
        assert piece.startswith("[2024-03-04 Mon]\n")
    assert sum(p.count("message number") for p in pieces) == 200 * 5


def test_a_line_longer_than_a_chunk_is_split() -> None:
    text = " ".join(f"w{i}" for i in range(5000))
    pieces = chunks([Line(T0, "user", text)], 500, UTC_ZONE)
    assert all(count_tokens(p) <= 500 for p in pieces)
    words = " ".join(p.split(" ", 1)[1] if p.startswith("[") else p for p in pieces)
    for word in ("w0", "w2500", "w4999"):
        assert word in words


@pytest.mark.parametrize("text", ["hello world " * 3000, "数据库系统" * 3000, "x" * 20_000])
def test_split_by_tokens_keeps_every_character(text: str) -> None:
    pieces = split_by_tokens(text, 256)
    assert "".join(pieces) == text
    assert all(count_tokens(p) <= 260 for p in pieces)


def test_truncate_tokens() -> None:
    assert truncate_tokens("short", 10) == "short"
    cut = truncate_tokens("word " * 500, 20)
    assert count_tokens(cut) <= 20
    assert cut.endswith("…")


def test_key_normalisation_and_similarity() -> None:
    assert normalise(" Hiking Trips ") == "hiking_trips"
    assert normalise("hiking-trips") == "hiking_trips"
    assert similar("hiking", "hiking_trips")
    assert similar("foods", "food")
    assert not similar("music", "movies")


def test_key_index_reuses_spellings_and_finds_close_keys() -> None:
    keys = KeyIndex([("interest", "hiking"), ("work", "title")], [("basic_info", "name")])
    assert keys.key("Interests", "Hiking") == ("interest", "hiking")
    assert keys.key("Basic Info", "Name") == ("basic_info", "name")
    assert keys.key("interest", "hiking trips") == ("interest", "hiking_trips")
    assert keys.close_to(("interest", "hiking_trips")) == ("interest", "hiking")
    assert keys.close_to(("interest", "hiking")) is None  # it exists: no "close" one
    assert keys.close_to(("work", "company")) is None
    assert keys.describe() == "interest: hiking; work: title"
