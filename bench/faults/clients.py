"""The drill's clients: inserters, a manual flusher and subscribers, recording what they saw."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections import Counter
from dataclasses import dataclass

import httpx

from bench.common import GraphQLFailed, graphql
from bench.faults.audit import ClientRecord, change_id
from powermemo_gql.client import AsyncPowermemo
from powermemo_gql.client.errors import PowermemoError
from powermemo_gql.client.subscriptions import Retry
from powermemo_gql.core.global_ids import raw_id

INSERT = """
mutation($input: InsertBlobInput!) {
  insertBlob(input: $input) {
    __typename ... on InsertBlobPayload { blob { id } } ... on Error { code message }
  }
}
"""
FLUSH = """
mutation($userId: ID!) {
  flushBuffer(input: {userId: $userId, wait: true}) {
    __typename ... on FlushBufferPayload { outcome flush { id status } }
    ... on Error { code message }
  }
}
"""
RETRY_FAILED = """
mutation($userId: ID!) {
  retryFailedBuffer(input: {userId: $userId, wait: true}) { __typename }
}
"""
CREATE_USER = """
mutation($id: ID!) { createUser(input: {userId: $id}) { __typename ... on Error { code message } } }
"""
# A subscriber keeps reconnecting through every outage the drill makes (API restarts included).
SUBSCRIBER_RETRY = Retry(attempts=60, backoff=0.3, max_backoff=3.0)


class ResumeCounter(logging.Handler):
    """Counts the client's "profileUpdated(user) dropped ... reconnecting from <cursor>" lines:
    each is one resume with `since`."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.resumes: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if "dropped" in str(record.msg) and isinstance(record.args, tuple) and record.args:
            self.resumes[str(record.args[0])] += 1

    def install(self) -> None:
        client_log = logging.getLogger("powermemo_gql.client.subscriptions")
        client_log.setLevel(logging.INFO)
        client_log.propagate = False  # counted, not printed
        client_log.addHandler(self)


@dataclass
class Clients:
    urls: list[str]  # the API instances' /graphql
    api_key: str
    users: list[str]
    record: ClientRecord
    seed: int = 7

    def __post_init__(self) -> None:
        self.stop = asyncio.Event()
        self._keys = itertools.count()
        self._random = random.Random(self.seed)  # noqa: S311 - load, not cryptography
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(20.0))
        self.errors: dict[str, int] = {}

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(self, url: str, query: str, **variables: object) -> dict[str, object]:
        return await graphql(self._http, url, self.api_key, query, **variables)

    async def create_users(self) -> None:
        for user in self.users:
            await self.call(self.urls[0], CREATE_USER, id=user)

    async def insert(self, url: str, user: str, prefix: str = "k") -> bool:
        """One chat insert with a unique key in its fields; acknowledged or not."""
        key = f"{prefix}{next(self._keys)}"
        text = f"Today ({key}) I went to the market, bought apples and talked about jazz music."
        blob = {
            "chat": {
                "messages": [
                    {"role": "USER", "content": text},
                    {"role": "ASSISTANT", "content": "Sounds like a nice day."},
                ]
            }
        }
        try:
            data = await self.call(
                url, INSERT, input={"userId": user, "blob": blob, "fields": {"drill_key": key}}
            )
        except (GraphQLFailed, httpx.HTTPError) as exc:
            self.record.unacked.add(key)
            name = type(exc).__name__
            self.errors[name] = self.errors.get(name, 0) + 1
            return False
        result = data["insertBlob"]
        assert isinstance(result, dict)
        if result["__typename"] != "InsertBlobPayload":
            self.record.unacked.add(key)
            return False
        # The API answers global ids; the audit compares with the rows' own ids.
        self.record.acked[key] = raw_id(result["blob"]["id"], "Blob", "blob.id")
        return True

    async def probe(self) -> bool:
        """An insert through every API instance succeeds (the probes count as inserts too)."""
        results = [await self.insert(url, self.users[0], prefix="probe") for url in self.urls]
        return all(results)

    async def inserter(self, number: int) -> None:
        for n in itertools.count():
            if self.stop.is_set():
                return
            url = self.urls[(n + number) % len(self.urls)]
            await self.insert(url, self._random.choice(self.users))
            await asyncio.sleep(0.15)

    async def flush(self, url: str, user: str) -> None:
        # The drill kills servers: a flush request may die with them.
        with contextlib.suppress(GraphQLFailed, httpx.HTTPError):
            await self.call(url, FLUSH, userId=user)

    async def flusher(self) -> None:
        """flushBuffer(wait: true) on the API instances, now and then."""
        for n in itertools.count():
            if self.stop.is_set():
                return
            await self.flush(self.urls[n % len(self.urls)], self._random.choice(self.users))
            await asyncio.sleep(2.0)

    async def drain(self) -> None:
        """With a healthy LLM: retry failed items and flush what is idle, for every user."""
        for user in self.users:
            with contextlib.suppress(GraphQLFailed, httpx.HTTPError):
                await self.call(self.urls[0], RETRY_FAILED, userId=user)
            await self.flush(self.urls[0], user)

    async def subscriber(self, base_url: str, user: str, started: asyncio.Event) -> None:
        """profileUpdated(user), resumed with `since` after every drop, until stopped."""
        received = self.record.received.setdefault(user, [])
        async with AsyncPowermemo(base_url, self.api_key, retry=SUBSCRIBER_RETRY) as client:
            updates = client.profile_updates(user)
            self.record.start_ids[user] = change_id(await updates.start())
            started.set()
            while not self.stop.is_set():
                try:
                    async for change in updates:
                        received.append(change_id(change.cursor))
                except PowermemoError:
                    # Out of reconnections: resume again from the last cursor received.
                    self.errors["subscriber gave up"] = self.errors.get("subscriber gave up", 0) + 1
                    updates = client.profile_updates(user, since=updates.cursor)
                    await asyncio.sleep(1.0)
