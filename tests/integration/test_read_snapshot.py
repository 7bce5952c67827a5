"""A query that reads `changesCursor` reads one snapshot: a commit racing the read falls
wholly after the cursor and the profile read with it, so a client that subscribes from the
cursor misses nothing and sees nothing twice."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from powermemo_gql.changes.repository import ChangeRepository
from powermemo_gql.profiles.service import ProfileService
from tests.support import ProjectHandle

ADD_ENTRY = """
mutation($user: ID!, $sub: String!, $content: String!) {
  addProfileEntry(input: {userId: $user, topic: "t", subTopic: $sub, content: $content}) {
    __typename
  }
}
"""
READ = '{ user(userId: "alice") { changesCursor profile { content } } }'
CHANGES = '{ user(userId: "alice") { changes(first: 100) { nodes { cursor newValue } } } }'


def _racing_first_read(
    monkeypatch: pytest.MonkeyPatch, race: Callable[[], Awaitable[None]]
) -> list[str]:
    """Whichever of the cursor read and the profile read comes first commits `race` before
    reading: after the user was looked up, between the operation's reads."""
    raced: list[str] = []

    def racing(name: str, read: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not raced:
                raced.append(name)
                await race()
            return await read(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(
        ChangeRepository, "latest_seq", racing("cursor", ChangeRepository.latest_seq)
    )
    monkeypatch.setattr(ProfileService, "for_users", racing("profile", ProfileService.for_users))
    return raced


async def test_a_commit_racing_the_read_falls_after_cursor_and_profile(
    project: ProjectHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = project.api
    await api.ok('mutation { createUser(input: {userId: "alice"}) { __typename } }')
    await api.ok(ADD_ENTRY, user="alice", sub="a", content="kept")

    async def race() -> None:  # another request, committed while the read is under way
        await api.ok(ADD_ENTRY, user="alice", sub="b", content="raced")

    raced = _racing_first_read(monkeypatch, race)
    read = (await api.ok(READ))["user"]
    monkeypatch.undo()

    assert raced  # the race did run between the reads
    changes = (await api.ok(CHANGES))["user"]["changes"]["nodes"]
    cursor_of = {change["newValue"]: change["cursor"] for change in changes}
    assert [entry["content"] for entry in read["profile"]] == ["kept"]
    assert read["changesCursor"] == cursor_of["kept"]  # the raced change comes after it
    assert cursor_of["raced"] != cursor_of["kept"]


async def test_without_the_cursor_a_query_reads_the_latest_commits(
    project: ProjectHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only an operation that needs a snapshot pays for one: other queries read each
    statement's latest commit (on PostgreSQL, without BEGIN / COMMIT round trips)."""
    api = project.api
    await api.ok('mutation { createUser(input: {userId: "alice"}) { __typename } }')
    await api.ok(ADD_ENTRY, user="alice", sub="a", content="kept")

    async def race() -> None:
        await api.ok(ADD_ENTRY, user="alice", sub="b", content="raced")

    raced = _racing_first_read(monkeypatch, race)
    # With an argument the profile is read in a statement of its own, after the user's.
    read = (await api.ok('{ user(userId: "alice") { profile(topk: 100) { content } } }'))["user"]
    monkeypatch.undo()

    assert raced == ["profile"]
    assert sorted(entry["content"] for entry in read["profile"]) == ["kept", "raced"]
