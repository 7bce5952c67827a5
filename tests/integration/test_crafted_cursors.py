"""Cursors made by hand are refused as BAD_USER_INPUT naming the argument, never masked.

Each case starts from a cursor the server issued (so it carries the listing's real tag) and
bends one thing: a NUL or a lone surrogate inside, a date at the edge of the calendar with
an extreme offset, an id past BIGINT, nesting, text that is not JSON, a value of the wrong
type, a cursor of another listing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import Api, GraphQLResponse, ProjectHandle

USERS = """
query($first: Int, $after: String, $last: Int, $before: String, $orderBy: UserOrder) {
  users(first: $first, after: $after, last: $last, before: $before, orderBy: $orderBy) {
    edges { cursor }
  }
}
"""
CHANGES = """
query($first: Int, $after: String, $last: Int, $before: String) {
  user(userId: "alice") {
    changes(first: $first, after: $after, last: $last, before: $before) { edges { cursor } }
  }
}
"""
ADD = """
mutation($sub: String!) {
  addProfileEntry(input: {userId: "alice", topic: "work", subTopic: $sub, content: "x"}) {
    __typename
  }
}
"""
UUID = "c0ffee00-0000-4000-8000-000000000000"
BY_ID = {"field": "ID", "direction": "ASC"}
BY_CREATION = {"field": "CREATED_AT", "direction": "ASC"}


def encoded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parts_of(cursor: str) -> list[Any]:
    parts: list[Any] = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    return parts


def forged(*parts: Any) -> str:
    return encoded(json.dumps(list(parts)).encode())


Craft = Callable[[str, str], str]  # (a cursor of this listing, one of another) -> crafted

# Bends that fit every listing.
COMMON: dict[str, Craft] = {
    "nul-in-tag": lambda c, _: forged(parts_of(c)[0] + "\x00", *parts_of(c)[1:]),
    "nul-in-tiebreak": lambda c, _: forged(*parts_of(c)[:2], parts_of(c)[2] + "\x00"),
    "lone-surrogate": lambda c, _: forged(parts_of(c)[0], "\ud800", parts_of(c)[2]),
    "deeply-nested": lambda c, _: encoded(b"[" * 400 + b"]" * 400),
    "very-deeply-nested": lambda c, _: encoded(b"[" * 100_000),
    "not-json": lambda c, _: encoded(b'["' + parts_of(c)[0].encode() + b'", '),
    "object-for-a-key": lambda c, _: forged(parts_of(c)[0], {"a": 1}, parts_of(c)[2]),
    "number-for-the-tiebreak": lambda c, _: forged(*parts_of(c)[:2], 5),
    "infinity": lambda c, _: encoded(f'["{parts_of(c)[0]}", Infinity, Infinity]'.encode()),
    "four-parts": lambda c, _: forged(*parts_of(c), "more"),
    "too-long": lambda c, _: forged(*parts_of(c)[:2], parts_of(c)[2] + "0" * 4000),
    "nul-in-the-cursor-text": lambda c, _: c[:4] + "\x00" + c[4:],
    "other-listing": lambda _, other: other,
}
USERS_BY_ID: dict[str, Craft] = {
    **COMMON,
    "nul-in-the-user-id": lambda c, _: forged(parts_of(c)[0], "ch\x00erry", UUID),
    "surrogate-in-the-user-id": lambda c, _: forged(parts_of(c)[0], "ch\udfffrry", UUID),
}
USERS_BY_CREATION: dict[str, Craft] = {
    **COMMON,
    "end-of-calendar-west": lambda c, _: forged(
        parts_of(c)[0], "9999-12-31T23:59:59.999999-23:59", UUID
    ),
    "start-of-calendar-east": lambda c, _: forged(
        parts_of(c)[0], "0001-01-01T00:00:00+23:59", UUID
    ),
}
CHANGE_CURSORS: dict[str, Craft] = {
    **COMMON,
    "id-2**63": lambda c, _: forged(parts_of(c)[0], str(2**63), str(2**63)),
    "huge-id": lambda c, _: forged(parts_of(c)[0], "9" * 300, "9" * 300),
    "negative-id": lambda c, _: forged(parts_of(c)[0], "-1", "-1"),
    "date-for-an-id": lambda c, _: forged(parts_of(c)[0], "2024-01-01T00:00:00+00:00", "1"),
}


@pytest.fixture
async def api(project: ProjectHandle) -> Api:
    """A project with users cherry and fig; alice has two changes."""
    for user_id in ("alice", "cherry", "fig"):
        await project.api.ok(
            f'mutation {{ createUser(input: {{userId: "{user_id}"}}) {{ __typename }} }}'
        )
    for sub in ("a", "b"):
        await project.api.ok(ADD, sub=sub)
    return project.api


async def user_cursor_of(api: Api, order: dict[str, str]) -> str:
    cursor: str = (await api.ok(USERS, first=1, orderBy=order))["users"]["edges"][0]["cursor"]
    return cursor


async def change_cursor_of(api: Api) -> str:
    edges = (await api.ok(CHANGES, first=1))["user"]["changes"]["edges"]
    cursor: str = edges[0]["cursor"]
    return cursor


def _refused(response: GraphQLResponse, argument: str) -> None:
    # The refused field is null: the whole `users`, or `user` above the refused `changes`.
    assert response.data in (None, {"user": None}), response.data
    assert len(response.errors) == 1, response.errors
    assert response.errors[0]["extensions"] == {"code": "BAD_USER_INPUT", "field": argument}


def _cases(crafts: dict[str, Craft]) -> list[Any]:
    return [
        pytest.param(craft, argument, id=f"{name}-{argument}")
        for name, craft in crafts.items()
        for argument in ("after", "before")
    ]


@pytest.mark.parametrize(("craft", "argument"), _cases(USERS_BY_ID))
async def test_crafted_user_cursor_by_id(api: Api, craft: Craft, argument: str) -> None:
    cursor = craft(await user_cursor_of(api, BY_ID), await change_cursor_of(api))
    size = "first" if argument == "after" else "last"

    response = await api.run(USERS, orderBy=BY_ID, **{size: 2, argument: cursor})

    _refused(response, argument)


@pytest.mark.parametrize(("craft", "argument"), _cases(USERS_BY_CREATION))
async def test_crafted_user_cursor_by_creation(api: Api, craft: Craft, argument: str) -> None:
    cursor = craft(await user_cursor_of(api, BY_CREATION), await change_cursor_of(api))
    size = "first" if argument == "after" else "last"

    response = await api.run(USERS, orderBy=BY_CREATION, **{size: 2, argument: cursor})

    _refused(response, argument)


@pytest.mark.parametrize(("craft", "argument"), _cases(CHANGE_CURSORS))
async def test_crafted_change_cursor(api: Api, craft: Craft, argument: str) -> None:
    cursor = craft(await change_cursor_of(api), await user_cursor_of(api, BY_ID))
    size = "first" if argument == "after" else "last"

    response = await api.run(CHANGES, **{size: 2, argument: cursor})

    _refused(response, argument)


async def test_the_largest_id_is_still_a_cursor(api: Api) -> None:
    tag = parts_of(await change_cursor_of(api))[0]
    largest = str(2**63 - 1)

    after = await api.run(CHANGES, first=2, after=forged(tag, largest, largest))
    before = await api.run(CHANGES, last=5, before=forged(tag, largest, largest))

    assert after.errors == []
    assert after.data == {"user": {"changes": {"edges": []}}}
    assert before.errors == []
    assert before.data is not None
    assert len(before.data["user"]["changes"]["edges"]) == 2
