"""The Python client (powermemo_gql.client) against a real server on loopback."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from gql import Client

from powermemo_gql.client import (
    AlreadyExistsError,
    AsyncPowermemo,
    AuthenticationError,
    ChangeKind,
    ConnectionFailedError,
    FlushOutcome,
    FlushStatus,
    ForbiddenError,
    InvalidInputError,
    LLMUnavailableError,
    NotFoundError,
    Powermemo,
    PowermemoError,
    ProfileChange,
    ProfileDeltaAction,
    ProfileDeltaItem,
    ProfileSource,
    ProfileUpdates,
    RateLimitedError,
    Retry,
    RevisionAction,
)
from powermemo_gql.client.operations import DOCUMENTS
from powermemo_gql.client.schema import bundled_sdl
from tests.conftest import make_settings
from tests.integration.client.conftest import server_at
from tests.integration.memory.conftest import memory_responder
from tests.live import LiveServer, free_port, live_server
from tests.llm_server import ScriptedLLM
from tests.support import ROOT_TOKEN, SCHEMA_SDL, ProjectHandle, raw_uuid

CREATE_PROJECT = """
mutation($name: String!) {
  createProject(input: {name: $name}) { ... on CreateProjectPayload { project { id } } }
}
"""
CREATE_KEY = """
mutation($projectId: ID!) {
  createApiKey(input: {projectId: $projectId}) { ... on CreateApiKeyPayload { secret } } }
"""
MISSING_ENTRY = base64.b64encode(b"ProfileEntry:00000000-0000-0000-0000-000000000000").decode()
FAST_RETRY = Retry(attempts=3, backoff=0.05, max_backoff=0.2)


def new_project_key(url: str, name: str = "client") -> str:
    """A project and its API key, made with the root token through the sync client."""
    with Powermemo(url, ROOT_TOKEN) as root:
        project = root.execute(CREATE_PROJECT, {"name": name})["createProject"]["project"]
        issued = root.execute(CREATE_KEY, {"projectId": project["id"]})
    secret: str = issued["createApiKey"]["secret"]
    return secret


@pytest.fixture
def sync_client(live: LiveServer) -> Iterator[Powermemo]:
    with Powermemo(live.http_url, new_project_key(live.http_url)) as client:
        yield client


async def next_change(updates: ProfileUpdates) -> ProfileChange:
    return await asyncio.wait_for(anext(updates), timeout=15)


def test_documents_are_valid_against_the_committed_schema() -> None:
    assert bundled_sdl() == SCHEMA_SDL
    validator = Client(schema=SCHEMA_SDL)
    for document in DOCUMENTS:
        validator.validate(document)


# Users


async def test_users_crud(live: LiveServer, tenant: ProjectHandle) -> None:
    async with AsyncPowermemo(live.http_url, tenant.api_key) as client:
        bob = await client.create_user("bob", {"plan": "pro"})
        assert (bob.id, bob.data) == ("bob", {"plan": "pro"})
        assert raw_uuid(bob.node_id)  # the global id, for node(id:)
        found = await client.execute(
            "query($id: ID!) { node(id: $id) { ... on User { userId } } }", {"id": bob.node_id}
        )
        assert found == {"node": {"userId": "bob"}}
        assert await client.get_user("bob") == bob
        updated = await client.update_user("bob", {"plan": "team"})
        assert updated.data == {"plan": "team"}
        assert updated.updated_at >= bob.updated_at
        await client.delete_user("bob")
        assert await client.get_user("bob") is None
        generated = await client.create_user()
        assert generated.id
        assert generated.data == {}


def test_users_crud_sync(sync_client: Powermemo) -> None:
    bob = sync_client.create_user("bob", {"plan": "pro"})
    assert sync_client.get_user("bob") == bob
    assert sync_client.update_user("bob", {"plan": "team"}).data == {"plan": "team"}
    sync_client.delete_user("bob")
    assert sync_client.get_user("bob") is None


def test_the_endpoint_url_may_be_given_whole(live: LiveServer) -> None:
    key = new_project_key(live.http_url)
    with Powermemo(f"{live.http_url}/graphql/", key) as client:
        assert client.create_user("carol").id == "carol"


# Memory


async def test_chat_flush_profile_and_context(
    live: LiveServer, tenant: ProjectHandle, llm: ScriptedLLM
) -> None:
    llm.responder = memory_responder()
    async with AsyncPowermemo(live.http_url, tenant.api_key) as client:
        blob = await client.insert_chat(
            "alice",
            [
                ("user", "Hi, I'm Alice and I teach chemistry in Lyon."),
                {"role": "assistant", "content": "Nice to meet you!", "alias": "Bot"},
                {
                    "role": "user",
                    "content": "Bye",
                    "created_at": datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
                },
            ],
            fields={"channel": "web"},
        )
        assert blob.type == "CHAT"
        flush = await client.flush("alice", wait=True)
        assert flush is not None
        assert flush.status is FlushStatus.DONE
        assert flush.item_count == 1
        assert flush.llm_calls > 0
        assert flush.event_id is not None
        assert await client.flush("alice") is None  # nothing idle is left
        again = await client.flush_buffer("alice")
        assert (again.outcome, again.flush) == (FlushOutcome.NOTHING_TO_FLUSH, None)
        scheduled = await client.flush_buffer("alice", wait=False)
        assert scheduled.outcome is FlushOutcome.SCHEDULED

        profile = await client.profile("alice")
        assert {(e.topic, e.sub_topic, e.content) for e in profile} == {
            ("work", "title", "chemistry teacher"),
            ("contact_info", "city", "Lyon"),
        }
        assert {e.source for e in profile} == {ProfileSource.LLM}
        assert all(blob.id in e.source_blob_ids for e in profile)
        # "Bye" was said on 2024-05-01, the other two messages when the blob was inserted.
        [event] = await client.events("alice", first=5)
        assert event.id == flush.event_id
        assert set(event.profile_delta) == {
            ProfileDeltaItem(ProfileDeltaAction.ADD, e.topic, e.sub_topic, e.content, None)
            for e in profile
        }
        assert event.happened_from == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
        assert event.happened_to == blob.created_at
        assert {e.last_mentioned_at for e in profile} == {event.happened_to}
        assert await client.events("alice", search="nothing-like-this") == []
        assert [e.topic for e in await client.profile("alice", topics=["work"])] == ["work"]
        assert len(await client.profile("alice", topk=1)) == 1

        context = await client.context("alice", max_tokens=200)
        assert 0 < context.tokens <= 200
        assert "<memory>" in context.text
        assert "Lyon" in context.text
        assert context.profile_entries == 2
        small = await client.context("alice", max_tokens=25, only_topics=["work"])
        assert small.tokens <= 25


async def test_inserts_with_an_idempotency_key_store_once(
    live: LiveServer, tenant: ProjectHandle
) -> None:
    async with AsyncPowermemo(live.http_url, tenant.api_key) as client:
        chat = await client.insert_chat("alice", [("user", "Hi")], idempotency_key="c-1")
        retried = await client.insert_chat("alice", [("user", "Hi")], idempotency_key="c-1")
        document = await client.insert_document("alice", "notes", idempotency_key="d-1")
        again = await client.insert_document("alice", "notes", idempotency_key="d-1")
        plain = await client.insert_document("alice", "notes")

    assert retried.id == chat.id
    assert again.id == document.id
    assert len({chat.id, document.id, plain.id}) == 3
    blobs = await tenant.api.ok('{ user(userId: "alice") { blobs { nodes { id } } } }')
    assert len(blobs["user"]["blobs"]["nodes"]) == 3


def test_sync_inserts_with_an_idempotency_key_store_once(sync_client: Powermemo) -> None:
    sync_client.create_user("erin")
    chat = sync_client.insert_chat("erin", [("user", "Hi")], idempotency_key="c-1")
    retried = sync_client.insert_chat("erin", [("user", "Hi")], idempotency_key="c-1")
    document = sync_client.insert_document("erin", "notes", idempotency_key="d-1")
    again = sync_client.insert_document("erin", "notes", idempotency_key="d-1")

    assert retried.id == chat.id
    assert again.id == document.id
    assert chat.id != document.id


def test_document_flush_and_profile_sync(sync_client: Powermemo, llm: ScriptedLLM) -> None:
    llm.responder = memory_responder()
    sync_client.create_user("dana")
    blob = sync_client.insert_document("dana", "Dana teaches chemistry in Lyon.", title="bio")
    assert blob.type == "DOCUMENT"
    flush = sync_client.flush("dana")
    assert flush is not None
    assert flush.status is FlushStatus.DONE
    assert flush.dropped_items == 0
    assert (flush.embedding_texts, flush.embedding_tokens) == (0, 0)  # embeddings are off
    assert len(sync_client.profile("dana")) == 2
    [event] = sync_client.events("dana")
    assert event.happened_from == event.happened_to == blob.created_at
    context = sync_client.context("dana", max_tokens=100)
    assert 0 < context.tokens <= 100


async def test_manual_entries_and_the_change_feed(live: LiveServer, tenant: ProjectHandle) -> None:
    async with AsyncPowermemo(live.http_url, tenant.api_key) as client:
        start = await client.changes_cursor("alice")
        entry = await client.add_profile_entry("alice", "work", "title", "teacher")
        assert entry.source == ProfileSource.MANUAL
        updated = await client.update_profile_entry(entry.id, "chemistry teacher")
        assert [r.content for r in updated.history] == ["teacher"]
        assert [(r.action, r.source) for r in updated.history] == [
            (RevisionAction.UPDATE, ProfileSource.MANUAL)
        ]
        await client.delete_profile_entry(entry.id)
        changes = await client.changes("alice", after=start)
        assert [c.kind for c in changes] == [
            ChangeKind.ENTRY_ADDED,
            ChangeKind.ENTRY_UPDATED,
            ChangeKind.ENTRY_DELETED,
        ]
        assert {c.source for c in changes} == {ProfileSource.MANUAL}
        assert await client.changes("alice", after=changes[-1].cursor) == []
        assert await client.changes("alice", first=1) == changes[:1]


# Errors


async def test_not_found_for_an_unknown_user(live: LiveServer, tenant: ProjectHandle) -> None:
    async with AsyncPowermemo(live.http_url, tenant.api_key) as client:
        with pytest.raises(NotFoundError) as deleted:
            await client.delete_user("nobody")
        with pytest.raises(NotFoundError) as inserted:
            await client.insert_chat("nobody", [("user", "hi")])
        with pytest.raises(NotFoundError) as read:
            await client.profile("nobody")
        with pytest.raises(NotFoundError):
            await client.flush("nobody")
        with pytest.raises(NotFoundError):
            await client.update_profile_entry(MISSING_ENTRY, "x")
    assert (deleted.value.code, deleted.value.typename) == ("NOT_FOUND", "NotFound")
    assert "nobody" in deleted.value.message
    assert inserted.value.typename == "NotFound"
    assert read.value.code == "NOT_FOUND"


async def test_already_exists_for_a_duplicate(live: LiveServer, tenant: ProjectHandle) -> None:
    async with AsyncPowermemo(live.http_url, tenant.api_key) as client:
        with pytest.raises(AlreadyExistsError) as user:
            await client.create_user("alice")
        await client.add_profile_entry("alice", "work", "title", "teacher")
        with pytest.raises(AlreadyExistsError) as entry:
            await client.add_profile_entry("alice", "work", "title", "chemist")
    assert (user.value.code, user.value.typename) == ("ALREADY_EXISTS", "UserAlreadyExists")
    assert entry.value.typename == "ProfileEntryAlreadyExists"


async def test_invalid_input_names_the_field(live: LiveServer, tenant: ProjectHandle) -> None:
    async with AsyncPowermemo(live.http_url, tenant.api_key) as client:
        with pytest.raises(InvalidInputError) as bad_id:
            await client.create_user("not an id!")
        with pytest.raises(InvalidInputError) as empty:
            await client.insert_chat("alice", [("user", "")])
        with pytest.raises(InvalidInputError) as bad_cursor:  # a top-level BAD_USER_INPUT
            await client.changes("alice", after="not-a-cursor")
        with pytest.raises(InvalidInputError) as bad_role:  # caught before sending
            await client.insert_chat("alice", [("robot", "beep")])
    assert (bad_id.value.code, bad_id.value.field) == ("INVALID_INPUT", "id")
    assert empty.value.field == "blob.chat.messages[0].content"
    assert (bad_cursor.value.code, bad_cursor.value.field) == ("BAD_USER_INPUT", "after")
    assert bad_role.value.field == "blob.chat.messages[0].role"


def test_invalid_input_sync(sync_client: Powermemo) -> None:
    with pytest.raises(InvalidInputError) as bad_id:
        sync_client.create_user("not an id!")
    assert bad_id.value.field == "id"


async def test_llm_unavailable(live: LiveServer, tenant: ProjectHandle, llm: ScriptedLLM) -> None:
    llm.responder = None  # every LLM call fails (HTTP 500), and the server does not retry
    async with AsyncPowermemo(live.http_url, tenant.api_key) as client:
        with pytest.raises(LLMUnavailableError) as failed:
            await client.import_profile("alice", "Alice teaches chemistry.")
    assert failed.value.code == "LLM_UNAVAILABLE"


async def test_import_profile(live: LiveServer, tenant: ProjectHandle, llm: ScriptedLLM) -> None:
    llm.responder = memory_responder()
    async with AsyncPowermemo(live.http_url, tenant.api_key) as client:
        entries = await client.import_profile("alice", "Alice teaches chemistry in Lyon.")
    assert {e.source for e in entries} == {ProfileSource.IMPORT}
    assert len(entries) == 2


async def test_authentication_error_for_a_wrong_key(live: LiveServer) -> None:
    async with AsyncPowermemo(live.http_url, "pm_wrong") as client:
        with pytest.raises(AuthenticationError) as refused:
            await client.get_user("alice")
    assert (refused.value.code, refused.value.status) == ("UNAUTHENTICATED", 401)


def test_authentication_error_sync(live: LiveServer) -> None:
    with Powermemo(live.http_url, "pm_wrong") as client, pytest.raises(AuthenticationError):
        client.get_user("alice")


async def test_forbidden_for_the_root_token_on_project_data(live: LiveServer) -> None:
    async with AsyncPowermemo(live.http_url, ROOT_TOKEN) as client:
        with pytest.raises(ForbiddenError) as forbidden:
            await client.create_user("alice")
    assert forbidden.value.code == "FORBIDDEN"


@pytest.mark.usefixtures("fresh_rate_window")
async def test_rate_limited_with_retry_after(database_url: str) -> None:
    with live_server(make_settings(database_url, rate_limit_per_minute=2)) as server:
        key = new_project_key(server.http_url)  # the root token is not limited
        async with AsyncPowermemo(server.http_url, key) as client:
            await client.create_user("alice")
            await client.get_user("alice")
            with pytest.raises(RateLimitedError) as limited:
                await client.get_user("alice")
    assert (limited.value.code, limited.value.status) == ("RATE_LIMITED", 429)
    assert limited.value.retry_after is not None
    assert 0 < limited.value.retry_after <= 60


@pytest.mark.usefixtures("fresh_rate_window")
def test_rate_limited_sync(database_url: str) -> None:
    with live_server(make_settings(database_url, rate_limit_per_minute=1)) as server:
        key = new_project_key(server.http_url)
        with Powermemo(server.http_url, key) as client:
            client.create_user("alice")
            with pytest.raises(RateLimitedError) as limited:
                client.get_user("alice")
    assert limited.value.retry_after is not None


async def test_documents_are_validated_before_sending(
    live: LiveServer, tenant: ProjectHandle
) -> None:
    async with AsyncPowermemo(live.http_url, tenant.api_key) as client:
        with pytest.raises(PowermemoError) as invalid:
            await client.execute("{ user(userId: 1) { nope } }")
        with pytest.raises(PowermemoError) as unparsable:
            await client.execute("{ user(")
        data = await client.execute('{ user(userId: "alice") { userId } }')
    assert invalid.value.code == "GRAPHQL_VALIDATION_FAILED"
    assert "nope" in invalid.value.message
    assert unparsable.value.code == "GRAPHQL_PARSE_FAILED"
    assert data == {"user": {"userId": "alice"}}


async def test_an_unreachable_server() -> None:
    async with AsyncPowermemo(f"http://127.0.0.1:{free_port()}", "pm_x") as client:
        with pytest.raises(ConnectionFailedError) as failed:
            await client.get_user("alice")
    assert failed.value.code == "CONNECTION_FAILED"


# Subscriptions


async def test_profile_updates_yield_changes_made_after_subscribing(
    live: LiveServer, tenant: ProjectHandle
) -> None:
    async with (
        AsyncPowermemo(live.http_url, tenant.api_key) as client,
        client.profile_updates("alice") as updates,
    ):
        entry = await client.add_profile_entry("alice", "work", "title", "teacher")
        added = await next_change(updates)
        await client.update_profile_entry(entry.id, "chemistry teacher")
        updated = await next_change(updates)
    assert (added.kind, added.entry_id, added.new_value) == (
        ChangeKind.ENTRY_ADDED,
        entry.id,
        "teacher",
    )
    assert (updated.old_value, updated.new_value) == ("teacher", "chemistry teacher")
    assert updates.cursor == updated.cursor


async def test_profile_updates_from_a_flush_with_kinds(
    live: LiveServer, tenant: ProjectHandle, llm: ScriptedLLM
) -> None:
    llm.responder = memory_responder()
    async with (
        AsyncPowermemo(live.http_url, tenant.api_key) as client,
        client.profile_updates("alice", kinds=[ChangeKind.BUFFER_FLUSHED]) as updates,
    ):
        await client.insert_chat("alice", [("user", "I teach chemistry in Lyon.")])
        flush = await client.flush("alice")
        flushed = await next_change(updates)
    assert flush is not None
    assert (flushed.kind, flushed.flush_id) == (ChangeKind.BUFFER_FLUSHED, flush.id)


async def test_since_replays_missed_changes(live: LiveServer, tenant: ProjectHandle) -> None:
    async with AsyncPowermemo(live.http_url, tenant.api_key) as client:
        since = await client.changes_cursor("alice")
        await client.add_profile_entry("alice", "work", "title", "teacher")
        await client.add_profile_entry("alice", "work", "city", "Lyon")
        async with client.profile_updates("alice", since=since) as updates:
            missed = [await next_change(updates), await next_change(updates)]
            await client.add_profile_entry("alice", "work", "school", "Lycée du Parc")
            live_one = await next_change(updates)
    assert [c.new_value for c in missed] == ["teacher", "Lyon"]
    assert live_one.new_value == "Lycée du Parc"


async def test_async_for_and_leaving_early(live: LiveServer, tenant: ProjectHandle) -> None:
    async with AsyncPowermemo(live.http_url, tenant.api_key) as client:
        since = await client.changes_cursor("alice")
        await client.add_profile_entry("alice", "work", "title", "teacher")
        await client.add_profile_entry("alice", "work", "city", "Lyon")
        received = []
        async with client.profile_updates("alice", since=since) as updates:
            async for change in updates:
                received.append(change)
                if change.new_value == "Lyon":
                    break  # leaving the `async with` closes the socket
    assert [c.new_value for c in received] == ["teacher", "Lyon"]


async def test_profile_updates_resume_after_a_server_restart(database_url: str) -> None:
    settings = make_settings(database_url)
    port = free_port()
    received: asyncio.Queue[ProfileChange] = asyncio.Queue()
    retry = Retry(attempts=8, backoff=0.05, max_backoff=0.3)  # about 2 s in all
    with server_at(settings, port) as server:
        key = new_project_key(server.http_url)
        client = AsyncPowermemo(server.http_url, key, retry=retry)
        await client.create_user("alice")
        updates = client.profile_updates("alice")
        await updates.start()

        async def consume() -> None:
            async for change in updates:
                await received.put(change)

        consumer = asyncio.create_task(consume())
        await client.add_profile_entry("alice", "work", "title", "teacher")
        first = await asyncio.wait_for(received.get(), timeout=15)
        await client.aclose()
    # The server is gone (its sockets closed with 1012); the subscription keeps retrying.
    await asyncio.sleep(0.3)
    assert not consumer.done()
    with server_at(settings, port):
        async with AsyncPowermemo(server.http_url, key) as client:
            await client.add_profile_entry("alice", "work", "city", "Lyon")
            second = await asyncio.wait_for(received.get(), timeout=15)
            await client.add_profile_entry("alice", "work", "school", "Lycée du Parc")
            third = await asyncio.wait_for(received.get(), timeout=15)
    # Gone for good: after its bounded retries, the subscription gives up.
    with pytest.raises(ConnectionFailedError):
        await asyncio.wait_for(consumer, timeout=30)
    assert [c.new_value for c in (first, second, third)] == ["teacher", "Lyon", "Lycée du Parc"]
    assert received.empty()  # nothing was delivered twice


async def test_subscription_errors_are_typed(live: LiveServer, tenant: ProjectHandle) -> None:
    async with AsyncPowermemo(live.http_url, tenant.api_key, retry=FAST_RETRY) as client:
        with pytest.raises(NotFoundError):
            async with client.profile_updates("nobody"):
                pass
        cursor = await client.changes_cursor("alice")
        with pytest.raises(NotFoundError):  # refused over the websocket this time
            await next_change(client.profile_updates("nobody", since=cursor))
        with pytest.raises(InvalidInputError) as bad_since:
            await next_change(client.profile_updates("alice", since="not-a-cursor"))
    async with AsyncPowermemo(live.http_url, "pm_wrong", retry=FAST_RETRY) as wrong:
        with pytest.raises(AuthenticationError):  # closed with 4403 after connection_init
            await next_change(wrong.profile_updates("alice", since=cursor))
    assert bad_since.value.field == "since"


async def test_search_and_context_for_the_turn(
    live: LiveServer, tenant: ProjectHandle, llm: ScriptedLLM
) -> None:
    llm.responder = memory_responder()
    async with AsyncPowermemo(live.http_url, tenant.api_key) as client:
        await client.insert_chat("alice", [("user", "I teach chemistry in Lyon.")])
        await client.flush("alice")
        found = await client.search("alice", "chemistry teacher", kinds=["profile"])
        # No embedder on this server: keyword search, and it says so.
        assert (found.mode, found.fallback) == ("KEYWORD", "NO_EMBEDDER")
        assert found.hits[0].text == "chemistry teacher"
        assert found.hits[0].entry is not None
        assert (found.hits[0].entry.topic, found.hits[0].kind) == ("work", "PROFILE")
        with pytest.raises(InvalidInputError) as caught:
            await client.search("alice", "   ")
        assert caught.value.field == "query"
        turn = await client.context(
            "alice", max_tokens=200, query="Lyon", chats=[("user", "Where do I live?")]
        )
        assert "Lyon" in turn.text
        assert turn.tokens <= 200


def test_search_sync(sync_client: Powermemo, llm: ScriptedLLM) -> None:
    llm.responder = memory_responder()
    sync_client.create_user("erin")
    sync_client.insert_document("erin", "Erin teaches chemistry in Lyon.")
    sync_client.flush("erin")
    found = sync_client.search("erin", "Lyon", mode="keyword")
    assert [h.text for h in found.hits if h.kind == "PROFILE"] == ["Lyon"]
