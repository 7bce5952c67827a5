"""The revocation watch and the connection registry, without sockets: what reaches the
listener, and what the registry refuses."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, cast

from starlette.websockets import WebSocket

from powermemo_gql.core.clock import SystemClock
from powermemo_gql.core.db import create_engine, create_session_factory
from powermemo_gql.core.pubsub import InMemoryPubSub
from powermemo_gql.core.uow import unit_of_work
from powermemo_gql.graphql.websockets import CLOSE_KEY_FULL, CLOSE_REVOKED, ConnectionRegistry
from powermemo_gql.projects.auth import Principal
from powermemo_gql.projects.revocation import Revocation, RevocationWatch, announce
from powermemo_gql.projects.service import ProjectService
from tests.conftest import make_settings


class Listener:
    def __init__(self, open_ids: set[uuid.UUID]) -> None:
        self.open_ids = open_ids
        self.heard: asyncio.Queue[Revocation] = asyncio.Queue()

    def open_key_ids(self) -> set[uuid.UUID]:
        return set(self.open_ids)

    async def revoked(self, revocation: Revocation) -> None:
        await self.heard.put(revocation)


async def test_a_revocation_announced_on_the_broker_reaches_the_listener(
    database_url: str,
) -> None:
    engine = create_engine(make_settings(database_url))
    pubsub = InMemoryPubSub()
    listener = Listener(set())
    watch = RevocationWatch(pubsub, create_session_factory(engine), listener)
    key_id, project_id = uuid.uuid4(), uuid.uuid4()
    watch.start()
    try:
        await asyncio.wait_for(watch.listening.wait(), timeout=10)
        await announce(pubsub, Revocation.of_keys([key_id]))
        await announce(pubsub, Revocation.of_project(project_id))
        heard = [await asyncio.wait_for(listener.heard.get(), timeout=10) for _ in range(2)]
    finally:
        await watch.stop()
        await engine.dispose()
    assert heard == [Revocation.of_keys([key_id]), Revocation.of_project(project_id)]


async def test_keys_revoked_unannounced_are_found_at_the_recheck(database_url: str) -> None:
    """As after `revoke-api-key` from the CLI without Redis: nobody was told."""
    engine = create_engine(make_settings(database_url))
    sessions = create_session_factory(engine)
    async with unit_of_work(sessions) as session:
        service = ProjectService(session)
        now = SystemClock().now()
        project = await service.create_project("recheck", now=now)
        revoked = (await service.create_api_key(str(project.id), "revoked", now=now)).key.id
        kept = (await service.create_api_key(str(project.id), "kept", now=now)).key.id
    async with unit_of_work(sessions) as session:
        await ProjectService(session).revoke_api_key(str(revoked), now=SystemClock().now())
    listener = Listener({revoked, kept})
    watch = RevocationWatch(InMemoryPubSub(), sessions, listener, recheck_seconds=0.05)
    watch.start()
    try:
        heard = await asyncio.wait_for(listener.heard.get(), timeout=10)
    finally:
        await watch.stop()
        await engine.dispose()
    assert heard == Revocation.of_keys([revoked])


def test_unparseable_ids_in_a_message_are_skipped() -> None:
    key_id = uuid.uuid4()
    message: dict[str, Any] = {"apiKeys": [str(key_id), "nope", 7], "projects": "nope"}
    assert Revocation.from_message(message) == Revocation.of_keys([key_id])


def _socket() -> WebSocket:
    return cast(WebSocket, object())  # the registry only tells sockets apart


def _principal(key_id: uuid.UUID, project_id: uuid.UUID | None = None) -> Principal:
    return Principal(is_root=False, project_id=project_id or uuid.uuid4(), api_key_id=key_id)


async def test_a_key_revoked_before_its_socket_registers_is_refused() -> None:
    """Authenticated just before the revocation committed, registered just after it."""
    registry = ConnectionRegistry(max_connections=10, max_per_key=10)
    key_id, project_id = uuid.uuid4(), uuid.uuid4()
    await registry.revoked(Revocation.of_keys([key_id]))
    await registry.revoked(Revocation.of_project(project_id))

    assert registry.authenticated(_socket(), _principal(key_id)) == CLOSE_REVOKED
    assert registry.authenticated(_socket(), _principal(uuid.uuid4(), project_id)) == CLOSE_REVOKED
    assert registry.authenticated(_socket(), _principal(uuid.uuid4())) is None


def test_per_key_places_are_freed_when_a_socket_closes() -> None:
    registry = ConnectionRegistry(max_connections=10, max_per_key=1)
    key_id = uuid.uuid4()
    first, second = _socket(), _socket()
    assert registry.authenticated(first, _principal(key_id)) is None
    assert registry.authenticated(second, _principal(key_id)) == CLOSE_KEY_FULL
    registry.closed(first)
    assert registry.authenticated(second, _principal(key_id)) is None
    assert registry.open_key_ids() == {key_id}
