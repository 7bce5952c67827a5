"""Change cursors count the user's own changes: they tell a tenant nothing about others."""

from __future__ import annotations

from typing import Any

from tests.conftest import ProjectFactory
from tests.support import Api

ADD = """
mutation($sub: String!) {
  addProfileEntry(input: {userId: "alice", topic: "work", subTopic: $sub, content: "x"}) {
    __typename
  }
}
"""
CURSORS = """
query {
  user(userId: "alice") {
    changesCursor
    changes(first: 100) { nodes { cursor subTopic } }
  }
}
"""


async def _tenant(make_project: ProjectFactory, name: str) -> Api:
    api = (await make_project(name)).api
    await api.ok('mutation { createUser(input: {userId: "alice"}) { __typename } }')
    return api


async def _seen(api: Api) -> dict[str, Any]:
    user: dict[str, Any] = (await api.ok(CURSORS))["user"]
    return user


async def test_activity_of_another_tenant_changes_nothing_in_my_cursors(
    make_project: ProjectFactory,
) -> None:
    watcher, busy, alone = [await _tenant(make_project, n) for n in ("watcher", "busy", "alone")]
    await watcher.ok(ADD, sub="first")
    await alone.ok(ADD, sub="first")
    before = await _seen(watcher)

    for n in range(5):  # another tenant's activity between two reads
        await busy.ok(ADD, sub=f"busy{n}")
    between = await _seen(watcher)
    await watcher.ok(ADD, sub="second")
    await alone.ok(ADD, sub="second")

    assert between == before
    # The watcher's cursors are exactly those of a tenant that had the same activity with
    # nobody else around: they carry no trace of the busy tenant.
    assert await _seen(watcher) == await _seen(alone)
