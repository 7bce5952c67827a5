"""Powermemo: the blocking client, on gql's sync session (no event loop involved)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

from gql import GraphQLRequest
from gql.client import SyncClientSession

from powermemo_gql.client import operations, recall_ops
from powermemo_gql.client.connection import (
    DEFAULT_TIMEOUT,
    document_request,
    endpoints,
    http_client,
    translated,
)
from powermemo_gql.client.models import (
    Blob,
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
from powermemo_gql.client.transport import SyncHTTPTransport

T = TypeVar("T")


class Powermemo:
    """The blocking twin of AsyncPowermemo: the same helpers, arguments and results, minus
    `profile_updates` (subscriptions need asyncio; use AsyncPowermemo for them).

    ```python
    with Powermemo("http://127.0.0.1:8019", "pm_...") as memory:
        memory.create_user("alice")
    ```

    It works in plain scripts and threads, and never touches an event loop.
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        validate: bool = True,
    ) -> None:
        self.url, _ws_url = endpoints(url)
        self._client = http_client(SyncHTTPTransport, self.url, api_key, timeout, validate)
        self._session: SyncClientSession | None = None
        self._connecting = threading.Lock()

    def __enter__(self) -> Powermemo:
        self._connected()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._connecting:
            if self._session is not None:
                self._session = None
                self._client.close_sync()  # type: ignore[no-untyped-call]  # gql: unannotated

    def _connected(self) -> SyncClientSession:
        with self._connecting:
            if self._session is None:
                self._session = self._client.connect_sync()  # type: ignore[no-untyped-call]  # gql
            return self._session

    def _run(self, operation: Operation[T]) -> T:
        return operation.parse(self._data(operation.request))

    def _data(self, request: GraphQLRequest) -> dict[str, Any]:
        session = self._connected()
        with translated():
            return session.execute(request)

    def execute(self, document: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Run any document; returns its `data` (see AsyncPowermemo.execute)."""
        request = document_request(document, variables)
        return self._data(request)

    def create_user(self, id: str | None = None, data: Mapping[str, Any] | None = None) -> User:
        return self._run(operations.create_user(id, data))

    def get_user(self, id: str) -> User | None:
        return self._run(operations.get_user(id))

    def users(
        self, first: int | None = None, after: str | None = None, search: str | None = None
    ) -> tuple[list[User], str | None]:
        """A page of the project's users (oldest first) and the cursor of the next page, or
        None on the last; `search`: a case-insensitive part of the id."""
        return self._run(operations.list_users(first, after, search))

    def update_user(self, id: str, data: Mapping[str, Any]) -> User:
        return self._run(operations.update_user(id, data))

    def delete_user(self, id: str) -> None:
        self._run(operations.delete_user(id))

    def insert_chat(
        self,
        user_id: str,
        messages: Sequence[ChatMessage],
        *,
        fields: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Blob:
        return self._run(operations.insert_chat(user_id, messages, fields, idempotency_key))

    def insert_document(
        self,
        user_id: str,
        content: str,
        title: str | None = None,
        *,
        fields: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Blob:
        return self._run(
            operations.insert_document(user_id, content, title, fields, idempotency_key)
        )

    def flush(self, user_id: str, wait: bool = True) -> Flush | None:
        return self.flush_buffer(user_id, wait).flush

    def flush_buffer(self, user_id: str, wait: bool = True) -> FlushResult:
        return self._run(operations.flush(user_id, wait))

    def profile(
        self,
        user_id: str,
        topics: Sequence[str] | None = None,
        topk: int | None = None,
        max_tokens: int | None = None,
    ) -> list[ProfileEntry]:
        return self._run(operations.profile(user_id, topics, topk, max_tokens))

    def context(
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
        return self._run(operation)

    def search(
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
        return self._run(recall_ops.search(user_id, query, first, kinds, topics, tags, mode))

    def add_profile_entry(
        self, user_id: str, topic: str, sub_topic: str, content: str
    ) -> ProfileEntry:
        return self._run(operations.add_profile_entry(user_id, topic, sub_topic, content))

    def update_profile_entry(self, id: str, content: str) -> ProfileEntry:
        return self._run(operations.update_profile_entry(id, content))

    def delete_profile_entry(self, id: str) -> None:
        self._run(operations.delete_profile_entry(id))

    def import_profile(self, user_id: str, text: str) -> list[ProfileEntry]:
        return self._run(operations.import_profile(user_id, text))

    def events(
        self,
        user_id: str,
        first: int | None = None,
        after: str | None = None,
        search: str | None = None,
    ) -> list[Event]:
        """The user's events, by when they happened, newest first; `search`: every word."""
        return self._run(recall_ops.events(user_id, first, after, search))

    def changes_cursor(self, user_id: str) -> str:
        return self._run(operations.changes_cursor(user_id))

    def changes(
        self, user_id: str, after: str | None = None, first: int | None = None
    ) -> list[ProfileChange]:
        return self._run(operations.changes(user_id, after, first))
