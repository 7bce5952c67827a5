"""The MCP server (official `mcp` SDK): six memory tools with descriptions written for
models. The same server answers over stdio (`powermemo-gql mcp`, one project's key given
at start) and over streamable HTTP at /mcp (each request's bearer key picks the project)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import Field

from powermemo_gql import __version__
from powermemo_gql.errors import DomainError
from powermemo_gql.mcp.http import PROJECT_SCOPE_KEY
from powermemo_gql.mcp.tools import MemoryTools, Message, tool_error
from powermemo_gql.memory.context import MAX_CONTEXT_TOKENS
from powermemo_gql.recall.search import MAX_FIRST, MAX_QUERY_CHARS
from powermemo_gql.resources import Resources

INSTRUCTIONS = (
    "Long-term memory about the people you talk with. Call `context` at the start of a turn "
    "to get what is known about the user, relevant to what they said; call `remember` with "
    "the turn's messages afterwards. Memory is written by `flush` (or later, in the "
    "background), not at once: `profile` and `recall` show what is in memory now. "
    "user_id is your own id for the person (e.g. 'alice' or an account id)."
)

UserId = Annotated[
    str,
    Field(
        description="Your id for the person (1-128 letters, digits and . _ : @ -), e.g. 'alice'."
    ),
]

T = TypeVar("T")


def _from_request(ctx: Context) -> uuid.UUID:
    """The project /mcp authenticated this HTTP request for."""
    request: Any = ctx.request_context.request
    project: uuid.UUID = request.scope[PROJECT_SCOPE_KEY]
    return project


def _quietly_built() -> MCPServer:
    """The SDK's server, with the root logger as it was: the constructor calls
    logging.basicConfig, and logging is configured by us (observability/logs.py)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return MCPServer("powermemo", instructions=INSTRUCTIONS, version=__version__)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def build_server(resources: Resources, project_id: uuid.UUID | None = None) -> MCPServer:
    """`project_id`: the one project of a stdio server; None: each HTTP request's own."""

    def project_of(ctx: Context) -> uuid.UUID:
        return project_id if project_id is not None else _from_request(ctx)

    async def call(
        ctx: Context, use: Callable[[MemoryTools], Awaitable[T]]
    ) -> T:  # one error policy for every tool
        try:
            return await use(MemoryTools(resources, project_of(ctx)))
        except DomainError as error:
            raise tool_error(error) from None

    server = _quietly_built()
    writes = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False)
    reads = ToolAnnotations(readOnlyHint=True, openWorldHint=False)

    @server.tool(annotations=writes)
    async def remember(
        user_id: UserId,
        messages: Annotated[
            list[Message], Field(description="The conversation to remember, oldest first.")
        ],
        ctx: Context,
        idempotency_key: Annotated[
            str | None,
            Field(
                description="Optional, 1-128 characters: a retry with the same key stores "
                "nothing twice."
            ),
        ] = None,
    ) -> dict[str, Any]:
        """Remember a conversation with a user: stores the messages in the user's buffer
        (creating the user if new). Facts are extracted from it when the buffer is flushed
        (by `flush`, or in the background), so they are not in `profile` or `recall` at once.
        Send each message once; pass only what was said, not what you looked up."""
        return await call(ctx, lambda t: t.remember(user_id, messages, idempotency_key))

    @server.tool(annotations=reads)
    async def recall(
        user_id: UserId,
        query: Annotated[
            str,
            Field(
                description=f"What to look for, in words (at most {MAX_QUERY_CHARS} characters)."
            ),
        ],
        ctx: Context,
        limit: Annotated[int, Field(description=f"Most hits to return (1-{MAX_FIRST}).")] = 10,
    ) -> dict[str, Any]:
        """Search what is remembered about a user: profile entries (stable facts: topic,
        sub_topic, content), events (summaries of past conversations) and their dated facts,
        best match first. Use it to answer a specific question about the user's past; use
        `context` for general background at the start of a turn."""
        return await call(ctx, lambda t: t.recall(user_id, query, limit))

    @server.tool(annotations=reads)
    async def context(
        user_id: UserId,
        ctx: Context,
        query: Annotated[
            str | None,
            Field(
                description="What the turn is about (e.g. the user's last message): the most "
                "relevant memories are packed first. Omit for the plain profile and recent events."
            ),
        ] = None,
        max_tokens: Annotated[
            int,
            Field(description=f"Budget of the text in tokens (1-{MAX_CONTEXT_TOKENS})."),
        ] = 1000,
    ) -> dict[str, Any]:
        """What is known about a user as one text for your prompt, never over max_tokens:
        their profile and recent events, the ones relevant to `query` first. Call it at the
        start of a turn and put `text` in your context."""
        return await call(ctx, lambda t: t.context(user_id, query, max_tokens))

    @server.tool(annotations=reads)
    async def profile(
        user_id: UserId,
        ctx: Context,
        topics: Annotated[
            list[str] | None,
            Field(description="Only these topics (e.g. ['work', 'interest']); omit for all."),
        ] = None,
    ) -> dict[str, Any]:
        """The user's profile: every remembered fact as an entry (entry_id, topic, sub_topic,
        content), by topic. Use an entry_id with `forget`."""
        return await call(ctx, lambda t: t.profile(user_id, topics))

    @server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True))
    async def forget(
        user_id: UserId,
        entry_id: Annotated[str, Field(description="The entry's id, from `profile` or `recall`.")],
        ctx: Context,
    ) -> dict[str, Any]:
        """Delete one profile entry of the user, e.g. when they ask you to forget it or it
        is wrong. Cannot be undone; the conversation it came from stays stored."""
        return await call(ctx, lambda t: t.forget(user_id, entry_id))

    @server.tool(annotations=writes)
    async def flush(
        user_id: UserId,
        ctx: Context,
        wait: Annotated[
            bool,
            Field(
                description="true: return when memory is written (may take a while: it calls "
                "an LLM); false: start it in the background."
            ),
        ] = True,
    ) -> dict[str, Any]:
        """Turn what `remember` stored for the user into memory now (profile entries and an
        event). outcome: flushed (status done, or failed with error), nothing_to_flush,
        busy (another flush runs; try later), scheduled (wait false) or interrupted."""
        return await call(ctx, lambda t: t.flush(user_id, wait))

    return server
