"""Schema conventions: every mutation takes one `input:`, and a missing object is reported one
way: the single `NotFound` type from a mutation, null from a query."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLObjectType, build_schema
from starlette.applications import Starlette

from powermemo_gql.core.global_ids import global_id
from tests.conftest import ProjectFactory
from tests.integration.recall.conftest import Memory
from tests.support import SCHEMA_SDL, Api, ProjectHandle

UNKNOWN_UUID = "00000000-0000-4000-8000-000000000000"
# Well-formed global ids of objects that do not exist.
UNKNOWN_PROJECT = global_id("Project", UNKNOWN_UUID)
UNKNOWN_KEY = global_id("ApiKey", UNKNOWN_UUID)
NOT_FOUND = "... on NotFound { code message id }"


def _document(mutation: str, input_type: str) -> str:
    return (
        f"mutation($input: {input_type}!) {{ {mutation}(input: $input) "
        f"{{ __typename {NOT_FOUND} }} }}"
    )


def test_every_mutation_takes_exactly_one_input_argument() -> None:
    schema = build_schema(SCHEMA_SDL)
    assert schema.mutation_type is not None
    for name, field in schema.mutation_type.fields.items():
        assert list(field.args) == ["input"], name
        assert str(field.args["input"].type) == f"{name[0].upper()}{name[1:]}Input!" or (
            name == "setProfileConfig"
        ), name


def test_one_not_found_type_is_left() -> None:
    schema = build_schema(SCHEMA_SDL)
    not_found = [name for name in schema.type_map if name.endswith("NotFound")]
    assert not_found == ["NotFound"]
    not_found_type = schema.type_map["NotFound"]
    assert isinstance(not_found_type, GraphQLObjectType)
    assert [i.name for i in not_found_type.interfaces] == ["Error"]


async def _others_objects(app: Starlette, other: ProjectHandle) -> dict[str, str]:
    """A blob, an entry and an event of another project: well-formed ids the caller cannot see."""
    memory = await Memory(app, other.api, "carol").create()
    entry_id = await memory.entry("work", "title", "Engineer")
    event_id = await memory.event("- Went hiking")
    inserted = await other.api.ok(
        'mutation { insertBlob(input: {userId: "carol", blob: {document: {content: "x"}}}) '
        "{ ... on InsertBlobPayload { blob { id } } } }"
    )
    return {
        "blob": inserted["insertBlob"]["blob"]["id"],
        "entry": entry_id,
        "event": global_id("Event", event_id),
    }


async def test_each_mutation_reports_a_missing_object_as_not_found(
    app: Starlette, project: ProjectHandle, make_project: ProjectFactory, root: Api
) -> None:
    ids = await _others_objects(app, await make_project("other"))
    cases: list[tuple[Api, str, str, dict[str, Any], str]] = [
        (project.api, "updateUser", "UpdateUserInput", {"userId": "ghost", "data": {}}, "ghost"),
        (project.api, "deleteUser", "DeleteUserInput", {"userId": "ghost"}, "ghost"),
        (
            project.api,
            "insertBlob",
            "InsertBlobInput",
            {"userId": "ghost", "blob": {"document": {"content": "x"}}},
            "ghost",
        ),
        (project.api, "deleteBlob", "DeleteBlobInput", {"id": ids["blob"]}, ids["blob"]),
        (project.api, "flushBuffer", "FlushBufferInput", {"userId": "ghost"}, "ghost"),
        (
            project.api,
            "retryFailedBuffer",
            "RetryFailedBufferInput",
            {"userId": "ghost", "wait": True},
            "ghost",
        ),
        (
            project.api,
            "addProfileEntry",
            "AddProfileEntryInput",
            {"userId": "ghost", "topic": "t", "subTopic": "s", "content": "c"},
            "ghost",
        ),
        (
            project.api,
            "importProfile",
            "ImportProfileInput",
            {"userId": "ghost", "text": "I live in Lyon."},
            "ghost",
        ),
        (
            project.api,
            "updateProfileEntry",
            "UpdateProfileEntryInput",
            {"id": ids["entry"], "content": "x"},
            ids["entry"],
        ),
        (
            project.api,
            "deleteProfileEntry",
            "DeleteProfileEntryInput",
            {"id": ids["entry"]},
            ids["entry"],
        ),
        (
            project.api,
            "updateEvent",
            "UpdateEventInput",
            {"id": ids["event"], "summary": "x"},
            ids["event"],
        ),
        (project.api, "deleteEvent", "DeleteEventInput", {"id": ids["event"]}, ids["event"]),
        (
            root,
            "createApiKey",
            "CreateApiKeyInput",
            {"projectId": UNKNOWN_PROJECT},
            UNKNOWN_PROJECT,
        ),
        (root, "revokeApiKey", "RevokeApiKeyInput", {"id": UNKNOWN_KEY}, UNKNOWN_KEY),
    ]
    for api, mutation, input_type, variables, given in cases:
        data = await api.ok(_document(mutation, input_type), input=variables)
        result = data[mutation]
        assert result["__typename"] == "NotFound", (mutation, result)
        assert (result["code"], result["id"]) == ("NOT_FOUND", given), mutation
        assert result["message"], mutation


async def test_queries_return_null_for_a_missing_object(
    app: Starlette, project: ProjectHandle, make_project: ProjectFactory, root: Api
) -> None:
    ids = await _others_objects(app, await make_project("other"))

    user = await project.api.ok('query { user(userId: "carol") { id } }')
    blob = await project.api.ok("query($id: ID!) { blob(id: $id) { id } }", id=ids["blob"])
    other_project = await root.ok("query($id: ID!) { project(id: $id) { id } }", id=UNKNOWN_PROJECT)

    assert user == {"user": None}
    assert blob == {"blob": None}
    assert other_project == {"project": None}


async def test_mutations_with_an_input_do_their_work(project: ProjectHandle, root: Api) -> None:
    """The six mutations that took bare arguments before, through their input."""
    await project.api.ok('mutation { createUser(input: {userId: "alice"}) { __typename } }')
    blob = await project.api.ok(
        _document("insertBlob", "InsertBlobInput").replace(
            "__typename", "__typename ... on InsertBlobPayload { blob { id } }"
        ),
        input={"userId": "alice", "blob": {"document": {"content": "I moved to Lyon."}}},
    )
    blob_id = blob["insertBlob"]["blob"]["id"]
    entry = await project.api.ok(
        _document("addProfileEntry", "AddProfileEntryInput").replace(
            "__typename", "__typename ... on AddProfileEntryPayload { entry { id } }"
        ),
        input={"userId": "alice", "topic": "t", "subTopic": "s", "content": "c"},
    )
    entry_id = entry["addProfileEntry"]["entry"]["id"]

    async def run(mutation: str, fields: str, variables: dict[str, Any]) -> Any:
        document = (
            f"mutation($input: {mutation[0].upper()}{mutation[1:]}Input!) "
            f"{{ {mutation}(input: $input) {{ __typename {fields} }} }}"
        )
        return (await project.api.ok(document, input=variables))[mutation]

    flushed = await run("flushBuffer", "... on FlushBufferPayload { outcome }", {"userId": "alice"})
    retried = await run(
        "retryFailedBuffer",
        "... on RetryFailedBufferPayload { retriedItems outcome }",
        {"userId": "alice", "wait": True},
    )
    deleted_entry = await run(
        "deleteProfileEntry",
        "... on DeleteProfileEntryPayload { deletedEntryId }",
        {"id": entry_id},
    )
    deleted_blob = await run(
        "deleteBlob", "... on DeleteBlobPayload { deletedBlobId }", {"id": blob_id}
    )
    deleted_user = await run(
        "deleteUser", "... on DeleteUserPayload { deletedUserId }", {"userId": "alice"}
    )

    assert flushed == {"__typename": "FlushBufferPayload", "outcome": "SCHEDULED"}
    assert retried["retriedItems"] == 0
    assert deleted_entry["deletedEntryId"] == entry_id
    assert deleted_blob["deletedBlobId"] == blob_id
    assert deleted_user["deletedUserId"] == "alice"

    key = await root.ok(
        "query { viewer { isRoot } projects(first: 1) { nodes { apiKeys { id revokedAt } } } }"
    )
    key_id = key["projects"]["nodes"][0]["apiKeys"][0]["id"]
    revoked = await root.ok(
        _document("revokeApiKey", "RevokeApiKeyInput").replace(
            "__typename", "__typename ... on RevokeApiKeyPayload { apiKey { id revokedAt } }"
        ),
        input={"id": key_id},
    )
    assert revoked["revokeApiKey"]["apiKey"]["id"] == key_id
    assert revoked["revokeApiKey"]["apiKey"]["revokedAt"] is not None
