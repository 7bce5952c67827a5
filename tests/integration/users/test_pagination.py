"""Keyset pagination of `users`: walking both ways, orderings, cursors, limits and search."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.support import Api, GraphQLResponse, ProjectHandle

USERS = """
query(
  $first: Int, $after: String, $last: Int, $before: String,
  $search: String, $orderBy: UserOrder
) {
  users(
    first: $first, after: $after, last: $last, before: $before,
    search: $search, orderBy: $orderBy
  ) {
    edges { cursor node { id: userId } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""
CREATE_USER = """
mutation($id: ID!) {
  createUser(input: {userId: $id}) { __typename }
}
"""
UPDATE_USER = """
mutation($id: ID!, $data: JSON!) {
  updateUser(input: {userId: $id, data: $data}) { __typename }
}
"""
DELETE_USER = """
mutation($id: ID!) {
  deleteUser(input: {userId: $id}) { __typename }
}
"""
PROJECTS = """
query($after: String) {
  projects(first: 10, after: $after) { nodes { id } }
}
"""

# Deliberately not in alphabetical order, so creation order and id order differ.
CREATION_ORDER = ["mango", "apple", "kiwi", "banana", "cherry", "fig", "date"]
BY_CREATION = {"field": "CREATED_AT", "direction": "ASC"}
BY_CREATION_DESC = {"field": "CREATED_AT", "direction": "DESC"}
BY_ID = {"field": "ID", "direction": "ASC"}
BY_ID_DESC = {"field": "ID", "direction": "DESC"}
BY_UPDATE = {"field": "UPDATED_AT", "direction": "ASC"}
BY_UPDATE_DESC = {"field": "UPDATED_AT", "direction": "DESC"}


async def create_users(api: Api, ids: list[str]) -> None:
    for user_id in ids:
        result = await api.ok(CREATE_USER, id=user_id)
        assert result["createUser"]["__typename"] == "CreateUserPayload"


@pytest.fixture
async def api(project: ProjectHandle) -> Api:
    """A project holding the users of CREATION_ORDER, created in that order."""
    await create_users(project.api, CREATION_ORDER)
    return project.api


async def users_page(api: Api, **args: Any) -> dict[str, Any]:
    result = await api.ok(USERS, **args)
    connection: dict[str, Any] = result["users"]
    edges = connection["edges"]
    page_info = connection["pageInfo"]
    # Start and end cursors are the cursors of the first and last edge.
    assert page_info["startCursor"] == (edges[0]["cursor"] if edges else None)
    assert page_info["endCursor"] == (edges[-1]["cursor"] if edges else None)
    return connection


def ids_of(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["id"] for edge in connection["edges"]]


def flags_of(connection: dict[str, Any]) -> tuple[bool, bool]:
    """(hasPreviousPage, hasNextPage)"""
    info = connection["pageInfo"]
    return info["hasPreviousPage"], info["hasNextPage"]


async def walk_forward(api: Api, size: int, **args: Any) -> list[dict[str, Any]]:
    pages = [await users_page(api, first=size, **args)]
    while pages[-1]["pageInfo"]["hasNextPage"]:
        assert len(pages) <= 50, "pagination does not end"
        pages.append(
            await users_page(api, first=size, after=pages[-1]["pageInfo"]["endCursor"], **args)
        )
    return pages


async def walk_backward(api: Api, size: int, **args: Any) -> list[dict[str, Any]]:
    pages = [await users_page(api, last=size, **args)]
    while pages[-1]["pageInfo"]["hasPreviousPage"]:
        assert len(pages) <= 50, "pagination does not end"
        pages.append(
            await users_page(api, last=size, before=pages[-1]["pageInfo"]["startCursor"], **args)
        )
    return pages


def bad_user_input(response: GraphQLResponse) -> dict[str, Any]:
    """The extensions of the single top-level error of a rejected `users` query."""
    assert response.data is None
    assert len(response.errors) == 1, response.errors
    extensions: dict[str, Any] = response.errors[0]["extensions"]
    assert extensions["code"] == "BAD_USER_INPUT"
    return extensions


def forged_cursor(*parts: Any) -> str:
    """A cursor built by hand: base64url of a JSON array, like the server's own."""
    raw = json.dumps(list(parts)).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# Walking


async def test_forward_pages_list_every_user_once_in_creation_order(api: Api) -> None:
    pages = await walk_forward(api, 3)

    assert [ids_of(page) for page in pages] == [
        CREATION_ORDER[0:3],
        CREATION_ORDER[3:6],
        CREATION_ORDER[6:7],
    ]
    assert [flags_of(page) for page in pages] == [(False, True), (True, True), (True, False)]


async def test_backward_pages_list_every_user_once_in_creation_order(api: Api) -> None:
    pages = await walk_backward(api, 3)

    assert [ids_of(page) for page in pages] == [
        CREATION_ORDER[4:7],
        CREATION_ORDER[1:4],
        CREATION_ORDER[0:1],
    ]
    assert [flags_of(page) for page in pages] == [(True, False), (True, True), (False, True)]


async def test_page_size_equal_to_the_count_has_no_next_page(api: Api) -> None:
    forward = await users_page(api, first=len(CREATION_ORDER))
    backward = await users_page(api, last=len(CREATION_ORDER))

    assert ids_of(forward) == CREATION_ORDER
    assert flags_of(forward) == (False, False)
    assert ids_of(backward) == CREATION_ORDER
    assert flags_of(backward) == (False, False)


async def test_without_page_size_all_users_fit_in_the_default_page(api: Api) -> None:
    connection = await users_page(api)

    assert ids_of(connection) == CREATION_ORDER
    assert flags_of(connection) == (False, False)


async def test_first_100_is_allowed(api: Api) -> None:
    connection = await users_page(api, first=100)

    assert ids_of(connection) == CREATION_ORDER


async def test_after_the_last_cursor_is_an_empty_page(api: Api) -> None:
    everyone = await users_page(api, first=10)

    beyond = await users_page(api, first=3, after=everyone["pageInfo"]["endCursor"])

    assert ids_of(beyond) == []
    assert flags_of(beyond) == (True, False)


async def test_before_without_last_lists_everything_before_the_cursor(api: Api) -> None:
    everyone = await users_page(api, first=10)
    last_cursor = everyone["edges"][-1]["cursor"]

    before = await users_page(api, before=last_cursor)

    assert ids_of(before) == CREATION_ORDER[:-1]
    assert flags_of(before) == (False, True)


async def test_cursor_of_a_deleted_user_still_continues_the_walk(api: Api) -> None:
    first_page = await users_page(api, first=3)
    await api.ok(DELETE_USER, id=CREATION_ORDER[2])

    second_page = await users_page(api, first=3, after=first_page["pageInfo"]["endCursor"])

    assert ids_of(second_page) == CREATION_ORDER[3:6]
    assert flags_of(second_page) == (True, True)


async def test_project_without_users_has_an_empty_connection(project: ProjectHandle) -> None:
    connection = await users_page(project.api, first=3)

    assert connection["edges"] == []
    assert flags_of(connection) == (False, False)


# Orderings


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        pytest.param(BY_CREATION, CREATION_ORDER, id="created-asc"),
        pytest.param(BY_CREATION_DESC, CREATION_ORDER[::-1], id="created-desc"),
        pytest.param(BY_ID, sorted(CREATION_ORDER), id="id-asc"),
        pytest.param(BY_ID_DESC, sorted(CREATION_ORDER, reverse=True), id="id-desc"),
    ],
)
async def test_ordering_holds_across_pages_in_both_directions(
    api: Api, order_by: dict[str, str], expected: list[str]
) -> None:
    forward = await walk_forward(api, 2, orderBy=order_by)
    backward = await walk_backward(api, 2, orderBy=order_by)

    assert [user for page in forward for user in ids_of(page)] == expected
    assert [user for page in reversed(backward) for user in ids_of(page)] == expected


async def test_order_by_updated_at_puts_recently_updated_users_last(api: Api) -> None:
    await api.ok(UPDATE_USER, id="apple", data={"n": 1})
    await api.ok(UPDATE_USER, id="mango", data={"n": 2})
    untouched = [user for user in CREATION_ORDER if user not in ("apple", "mango")]
    expected = [*untouched, "apple", "mango"]

    ascending = await walk_forward(api, 2, orderBy=BY_UPDATE)
    descending = await walk_forward(api, 2, orderBy=BY_UPDATE_DESC)
    backward = await walk_backward(api, 2, orderBy=BY_UPDATE)

    assert [user for page in ascending for user in ids_of(page)] == expected
    assert [user for page in descending for user in ids_of(page)] == expected[::-1]
    assert [user for page in reversed(backward) for user in ids_of(page)] == expected


async def test_order_defaults_to_creation_ascending(api: Api) -> None:
    direction_only = await users_page(api, orderBy={"direction": "ASC"})
    field_only = await users_page(api, orderBy={"field": "CREATED_AT"})

    assert ids_of(direction_only) == CREATION_ORDER
    assert ids_of(field_only) == CREATION_ORDER


# Cursors


@pytest.mark.parametrize(
    ("issued_by", "used_with"),
    [
        pytest.param(BY_CREATION, BY_ID, id="created-to-id"),
        pytest.param(BY_ID, BY_ID_DESC, id="asc-to-desc"),
        pytest.param(BY_CREATION, BY_UPDATE, id="created-to-updated"),
        pytest.param(BY_UPDATE_DESC, BY_CREATION_DESC, id="updated-to-created"),
    ],
)
async def test_cursor_of_one_ordering_is_rejected_by_another(
    api: Api, issued_by: dict[str, str], used_with: dict[str, str]
) -> None:
    page = await users_page(api, first=2, orderBy=issued_by)
    cursor = page["pageInfo"]["endCursor"]

    forward = await api.run(USERS, first=2, after=cursor, orderBy=used_with)
    backward = await api.run(USERS, last=2, before=cursor, orderBy=used_with)

    assert bad_user_input(forward)["field"] == "after"
    assert bad_user_input(backward)["field"] == "before"


async def test_user_cursor_is_rejected_by_the_projects_listing(api: Api, root: Api) -> None:
    page = await users_page(api, first=2)

    response = await root.run(PROJECTS, after=page["pageInfo"]["endCursor"])

    assert response.data is None
    assert response.errors[0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("not-a-cursor", id="garbage"),
        pytest.param("", id="empty"),
        pytest.param("!!!!", id="not-base64"),
        pytest.param(base64.urlsafe_b64encode(b"\xff\xfe").decode(), id="not-utf8"),
        pytest.param(base64.urlsafe_b64encode(b"{}").decode(), id="object"),
        pytest.param(base64.urlsafe_b64encode(b"42").decode(), id="number"),
        pytest.param(forged_cursor("users:created_at:asc"), id="too-short"),
        pytest.param(forged_cursor("users:created_at:asc", 1, 2), id="not-strings"),
        pytest.param(
            forged_cursor(
                "users:created_at:asc", "yesterday", "c0ffee00-0000-4000-8000-000000000000"
            ),
            id="bad-datetime",
        ),
        pytest.param(
            forged_cursor("users:created_at:asc", "2024-01-01T00:00:00+00:00", "not-a-uuid"),
            id="bad-uuid",
        ),
        pytest.param(
            forged_cursor(
                "users:created_at:asc",
                "2024-01-01T00:00:00",
                "c0ffee00-0000-4000-8000-000000000000",
            ),
            id="naive-datetime",
        ),
    ],
)
async def test_malformed_cursor_is_bad_user_input(api: Api, cursor: str) -> None:
    response = await api.run(USERS, first=2, after=cursor)

    assert bad_user_input(response)["field"] == "after"


async def test_forged_cursor_with_a_valid_shape_is_accepted(api: Api) -> None:
    # Past every row id, so "cherry" itself is behind the cursor: a keyset, not an offset.
    cursor = forged_cursor("users:id:asc", "cherry", "ffffffff-ffff-4fff-bfff-ffffffffffff")

    page = await users_page(api, first=10, after=cursor, orderBy=BY_ID)

    assert ids_of(page) == ["date", "fig", "kiwi", "mango"]
    assert flags_of(page) == (True, False)


# Page sizes


@pytest.mark.parametrize(
    ("args", "field"),
    [
        pytest.param({"first": 101}, "first", id="first-101"),
        pytest.param({"first": -1}, "first", id="first-negative"),
        pytest.param({"last": 101}, "last", id="last-101"),
        pytest.param({"last": -1}, "last", id="last-negative"),
    ],
)
async def test_page_size_out_of_range_is_bad_user_input(
    api: Api, args: dict[str, int], field: str
) -> None:
    response = await api.run(USERS, **args)

    extensions = bad_user_input(response)
    assert extensions["field"] == field
    assert "100" in response.errors[0]["message"]


async def test_first_and_last_together_are_bad_user_input(api: Api) -> None:
    response = await api.run(USERS, first=2, last=2)

    assert bad_user_input(response)["field"] in ("first", "last")


async def test_after_with_last_is_bad_user_input(api: Api) -> None:
    cursor = (await users_page(api, first=2))["pageInfo"]["endCursor"]

    response = await api.run(USERS, last=2, after=cursor)

    assert bad_user_input(response)["field"] == "after"


async def test_before_with_first_is_bad_user_input(api: Api) -> None:
    cursor = (await users_page(api, first=2))["pageInfo"]["endCursor"]

    response = await api.run(USERS, first=2, before=cursor)

    assert bad_user_input(response)["field"] == "before"


# Search

SEARCH_IDS = ["Alice.Smith", "bob_jones", "alice-2", "bobxjones", "BOB.X", "carol", "zed"]


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        pytest.param("alice", ["Alice.Smith", "alice-2"], id="lowercase"),
        pytest.param("ALICE", ["Alice.Smith", "alice-2"], id="uppercase"),
        pytest.param("e.sM", ["Alice.Smith"], id="mixed-case-middle"),
        pytest.param("bob", ["bob_jones", "bobxjones", "BOB.X"], id="prefix"),
        pytest.param("b_j", ["bob_jones"], id="underscore-literal"),
        pytest.param("_", ["bob_jones"], id="underscore-alone"),
        pytest.param("%", [], id="percent-alone"),
        pytest.param("b%j", [], id="percent-literal"),
        pytest.param("\\", [], id="backslash"),
        pytest.param("nobody", [], id="no-match"),
        pytest.param("", SEARCH_IDS, id="empty-matches-all"),
    ],
)
async def test_search_is_a_case_insensitive_literal_substring_of_the_id(
    project: ProjectHandle, search: str, expected: list[str]
) -> None:
    await create_users(project.api, SEARCH_IDS)

    connection = await users_page(project.api, search=search)

    assert ids_of(connection) == expected


async def test_search_results_paginate_without_counting_other_users(
    project: ProjectHandle,
) -> None:
    await create_users(project.api, SEARCH_IDS)

    forward = await walk_forward(project.api, 1, search="bob")
    backward = await walk_backward(project.api, 2, search="BOB")

    assert [ids_of(page) for page in forward] == [["bob_jones"], ["bobxjones"], ["BOB.X"]]
    assert [flags_of(page) for page in forward] == [(False, True), (True, True), (True, False)]
    assert [ids_of(page) for page in backward] == [["bobxjones", "BOB.X"], ["bob_jones"]]
    assert [flags_of(page) for page in backward] == [(True, False), (False, True)]


async def test_search_longer_than_128_characters_is_bad_user_input(api: Api) -> None:
    response = await api.run(USERS, search="a" * 129)

    assert bad_user_input(response)["field"] == "search"
