"""Authentication, the root/project split, and isolation between projects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from powermemo_gql.core.global_ids import global_id
from tests.conftest import FAKE_NOW, ProjectFactory
from tests.support import ROOT_TOKEN, Api, GraphQLResponse, ProjectHandle

VIEWER = "{ viewer { isRoot } }"
CREATE_USER = """
mutation($id: ID!, $data: JSON) {
  createUser(input: {userId: $id, data: $data}) {
    __typename
    ... on UserAlreadyExists { code id }
  }
}
"""
GET_USER = """
query($id: ID!) {
  user(userId: $id) { id data updatedAt }
}
"""
LIST_USERS = """
query($search: String) {
  users(first: 100, search: $search) { nodes { id: userId data } }
}
"""
UPDATE_USER = """
mutation($id: ID!, $data: JSON!) {
  updateUser(input: {userId: $id, data: $data}) {
    __typename
    ... on NotFound { code id }
  }
}
"""
DELETE_USER = """
mutation($id: ID!) {
  deleteUser(input: {userId: $id}) {
    __typename
    ... on NotFound { code id }
  }
}
"""
INSERT_CHAT = """
mutation($userId: ID!, $content: String!) {
  insertBlob(
    input: {userId: $userId, blob: {chat: {messages: [{role: USER, content: $content}]}}}
  ) {
    __typename
    ... on InsertBlobPayload { blob { id } }
    ... on NotFound { code id }
  }
}
"""
GET_BLOB = """
query($id: ID!) {
  blob(id: $id) { id user { id: userId } }
}
"""
USER_BLOBS = """
query($id: ID!) {
  user(userId: $id) { blobs { nodes { id } } }
}
"""
DELETE_BLOB = """
mutation($id: ID!) {
  deleteBlob(input: {id: $id}) {
    __typename
    ... on NotFound { code id }
  }
}
"""
CREATE_PROJECT = """
mutation($name: String!) {
  createProject(input: {name: $name}) {
    __typename
    ... on CreateProjectPayload { project { id name } }
    ... on ProjectAlreadyExists { code message id }
    ... on InvalidInput { code message field }
  }
}
"""
CREATE_API_KEY = """
mutation($projectId: ID!) {
  createApiKey(input: {projectId: $projectId, name: "extra"}) {
    __typename
    ... on CreateApiKeyPayload { secret apiKey { id name prefix revokedAt } }
    ... on NotFound { code id }
    ... on InvalidInput { code field }
  }
}
"""
REVOKE_API_KEY = """
mutation($id: ID!) {
  revokeApiKey(input: {id: $id}) {
    __typename
    ... on RevokeApiKeyPayload { apiKey { id revokedAt } }
    ... on NotFound { code id }
  }
}
"""
PROJECTS = "{ projects(first: 100) { nodes { id name } } }"
PROJECT = """
query($id: ID!) {
  project(id: $id) { id }
}
"""
VIEWER_API_KEYS = "{ viewer { project { apiKeys { id } } } }"
PROJECT_API_KEYS = """
query($id: ID!) {
  project(id: $id) { apiKeys { id revokedAt } }
}
"""
PROJECT_CREATED_AT = """
query($id: ID!) {
  project(id: $id) { createdAt apiKeys { id createdAt } }
}
"""

UNKNOWN_UUID = "00000000-0000-4000-8000-000000000000"


def assert_unauthenticated(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "data" not in body


def holds_nothing(value: Any) -> bool:
    """True when a response's data carries no value: only nulls, however nested."""
    if isinstance(value, dict):
        return all(holds_nothing(v) for v in value.values())
    return value is None


def assert_forbidden(response: GraphQLResponse) -> None:
    assert response.error_codes() == ["FORBIDDEN"]
    assert holds_nothing(response.data), response.data


async def issue_key(root: Api, project: ProjectHandle) -> tuple[str, str]:
    """A new API key of the project: (key id, secret)."""
    result = await root.ok(CREATE_API_KEY, projectId=project.id)
    issued = result["createApiKey"]
    assert issued["__typename"] == "CreateApiKeyPayload"
    return issued["apiKey"]["id"], issued["secret"]


# Authentication


async def test_request_without_authorization_is_401(app: Starlette) -> None:
    response = await Api(app, None).post({"query": VIEWER})

    assert_unauthenticated(response)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("wrong-token-0123456789", id="random"),
        pytest.param("pm_" + "x" * 43, id="api-key-shaped"),
        pytest.param(ROOT_TOKEN[:-1], id="root-token-prefix"),
        pytest.param(ROOT_TOKEN + "0", id="root-token-longer"),
    ],
)
async def test_unknown_bearer_token_is_401(app: Starlette, token: str) -> None:
    response = await Api(app, token).post({"query": VIEWER})

    assert_unauthenticated(response)


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Basic {token}", id="basic"),
        pytest.param("Token {token}", id="token-scheme"),
        pytest.param("{token}", id="no-scheme"),
        pytest.param("Bearer", id="bearer-without-token"),
        pytest.param("Bearer ", id="bearer-blank"),
    ],
)
async def test_non_bearer_authorization_is_401(project: ProjectHandle, authorization: str) -> None:
    header = authorization.format(token=project.api_key)

    response = await project.api.post({"query": VIEWER}, headers={"Authorization": header})

    assert_unauthenticated(response)


async def test_bearer_scheme_is_case_insensitive(project: ProjectHandle) -> None:
    response = await project.api.post(
        {"query": VIEWER}, headers={"Authorization": f"bearer {project.api_key}"}
    )

    assert response.status_code == 200
    assert response.json()["data"] == {"viewer": {"isRoot": False}}


async def test_revoked_key_is_401_on_the_next_request(
    app: Starlette, root: Api, project: ProjectHandle
) -> None:
    key_id, secret = await issue_key(root, project)
    api = Api(app, secret)
    assert (await api.ok(VIEWER))["viewer"] == {"isRoot": False}

    revoked = await root.ok(REVOKE_API_KEY, id=key_id)

    assert revoked["revokeApiKey"]["__typename"] == "RevokeApiKeyPayload"
    assert revoked["revokeApiKey"]["apiKey"]["revokedAt"] is not None
    assert_unauthenticated(await api.post({"query": VIEWER}))


@pytest.mark.fake_clock
async def test_a_key_is_revoked_at_the_apps_clock(root: Api, project: ProjectHandle) -> None:
    key_id, _ = await issue_key(root, project)

    revoked = await root.ok(REVOKE_API_KEY, id=key_id)

    assert datetime.fromisoformat(revoked["revokeApiKey"]["apiKey"]["revokedAt"]) == FAKE_NOW
    keys = (await root.ok(PROJECT_API_KEYS, id=project.id))["project"]["apiKeys"]
    [stored] = [key for key in keys if key["id"] == key_id]
    assert datetime.fromisoformat(stored["revokedAt"]) == FAKE_NOW


@pytest.mark.fake_clock
async def test_a_project_and_its_keys_are_created_at_the_apps_clock(
    root: Api, project: ProjectHandle
) -> None:
    key_id, _ = await issue_key(root, project)

    stored = (await root.ok(PROJECT_CREATED_AT, id=project.id))["project"]
    assert datetime.fromisoformat(stored["createdAt"]) == FAKE_NOW
    # The key the project fixture issued with it, and the one issued here.
    assert len(stored["apiKeys"]) == 2
    assert key_id in [key["id"] for key in stored["apiKeys"]]
    assert [datetime.fromisoformat(key["createdAt"]) for key in stored["apiKeys"]] == [
        FAKE_NOW,
        FAKE_NOW,
    ]


async def test_revoking_one_key_leaves_the_projects_other_keys_working(
    root: Api, project: ProjectHandle
) -> None:
    key_id, _ = await issue_key(root, project)

    await root.ok(REVOKE_API_KEY, id=key_id)

    assert (await project.api.ok(VIEWER))["viewer"] == {"isRoot": False}


@pytest.mark.parametrize(
    "key_id",
    [
        global_id("ApiKey", UNKNOWN_UUID),
        global_id("ApiKey", "not-a-uuid"),
        global_id("Project", UNKNOWN_UUID),  # another type's id names no key
    ],
)
async def test_revoking_an_unknown_key_is_api_key_not_found(root: Api, key_id: str) -> None:
    result = await root.ok(REVOKE_API_KEY, id=key_id)

    assert result["revokeApiKey"] == {
        "__typename": "NotFound",
        "code": "NOT_FOUND",
        "id": key_id,
    }


async def test_created_api_key_authenticates_and_shows_only_a_prefix(
    app: Starlette, root: Api, project: ProjectHandle
) -> None:
    result = await root.ok(CREATE_API_KEY, projectId=project.id)

    issued = result["createApiKey"]
    assert issued["apiKey"]["name"] == "extra"
    assert issued["apiKey"]["revokedAt"] is None
    assert issued["secret"].startswith(issued["apiKey"]["prefix"])
    assert len(issued["apiKey"]["prefix"]) < len(issued["secret"])
    assert (await Api(app, issued["secret"]).ok(VIEWER))["viewer"] == {"isRoot": False}


# Root and project capabilities


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        pytest.param(LIST_USERS, {}, id="users"),
        pytest.param(GET_USER, {"id": "alice"}, id="user"),
        pytest.param(CREATE_USER, {"id": "alice"}, id="createUser"),
        pytest.param(UPDATE_USER, {"id": "alice", "data": {}}, id="updateUser"),
        pytest.param(DELETE_USER, {"id": "alice"}, id="deleteUser"),
        pytest.param(INSERT_CHAT, {"userId": "alice", "content": "hi"}, id="insertBlob"),
        pytest.param(GET_BLOB, {"id": global_id("Blob", UNKNOWN_UUID)}, id="blob"),
    ],
)
async def test_root_token_cannot_touch_project_data(
    root: Api, document: str, variables: dict[str, Any]
) -> None:
    response = await root.run(document, **variables)

    assert_forbidden(response)


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        pytest.param(CREATE_PROJECT, {"name": "intruder"}, id="createProject"),
        pytest.param(PROJECTS, {}, id="projects"),
        pytest.param(VIEWER_API_KEYS, {}, id="apiKeys"),
    ],
)
async def test_project_key_cannot_manage_projects(
    root: Api, project: ProjectHandle, document: str, variables: dict[str, Any]
) -> None:
    response = await project.api.run(document, **variables)

    assert_forbidden(response)
    projects = await root.ok(PROJECTS)
    assert [p["name"] for p in projects["projects"]["nodes"]] == [project.name]


async def test_project_key_cannot_read_a_project(project: ProjectHandle) -> None:
    response = await project.api.run(PROJECT, id=project.id)

    assert_forbidden(response)


async def test_project_key_cannot_create_api_keys(
    make_project: ProjectFactory, project: ProjectHandle
) -> None:
    other = await make_project("other")

    for target in (project.id, other.id):
        response = await project.api.run(CREATE_API_KEY, projectId=target)
        assert_forbidden(response)


async def test_project_key_cannot_revoke_api_keys(
    app: Starlette, root: Api, make_project: ProjectFactory, project: ProjectHandle
) -> None:
    other = await make_project("other")
    key_id, secret = await issue_key(root, other)

    response = await project.api.run(REVOKE_API_KEY, id=key_id)

    assert_forbidden(response)
    assert (await Api(app, secret).ok(VIEWER))["viewer"] == {"isRoot": False}


# Projects and keys


async def test_root_lists_every_project(root: Api, make_project: ProjectFactory) -> None:
    a = await make_project("project-a")
    b = await make_project("project-b")

    result = await root.ok(PROJECTS)

    assert result["projects"]["nodes"] == [
        {"id": a.id, "name": "project-a"},
        {"id": b.id, "name": "project-b"},
    ]


async def test_duplicate_project_name_is_project_already_exists(
    root: Api, project: ProjectHandle
) -> None:
    result = await root.ok(CREATE_PROJECT, name=project.name)

    duplicate = result["createProject"]
    assert duplicate["__typename"] == "ProjectAlreadyExists"
    assert duplicate["code"] == "ALREADY_EXISTS"
    assert duplicate["id"] == project.name
    assert len((await root.ok(PROJECTS))["projects"]["nodes"]) == 1


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("n" * 101, id="101"),
    ],
)
async def test_invalid_project_name_is_invalid_input(root: Api, name: str) -> None:
    result = await root.ok(CREATE_PROJECT, name=name)

    invalid = result["createProject"]
    assert invalid["__typename"] == "InvalidInput"
    assert invalid["code"] == "INVALID_INPUT"
    assert invalid["field"] == "name"
    assert (await root.ok(PROJECTS))["projects"]["nodes"] == []


@pytest.mark.parametrize(
    "project_id", [global_id("Project", UNKNOWN_UUID), global_id("Project", "not-a-uuid")]
)
async def test_api_key_for_unknown_project_is_project_not_found(root: Api, project_id: str) -> None:
    result = await root.ok(CREATE_API_KEY, projectId=project_id)

    assert result["createApiKey"] == {
        "__typename": "NotFound",
        "code": "NOT_FOUND",
        "id": project_id,
    }


@pytest.mark.parametrize("bad_id", [UNKNOWN_UUID, "not-a-uuid", ""])
async def test_ids_that_are_not_global_ids_are_refused_naming_the_field(
    root: Api, bad_id: str
) -> None:
    created = await root.ok(CREATE_API_KEY, projectId=bad_id)
    assert created["createApiKey"] == {
        "__typename": "InvalidInput",
        "code": "INVALID_INPUT",
        "field": "input.projectId",
    }
    revoked = await root.run(REVOKE_API_KEY, id=bad_id)
    assert revoked.error_codes() == ["BAD_USER_INPUT"]
    assert revoked.errors[0]["extensions"]["field"] == "input.id"


# Isolation between projects


@pytest.fixture
async def tenants(make_project: ProjectFactory) -> tuple[ProjectHandle, ProjectHandle]:
    """Projects A and B; A has a user "alice" with one chat blob."""
    a = await make_project("project-a")
    b = await make_project("project-b")
    created = await a.api.ok(CREATE_USER, id="alice", data={"owner": "a"})
    assert created["createUser"]["__typename"] == "CreateUserPayload"
    return a, b


async def blob_of_alice(a: ProjectHandle) -> str:
    result = await a.api.ok(INSERT_CHAT, userId="alice", content="secret of A")
    blob_id: str = result["insertBlob"]["blob"]["id"]
    return blob_id


async def alice_of(a: ProjectHandle) -> dict[str, Any]:
    user: dict[str, Any] | None = (await a.api.ok(GET_USER, id="alice"))["user"]
    assert user is not None
    return user


async def test_same_user_id_lives_independently_in_two_projects(
    tenants: tuple[ProjectHandle, ProjectHandle],
) -> None:
    a, b = tenants

    created = await b.api.ok(CREATE_USER, id="alice", data={"owner": "b"})
    await b.api.ok(UPDATE_USER, id="alice", data={"owner": "b", "v": 2})

    assert created["createUser"]["__typename"] == "CreateUserPayload"
    assert (await alice_of(a))["data"] == {"owner": "a"}
    assert (await alice_of(b))["data"] == {"owner": "b", "v": 2}
    await b.api.ok(DELETE_USER, id="alice")
    assert (await alice_of(a))["data"] == {"owner": "a"}


async def test_other_project_cannot_read_the_user(
    tenants: tuple[ProjectHandle, ProjectHandle],
) -> None:
    _, b = tenants

    assert (await b.api.ok(GET_USER, id="alice"))["user"] is None


async def test_other_project_cannot_list_the_user(
    tenants: tuple[ProjectHandle, ProjectHandle],
) -> None:
    a, b = tenants
    await b.api.ok(CREATE_USER, id="bob")

    listed_by_b = await b.api.ok(LIST_USERS)
    searched_by_b = await b.api.ok(LIST_USERS, search="alice")

    assert listed_by_b["users"]["nodes"] == [{"id": "bob", "data": {}}]
    assert searched_by_b["users"]["nodes"] == []
    assert (await a.api.ok(LIST_USERS))["users"]["nodes"] == [
        {"id": "alice", "data": {"owner": "a"}}
    ]


async def test_other_project_cannot_read_the_blob(
    tenants: tuple[ProjectHandle, ProjectHandle],
) -> None:
    a, b = tenants
    blob_id = await blob_of_alice(a)

    assert (await b.api.ok(GET_BLOB, id=blob_id))["blob"] is None
    assert (await a.api.ok(GET_BLOB, id=blob_id))["blob"] == {
        "id": blob_id,
        "user": {"id": "alice"},
    }


async def test_other_project_cannot_update_the_user(
    tenants: tuple[ProjectHandle, ProjectHandle],
) -> None:
    a, b = tenants
    before = await alice_of(a)

    result = await b.api.ok(UPDATE_USER, id="alice", data={"owner": "b"})

    assert result["updateUser"] == {
        "__typename": "NotFound",
        "code": "NOT_FOUND",
        "id": "alice",
    }
    assert await alice_of(a) == before


async def test_other_project_cannot_delete_the_user(
    tenants: tuple[ProjectHandle, ProjectHandle],
) -> None:
    a, b = tenants
    before = await alice_of(a)

    result = await b.api.ok(DELETE_USER, id="alice")

    assert result["deleteUser"] == {
        "__typename": "NotFound",
        "code": "NOT_FOUND",
        "id": "alice",
    }
    assert await alice_of(a) == before


async def test_other_project_cannot_delete_the_blob(
    tenants: tuple[ProjectHandle, ProjectHandle],
) -> None:
    a, b = tenants
    blob_id = await blob_of_alice(a)

    result = await b.api.ok(DELETE_BLOB, id=blob_id)

    assert result["deleteBlob"] == {
        "__typename": "NotFound",
        "code": "NOT_FOUND",
        "id": blob_id,
    }
    assert (await a.api.ok(GET_BLOB, id=blob_id))["blob"] is not None


async def test_other_project_cannot_insert_a_blob_for_the_user(
    tenants: tuple[ProjectHandle, ProjectHandle],
) -> None:
    a, b = tenants

    result = await b.api.ok(INSERT_CHAT, userId="alice", content="planted by B")

    assert result["insertBlob"] == {
        "__typename": "NotFound",
        "code": "NOT_FOUND",
        "id": "alice",
    }
    blobs = await a.api.ok(USER_BLOBS, id="alice")
    assert blobs["user"]["blobs"]["nodes"] == []
