"""API keys that worked are remembered for a while; revocations drop them everywhere."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession

from powermemo_gql.core.clock import SystemClock
from powermemo_gql.core.db import SessionFactory, create_engine, create_session_factory
from powermemo_gql.core.pubsub import InMemoryPubSub
from powermemo_gql.core.ratelimit import create_failure_throttle
from powermemo_gql.core.uow import unit_of_work
from powermemo_gql.projects.auth import Principal
from powermemo_gql.projects.authenticator import Authenticator
from powermemo_gql.projects.key_cache import KeyCache
from powermemo_gql.projects.revocation import Revocation, RevocationWatch, announce
from powermemo_gql.projects.service import ProjectService
from tests.conftest import make_settings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class NoSockets:
    def open_key_ids(self) -> set[uuid.UUID]:
        return set()

    async def revoked(self, revocation: Revocation) -> None:
        return None


class CountingSessions:
    """A session factory that counts the sessions (database lookups) it hands out."""

    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions
        self.opened = 0

    def __call__(self) -> AsyncSession:
        self.opened += 1
        return self._sessions()


def principal(project_id: uuid.UUID | None = None) -> Principal:
    return Principal(is_root=False, project_id=project_id or uuid.uuid4(), api_key_id=uuid.uuid4())


def test_an_entry_lives_ttl_seconds() -> None:
    clock = Clock()
    cache = KeyCache(30, now=clock)
    caller = principal()
    cache.put("h", caller)
    clock.now += 29.9
    assert cache.get("h") == caller
    clock.now += 0.1
    assert cache.get("h") is None
    assert len(cache) == 0


def test_revocations_drop_the_key_or_every_key_of_the_project() -> None:
    cache = KeyCache(30)
    project = uuid.uuid4()
    first, second, other = principal(project), principal(project), principal()
    for name, caller in (("a", first), ("b", second), ("c", other)):
        cache.put(name, caller)
    assert first.api_key_id is not None
    cache.forget(Revocation.of_keys([first.api_key_id]))
    assert (cache.get("a"), cache.get("b")) == (None, second)
    cache.forget(Revocation.of_project(project))
    assert (cache.get("b"), cache.get("c")) == (None, other)


def test_root_is_never_cached_and_zero_seconds_caches_nothing() -> None:
    cache = KeyCache(30)
    cache.put("root", Principal.root())
    off = KeyCache(0)
    off.put("h", principal())
    assert (cache.get("root"), off.get("h")) == (None, None)


def test_the_oldest_entries_go_first_beyond_the_cap() -> None:
    cache = KeyCache(30, max_entries=2)
    for name in ("a", "b", "c"):
        cache.put(name, principal())
    assert (cache.get("a") is None, cache.get("b") is None, cache.get("c") is None) == (
        True,
        False,
        False,
    )


@asynccontextmanager
async def project_key(database_url: str) -> AsyncIterator[tuple[SessionFactory, uuid.UUID, str]]:
    engine = create_engine(make_settings(database_url))
    sessions = create_session_factory(engine)
    try:
        async with unit_of_work(sessions) as session:
            service = ProjectService(session)
            now = SystemClock().now()
            project = await service.create_project(f"cache-{uuid.uuid4().hex[:8]}", now=now)
            issued = await service.create_api_key(str(project.id), "cached", now=now)
        yield sessions, issued.key.id, issued.secret
    finally:
        await engine.dispose()


async def test_a_key_that_worked_is_not_looked_up_again(database_url: str) -> None:
    async with project_key(database_url) as (sessions, key_id, secret):
        counting = CountingSessions(sessions)
        authenticate = Authenticator(
            counting,  # type: ignore[arg-type]
            None,
            create_failure_throttle(0, None),
            KeyCache(30),
        )
        first = await authenticate(f"Bearer {secret}", "10.0.0.1")
        second = await authenticate(f"Bearer {secret}", "10.0.0.1")
        wrong = await authenticate("Bearer pm_wrong", "10.0.0.1")
        wrong_again = await authenticate("Bearer pm_wrong", "10.0.0.1")
    assert isinstance(first, Principal)
    assert first.api_key_id == key_id
    assert second == first
    assert (wrong, wrong_again) == (None, None)
    # One lookup for the good key, one per attempt for the wrong one (never cached).
    assert counting.opened == 3


async def test_a_revocation_announced_elsewhere_drops_the_key_on_this_instance(
    database_url: str,
) -> None:
    async with project_key(database_url) as (sessions, key_id, secret):
        pubsub = InMemoryPubSub()  # the broker both "instances" share
        cache = KeyCache(30)
        authenticate = Authenticator(sessions, None, create_failure_throttle(0, None), cache)
        watch = RevocationWatch(pubsub, sessions, NoSockets(), caches=[cache])
        watch.start()
        try:
            await asyncio.wait_for(watch.listening.wait(), timeout=10)
            assert isinstance(await authenticate(f"Bearer {secret}", None), Principal)
            # Another instance revokes and announces; this one never saw the mutation.
            async with unit_of_work(sessions) as session:
                await ProjectService(session).revoke_api_key(str(key_id), now=SystemClock().now())
            await announce(pubsub, Revocation.of_keys([key_id]))
            for _ in range(200):
                if len(cache) == 0:
                    break
                await asyncio.sleep(0.05)
            refused = await authenticate(f"Bearer {secret}", None)
        finally:
            await watch.stop()
    assert refused is None


async def test_listening_again_after_a_broker_loss_forgets_every_key(database_url: str) -> None:
    async with project_key(database_url) as (sessions, _key_id, secret):
        cache = KeyCache(30)
        authenticate = Authenticator(sessions, None, create_failure_throttle(0, None), cache)
        assert isinstance(await authenticate(f"Bearer {secret}", None), Principal)
        assert len(cache) == 1
        watch = RevocationWatch(InMemoryPubSub(), sessions, NoSockets(), caches=[cache])
        watch.start()  # (re)subscribing: announcements may have been missed meanwhile
        try:
            await asyncio.wait_for(watch.listening.wait(), timeout=10)
        finally:
            await watch.stop()
    assert len(cache) == 0


async def test_a_revocation_nobody_announced_is_found_within_the_recheck(
    database_url: str,
) -> None:
    """As after `revoke-api-key` from the CLI on a deployment without Redis."""
    async with project_key(database_url) as (sessions, key_id, secret):
        cache = KeyCache(30)
        authenticate = Authenticator(sessions, None, create_failure_throttle(0, None), cache)
        watch = RevocationWatch(
            InMemoryPubSub(), sessions, NoSockets(), caches=[cache], cache_recheck_seconds=0.05
        )
        watch.start()
        try:
            await asyncio.wait_for(watch.listening.wait(), timeout=10)
            assert isinstance(await authenticate(f"Bearer {secret}", None), Principal)
            async with unit_of_work(sessions) as session:
                await ProjectService(session).revoke_api_key(str(key_id), now=SystemClock().now())
            for _ in range(200):
                if len(cache) == 0:
                    break
                await asyncio.sleep(0.05)
            refused = await authenticate(f"Bearer {secret}", None)
        finally:
            await watch.stop()
    assert refused is None
