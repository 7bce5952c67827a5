"""What the server holds for its lifetime, built from settings in the app lifespan."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from powermemo_gql.changes.feed import Feed
from powermemo_gql.core.clock import Clock, SystemClock
from powermemo_gql.core.db import (
    SessionFactory,
    create_engine,
    create_probe_engine,
    create_session_factory,
    pool_exhausted,
)
from powermemo_gql.core.pubsub import PubSub, RedisTimeouts, create_pubsub
from powermemo_gql.core.ratelimit import RateLimiter, create_rate_limiter
from powermemo_gql.memory.client import OpenAILLMClient
from powermemo_gql.memory.deps import MemoryDeps
from powermemo_gql.memory.flush import Flusher
from powermemo_gql.memory.importer import ProfileImporter
from powermemo_gql.observability.logs import StateChanges, reason_of
from powermemo_gql.observability.metrics import Metrics
from powermemo_gql.projects.key_cache import KeyCache
from powermemo_gql.recall.embeddings import Embedder, create_embedder
from powermemo_gql.recall.index import Indexer
from powermemo_gql.recall.query_cache import CachedQueryEmbedder
from powermemo_gql.recall.vectors import VectorCache
from powermemo_gql.settings import Settings

logger = logging.getLogger(__name__)

# busy: the database answers but every request-pool connection is in use (still ready).
DatabaseStatus = Literal["ok", "busy", "down"]


@dataclass
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    pubsub: PubSub
    llm: OpenAILLMClient
    embedder: Embedder
    feed: Feed
    flusher: Flusher
    importer: ProfileImporter
    rate_limiter: RateLimiter
    metrics: Metrics
    clock: Clock
    indexer: Indexer
    # Readiness checks connect here, never through the request pool.
    probe_engine: AsyncEngine
    # API keys that worked lately (projects/key_cache.py); revocations drop theirs.
    key_cache: KeyCache
    # The users' vectors search compares, kept between requests (recall/vectors.py).
    vectors: VectorCache = field(default_factory=VectorCache)
    started_at: float = field(default_factory=time.monotonic)
    # The last answer of the LLM endpoint and when it was asked: readiness probes come often.
    _llm_checked: tuple[float, bool] = (float("-inf"), False)
    _database_state: StateChanges = field(
        default_factory=lambda: StateChanges(logger, "the database (readiness probe)")
    )

    @classmethod
    def create(
        cls, settings: Settings, embedder: Embedder | None = None, clock: Clock | None = None
    ) -> Resources:
        """`embedder`, `clock`: ones given by a test, else the configured provider and the
        system clock. Raises SettingsError when the embedding provider cannot be used as
        configured."""
        metrics = Metrics()
        clock = clock or SystemClock()
        # First: a configuration error then leaves nothing open behind it.
        if embedder is None:
            embedder = create_embedder(settings, metrics)
            if settings.embedding_query_cache_size and embedder.enabled:
                embedder = CachedQueryEmbedder(embedder, settings.embedding_query_cache_size)
        engine = create_engine(settings)
        sessions = create_session_factory(engine)
        llm = OpenAILLMClient(settings, metrics)
        pubsub = create_pubsub(
            settings.redis_url,
            RedisTimeouts(
                settings.redis_connect_timeout, settings.redis_timeout, settings.redis_ping_interval
            ),
        )
        feed = Feed(sessions, pubsub, settings.feed_catch_up_seconds)
        indexer = Indexer(sessions, embedder, clock)
        feed.listeners.append(indexer.poke)  # every committed memory write gets indexed
        memory = MemoryDeps(sessions, llm, feed, settings, clock, metrics)
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            pubsub=pubsub,
            llm=llm,
            embedder=embedder,
            feed=feed,
            flusher=Flusher(memory),
            importer=ProfileImporter(memory),
            rate_limiter=create_rate_limiter(
                settings.rate_limit_per_minute, settings.redis_url, settings.redis_timeout
            ),
            metrics=metrics,
            clock=clock,
            indexer=indexer,
            probe_engine=create_probe_engine(settings),
            key_cache=KeyCache(settings.api_key_cache_seconds),
        )

    async def database_status(self) -> DatabaseStatus:
        timeout = self.settings.readiness_timeout
        try:
            # The driver's own timeouts come first; this bounds whatever they do not cover.
            async with asyncio.timeout(timeout + 1):
                async with self.probe_engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means "not ready"
            self._database_state.report(False, reason_of(exc))
            return "down"
        self._database_state.report(True)
        return "busy" if pool_exhausted(self.engine) else "ok"

    async def pubsub_ok(self) -> bool:
        try:
            async with asyncio.timeout(self.settings.readiness_timeout):
                return await self.pubsub.ping()
        except TimeoutError:
            # /readyz says so; the outage itself is logged once, by the broker.
            logger.debug("the pub/sub broker did not answer a ping in time")
            return False

    async def llm_ok(self, max_age: float = 10.0) -> bool:
        """The last answer of the LLM endpoint's ping, asked again once `max_age` seconds
        (of the injected clock) have passed."""
        checked_at, answer = self._llm_checked
        now = self.clock.now().timestamp()
        if now - checked_at > max_age:
            answer = await self.llm.ping()
            self._llm_checked = (now, answer)
        return answer

    async def close(self) -> None:
        await self.flusher.close()
        await self.indexer.close()
        await self.rate_limiter.close()
        await self.llm.close()
        await self.embedder.close()
        await self.feed.close()
        await self.pubsub.close()
        await self.engine.dispose()
        await self.probe_engine.dispose()
