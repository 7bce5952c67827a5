"""user.events(tags:): events filtered by a tag name or a name:value pair."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.applications import Starlette

from tests.integration.recall.conftest import Memory
from tests.support import ProjectHandle

EVENTS = """
query($tags: [String!]) {
  user(userId: "alice") { events(first: 10, tags: $tags) { nodes { summary } } }
}
"""
BAD_TAGS = 'query { user(userId: "alice") { events(tags: ["  "]) { nodes { id } } } }'


async def test_events_filter_by_tag(app: Starlette, project: ProjectHandle) -> None:
    alice = await Memory(app, project.api, "alice").create()
    await alice.event(
        "- Ran a marathon",
        tags=[{"tag": "activity", "value": "sport"}],
        happened=datetime(2024, 1, 1, tzinfo=UTC),
    )
    await alice.event(
        "- Played the piano",
        tags=[{"tag": "activity", "value": "music"}, {"tag": "mood", "value": "happy"}],
        happened=datetime(2024, 2, 1, tzinfo=UTC),
    )
    await alice.event("- Slept in", happened=datetime(2024, 3, 1, tzinfo=UTC))

    async def summaries(tags: list[str] | None) -> list[str]:
        data = await project.api.ok(EVENTS, tags=tags)
        return [n["summary"] for n in data["user"]["events"]["nodes"]]

    assert await summaries(None) == ["- Slept in", "- Played the piano", "- Ran a marathon"]
    assert await summaries(["activity"]) == ["- Played the piano", "- Ran a marathon"]
    assert await summaries(["activity:sport"]) == ["- Ran a marathon"]
    assert await summaries(["activity:sport", "mood"]) == ["- Played the piano", "- Ran a marathon"]
    assert await summaries(["mood:sad"]) == []

    rejected = await project.api.run(BAD_TAGS)
    assert rejected.error_codes() == ["BAD_USER_INPUT"]
    assert rejected.errors[0]["extensions"]["field"] == "tags[0]"
