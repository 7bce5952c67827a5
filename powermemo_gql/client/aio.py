"""AsyncPowermemo: the asyncio client."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from gql import GraphQLRequest
from gql.client import AsyncClientSession

from powermemo_gql.client import operations, recall_ops
from powermemo_gql.client.connection import (
    CONNECT_TIMEOUT,
    DEFAULT_TIMEOUT,
    AsyncClosing,
    document_request,
    endpoints,
    http_client,
    translated,
)
from powermemo_gql.client.models import (
    Blob,
    ChangeKind,
    Context,
    Event,
    Flush,
    FlushResult,
    ProfileChange,
    ProfileEntry,
    SearchResults,
    User,
)
from powermemo_gql.client.ops_base import ChatMessage, Operation
from powermemo_gql.client.subscriptions import ProfileUpdates, Retry
from powermemo_gql.client.transport import AsyncHTTPTransport

T = TypeVar("T")


class AsyncPowermemo(AsyncClosing):
    """A Powermemo server, for one project's API key.

    ```python
    async with AsyncPowermemo("http://127.0.0.1:8019", "pm_...") as memory:
        await memory.create_user("alice")
    ```

    `url` is the server's base URL or its `/graphql` endpoint. Every document is validated
    against the bundled schema before it is sent (`validate=False` skips that). `timeout` is
    the longest a request may take, in seconds; `flush(wait=True)` waits for the LLM.
    Without `async with`, the client connects on first use; call `aclose()` when done.
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        validate: bool = True,
        retry: Retry | None = None,
    ) -> None:
        self.url, self.ws_url = endpoints(url)
        self._api_key = api_key
        self._timeout = timeout
        self._validate = validate
        self._retry = retry or Retry()
        self._client = http_client(AsyncHTTPTransport, self.url, api_key, timeout, validate)
        self._session: AsyncClientSession | None = None
        self._connecting = asyncio.Lock()

    async def __aenter__(self) -> AsyncPowermemo:
        await self._connected()
        return self

    async def aclose(self) -> None:
        if self._session is not None:
            self._session = None
            await self._client.close_async()  # type: ignore[no-untyped-call]  # gql: unannotated

    async def _connected(self) -> AsyncClientSession:
        async with self._connecting:
            if self._session is None:
                session = await self._client.connect_async()  # type: ignore[no-untyped-call]  # gql
                assert isinstance(session, AsyncClientSession)  # not the reconnecting kind
                self._session = session
            return self._session

    async def _run(self, operation: Operation[T]) -> T:
        data = await self._data(operation.request)
        return operation.parse(data)

    async def _data(self, request: GraphQLRequest) -> dict[str, Any]:
        session = await self._connected()
        with translated():
            return await session.execute(request)

    async def execute(
        self, document: str, variables: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Run any document; returns its `data`. Top-level errors raise typed exceptions;
        result-union error members are returned as data, for you to read."""
        request = document_request(document, variables)
        return await self._data(request)

    # Users

    async def create_user(
        self, id: str | None = None, data: Mapping[str, Any] | None = None
    ) -> User:
        """Create a user (`id` generated when None). AlreadyExistsError, InvalidInputError."""
        return await self._run(operations.create_user(id, data))

    async def get_user(self, id: str) -> User | None:
        """The user, or None when the project has no user with this id."""
        return await self._run(operations.get_user(id))

    async def users(
        self, first: int | None = None, after: str | None = None, search: str | None = None
    ) -> tuple[list[User], str | None]:
        """A page of the project's users (oldest first) and the cursor of the next page, or
        None on the last; `search`: a case-insensitive part of the id."""
        return await self._run(operations.list_users(first, after, search))

    async def update_user(self, id: str, data: Mapping[str, Any]) -> User:
        """Replace the user's data. NotFoundError, InvalidInputError."""
        return await self._run(operations.update_user(id, data))

    async def delete_user(self, id: str) -> None:
        """Delete the user and all their memory. NotFoundError."""
        await self._run(operations.delete_user(id))

    # Blobs

    async def insert_chat(
        self,
        user_id: str,
        messages: Sequence[ChatMessage],
        *,
        fields: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Blob:
        """Store one chat: `[("user", "Hi"), ("assistant", "Hello")]`, or dicts with `role`,
        `content` and optional `alias` and `created_at` (a datetime with a timezone).

        With `idempotency_key` (1-128 characters, unique per user), retrying after a lost
        answer stores nothing twice: the blob first stored with that key is returned."""
        return await self._run(operations.insert_chat(user_id, messages, fields, idempotency_key))

    async def insert_document(
        self,
        user_id: str,
        content: str,
        title: str | None = None,
        *,
        fields: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Blob:
        """Store a document; like a chat, it joins the user's buffer (`idempotency_key`: as
        for `insert_chat`)."""
        return await self._run(
            operations.insert_document(user_id, content, title, fields, idempotency_key)
        )

    # Memory

    async def flush(self, user_id: str, wait: bool = True) -> Flush | None:
        """Turn the user's buffer into memory now. With `wait`, returns the finished Flush;
        None when none ran (`flush_buffer` says why)."""
        return (await self.flush_buffer(user_id, wait)).flush

    async def flush_buffer(self, user_id: str, wait: bool = True) -> FlushResult:
        """Like `flush`, with the outcome: FLUSHED, SCHEDULED, NOTHING_TO_FLUSH, BUSY or
        INTERRUPTED."""
        return await self._run(operations.flush(user_id, wait))

    async def profile(
        self,
        user_id: str,
        topics: Sequence[str] | None = None,
        topk: int | None = None,
        max_tokens: int | None = None,
    ) -> list[ProfileEntry]:
        """The user's profile entries (`topk` / `max_tokens`: the most recently updated)."""
        return await self._run(operations.profile(user_id, topics, topk, max_tokens))

    async def context(
        self,
        user_id: str,
        max_tokens: int = 1000,
        *,
        prefer_topics: Sequence[str] | None = None,
        only_topics: Sequence[str] | None = None,
        profile_event_ratio: float = 0.6,
        include_buffer: bool = False,
        query: str | None = None,
        chats: Sequence[ChatMessage] | None = None,
    ) -> Context:
        """Profile and recent events as one prompt-ready string of at most `max_tokens`."""
        operation = recall_ops.context(
            user_id,
            max_tokens,
            prefer_topics,
            only_topics,
            profile_event_ratio,
            include_buffer,
            query,
            chats,
        )
        return await self._run(operation)

    async def search(
        self,
        user_id: str,
        query: str,
        first: int = 10,
        *,
        kinds: Sequence[str] | None = None,
        topics: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        mode: str = "hybrid",
    ) -> SearchResults:
        """The user's memory ranked by meaning and words (mode hybrid, keyword or vector);
        kinds: profile, event, fact. InvalidInputError names the argument at fault."""
        return await self._run(recall_ops.search(user_id, query, first, kinds, topics, tags, mode))

    async def add_profile_entry(
        self, user_id: str, topic: str, sub_topic: str, content: str
    ) -> ProfileEntry:
        """Add an entry by hand (source: manual). AlreadyExistsError for a taken slot."""
        return await self._run(operations.add_profile_entry(user_id, topic, sub_topic, content))

    async def update_profile_entry(self, id: str, content: str) -> ProfileEntry:
        """Change an entry's content; the old value joins its history."""
        return await self._run(operations.update_profile_entry(id, content))

    async def delete_profile_entry(self, id: str) -> None:
        await self._run(operations.delete_profile_entry(id))

    async def import_profile(self, user_id: str, text: str) -> list[ProfileEntry]:
        """Extract facts from free text (a bio, notes) into the profile (source: import);
        returns the entries added or changed. Waits for the LLM: LLMUnavailableError."""
        return await self._run(operations.import_profile(user_id, text))

    # Changes

    async def events(
        self,
        user_id: str,
        first: int | None = None,
        after: str | None = None,
        search: str | None = None,
    ) -> list[Event]:
        """The user's events, by when they happened, newest first; `search`: every word."""
        return await self._run(recall_ops.events(user_id, first, after, search))

    async def changes_cursor(self, user_id: str) -> str:
        """A cursor at the current end of the user's change feed."""
        return await self._run(operations.changes_cursor(user_id))

    async def changes(
        self, user_id: str, after: str | None = None, first: int | None = None
    ) -> list[ProfileChange]:
        """A page of the change feed, oldest first (at most 100; the server's default 20).
        Page on with `after=page[-1].cursor`."""
        return await self._run(operations.changes(user_id, after, first))

    def profile_updates(
        self,
        user_id: str,
        since: str | None = None,
        *,
        kinds: Sequence[ChangeKind | str] | None = None,
        retry: Retry | None = None,
    ) -> ProfileUpdates:
        """Follow the user's changes live: `async for change in client.profile_updates(...)`.

        With `since` (a change's or `changes_cursor()`'s cursor) the changes after it come
        first. A dropped connection is resumed from the last change received, with bounded
        retries (`retry`, default the client's); ConnectionFailedError when they run out.
        """
        return ProfileUpdates(
            ws_url=self.ws_url,
            api_key=self._api_key,
            user_id=user_id,
            since=since,
            kinds=kinds,
            current_cursor=lambda: self.changes_cursor(user_id),
            retry=retry or self._retry,
            validate=self._validate,
            connect_timeout=CONNECT_TIMEOUT,
        )
