"""Editing a profile by hand: every change keeps the previous value."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import pytest

from tests.conftest import FAKE_NOW, ProjectFactory
from tests.support import Api, ProjectHandle

ADD = """
mutation($input: AddProfileEntryInput!) {
  addProfileEntry(input: $input) {
    __typename
    ... on AddProfileEntryPayload { entry { id topic subTopic content source history { content } } }
    ... on Error { code message }
    ... on InvalidInput { field }
  }
}
"""
UPDATE = """
mutation($id: ID!, $content: String!) {
  updateProfileEntry(input: {id: $id, content: $content}) {
    __typename
    ... on UpdateProfileEntryPayload { entry { content history { content action source } } }
    ... on Error { code }
    ... on InvalidInput { field }
  }
}
"""
DELETE = """
mutation($id: ID!) {
  deleteProfileEntry(input: {id: $id}) {
    __typename
    ... on DeleteProfileEntryPayload { deletedEntryId }
    ... on Error { code }
  }
}
"""
PROFILE = """
query($topics: [String!]) {
  user(userId: "alice") { profile(topics: $topics) { topic subTopic content } }
}
"""

UPDATED_AT = '{ user(userId: "alice") { profile { content updatedAt } } }'
STAMPS = """
{
  user(userId: "alice") {
    profile { createdAt updatedAt history { createdAt } }
    changes(first: 10) { nodes { kind createdAt } }
  }
}
"""


async def _add(
    api: Api, topic: str = "work", sub_topic: str = "title", content: str = "teacher"
) -> dict[str, Any]:
    data = await api.ok(
        ADD, input={"userId": "alice", "topic": topic, "subTopic": sub_topic, "content": content}
    )
    result: dict[str, Any] = data["addProfileEntry"]
    return result


@pytest.fixture
async def alice(project: ProjectHandle) -> Api:
    await project.api.ok('mutation { createUser(input: {userId: "alice"}) { __typename } }')
    return project.api


async def test_add_update_delete_keep_history(alice: Api) -> None:
    added = await _add(alice)
    assert added["__typename"] == "AddProfileEntryPayload"
    entry = added["entry"]
    assert (entry["content"], entry["source"], entry["history"]) == ("teacher", "MANUAL", [])

    updated = await alice.ok(UPDATE, id=entry["id"], content="chemistry teacher")
    assert updated["updateProfileEntry"]["entry"] == {
        "content": "chemistry teacher",
        "history": [{"content": "teacher", "action": "UPDATE", "source": "MANUAL"}],
    }

    deleted = await alice.ok(DELETE, id=entry["id"])
    assert deleted["deleteProfileEntry"] == {
        "__typename": "DeleteProfileEntryPayload",
        "deletedEntryId": entry["id"],
    }
    assert (await alice.ok(PROFILE))["user"]["profile"] == []
    again = await alice.ok(DELETE, id=entry["id"])
    assert again["deleteProfileEntry"] == {
        "__typename": "NotFound",
        "code": "NOT_FOUND",
    }


@pytest.mark.fake_clock
async def test_an_edit_stamps_updated_at_with_the_apps_clock(alice: Api) -> None:
    entry = (await _add(alice))["entry"]

    await alice.ok(UPDATE, id=entry["id"], content="chemistry teacher")

    [stored] = (await alice.ok(UPDATED_AT))["user"]["profile"]
    assert stored["content"] == "chemistry teacher"
    assert datetime.fromisoformat(stored["updatedAt"]) == FAKE_NOW


@pytest.mark.fake_clock
async def test_an_added_entry_and_its_change_are_stamped_with_the_apps_clock(alice: Api) -> None:
    added = await _add(alice)
    assert added["__typename"] == "AddProfileEntryPayload"

    [stored] = (await alice.ok(STAMPS))["user"]["profile"]
    assert datetime.fromisoformat(stored["createdAt"]) == FAKE_NOW
    assert datetime.fromisoformat(stored["updatedAt"]) == FAKE_NOW
    [change] = (await alice.ok(STAMPS))["user"]["changes"]["nodes"]
    assert change["kind"] == "ENTRY_ADDED"
    assert datetime.fromisoformat(change["createdAt"]) == FAKE_NOW


@pytest.mark.fake_clock
async def test_edits_keep_revisions_and_changes_stamped_with_the_apps_clock(alice: Api) -> None:
    entry = (await _add(alice))["entry"]
    await alice.ok(UPDATE, id=entry["id"], content="chemistry teacher")

    [stored] = (await alice.ok(STAMPS))["user"]["profile"]
    [revision] = stored["history"]
    assert datetime.fromisoformat(revision["createdAt"]) == FAKE_NOW
    await alice.ok(DELETE, id=entry["id"])
    changes = (await alice.ok(STAMPS))["user"]["changes"]["nodes"]
    assert [change["kind"] for change in changes] == [
        "ENTRY_ADDED",
        "ENTRY_UPDATED",
        "ENTRY_DELETED",
    ]
    assert {datetime.fromisoformat(change["createdAt"]) for change in changes} == {FAKE_NOW}


async def test_duplicate_slot_is_already_exists(alice: Api) -> None:
    await _add(alice)
    duplicate = await _add(alice, content="other")
    assert duplicate["__typename"] == "ProfileEntryAlreadyExists"
    assert duplicate["code"] == "ALREADY_EXISTS"


@pytest.mark.parametrize(
    ("topic", "sub_topic", "content", "field"),
    [
        ("", "title", "x", "topic"),
        ("work", "   ", "x", "subTopic"),
        ("work", "title", "", "content"),
        ("w" * 101, "title", "x", "topic"),
        ("work", "title", "x" * 5001, "content"),
        ("work", "title", "a\x00b", "content"),
    ],
)
async def test_bad_entries_name_the_field(
    alice: Api, topic: str, sub_topic: str, content: str, field: str
) -> None:
    result = await _add(alice, topic, sub_topic, content)
    assert result["__typename"] == "InvalidInput"
    assert result["field"] == field


async def test_profile_filters_by_topic(alice: Api) -> None:
    await _add(alice, "work", "title", "teacher")
    await _add(alice, "interest", "music", "jazz")
    only_work = await alice.ok(PROFILE, topics=["work"])
    assert only_work["user"]["profile"] == [
        {"topic": "work", "subTopic": "title", "content": "teacher"}
    ]
    everything = await alice.ok(PROFILE)
    assert len(everything["user"]["profile"]) == 2


async def test_other_projects_cannot_edit(alice: Api, make_project: ProjectFactory) -> None:
    entry = (await _add(alice))["entry"]
    other = await make_project("other")
    updated = await other.api.ok(UPDATE, id=entry["id"], content="hacked")
    assert updated["updateProfileEntry"] == {
        "__typename": "NotFound",
        "code": "NOT_FOUND",
    }
    deleted = await other.api.ok(DELETE, id=entry["id"])
    assert deleted["deleteProfileEntry"]["__typename"] == "NotFound"
    profile = (await alice.ok(PROFILE))["user"]["profile"]
    assert profile[0]["content"] == "teacher"


async def test_unknown_user_and_bad_ids(alice: Api) -> None:
    data = await alice.ok(
        ADD, input={"userId": "ghost", "topic": "a", "subTopic": "b", "content": "c"}
    )
    assert data["addProfileEntry"]["__typename"] == "NotFound"
    unknown = base64.b64encode(b"ProfileEntry:not-a-uuid").decode()
    updated = await alice.ok(UPDATE, id=unknown, content="x")
    assert updated["updateProfileEntry"]["__typename"] == "NotFound"
    malformed = await alice.ok(UPDATE, id="not-a-uuid", content="x")  # not a global id
    assert malformed["updateProfileEntry"]["__typename"] == "InvalidInput"


LIMITED = """
query($topk: Int, $maxTokens: Int) {
  user(userId: "alice") { profile(topk: $topk, maxTokens: $maxTokens) { subTopic } }
}
"""


async def test_topk_and_max_tokens_keep_the_most_recent(alice: Api) -> None:
    for name in ("a", "b", "c", "d"):
        await _add(alice, "work", name, f"content {name}")
    newest_two = await alice.ok(LIMITED, topk=2, maxTokens=None)
    assert [e["subTopic"] for e in newest_two["user"]["profile"]] == ["c", "d"]
    # "work::d: content d" is 7 tokens in cl100k_base: 15 tokens hold two entries, not three.
    budget = await alice.ok(LIMITED, topk=None, maxTokens=15)
    assert [e["subTopic"] for e in budget["user"]["profile"]] == ["c", "d"]
    assert (await alice.ok(LIMITED, topk=0, maxTokens=None))["user"]["profile"] == []
    negative = await alice.run(LIMITED, topk=-1, maxTokens=None)
    assert negative.error_codes() == ["BAD_USER_INPUT"]
