"""The MCP server through the official SDK's own clients: streamable HTTP against a running
server (/mcp), and stdio against a `powermemo-gql mcp` process on the same database."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import mcp_types
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from powermemo_gql.settings import Settings
from tests.conftest import make_settings
from tests.integration.memory.conftest import memory_responder
from tests.live import LiveServer, live_server
from tests.llm_server import ScriptedLLM, running_llm
from tests.support import CREATE_KEY, ROOT_TOKEN, Api, ProjectHandle, create_project

COMMAND = str(Path(sys.executable).parent / "powermemo-gql")
TOOLS = {"remember", "recall", "context", "profile", "forget", "flush"}
CHAT = [
    {"role": "user", "content": "I teach chemistry at a lycée in Lyon."},
    {"role": "assistant", "content": "Chemistry in Lyon, noted."},
]
REVOKE_API_KEY = """
mutation($id: ID!) { revokeApiKey(input: {id: $id}) { __typename } }
"""


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with running_llm() as server:
        server.responder = memory_responder()  # every flush extracts the teacher in Lyon
        yield server


@pytest.fixture
def live_settings(database_url: str, llm: ScriptedLLM) -> Settings:
    return make_settings(
        database_url, llm_base_url=llm.base_url, llm_max_retries=0, background_flushes=False
    )


@pytest.fixture
def live(live_settings: Settings) -> Iterator[LiveServer]:
    with live_server(live_settings) as server:
        yield server


@pytest.fixture
def root(live: LiveServer) -> Api:
    return Api(live.http_url, ROOT_TOKEN)


@pytest.fixture
async def tenant(live: LiveServer, root: Api) -> ProjectHandle:
    return await create_project(live.http_url, root, "mcp-a")


@asynccontextmanager
async def http_session(live: LiveServer, key: str) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as client,
        streamable_http_client(f"{live.http_url}/mcp", http_client=client) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def ok(result: Any) -> dict[str, Any]:
    """The JSON a tool answered, which must not be an error."""
    assert isinstance(result, mcp_types.CallToolResult)
    text = result.content[0]
    assert isinstance(text, mcp_types.TextContent)
    assert not result.is_error, text.text
    data: dict[str, Any] = json.loads(text.text)
    return data


def error(result: Any) -> str:
    """The text of a tool error (never a traceback)."""
    assert isinstance(result, mcp_types.CallToolResult)
    assert result.is_error
    text = result.content[0]
    assert isinstance(text, mcp_types.TextContent)
    assert "Traceback" not in text.text
    return text.text


def refusal_code(raised: BaseException) -> str:
    """Our code in the MCPError the SDK's client raised for a refused HTTP request (inside
    the exception groups of its task groups, when raised while connecting)."""
    while isinstance(raised, BaseExceptionGroup):
        assert len(raised.exceptions) == 1, raised
        raised = raised.exceptions[0]
    assert isinstance(raised, MCPError), raised
    code: str = raised.data["code"]
    return code


async def remember_and_flush(session: ClientSession, user_id: str) -> None:
    remembered = ok(await session.call_tool("remember", {"user_id": user_id, "messages": CHAT}))
    assert remembered["replayed"] is False
    flushed = ok(await session.call_tool("flush", {"user_id": user_id}))
    assert (flushed["outcome"], flushed["status"], flushed["items"]) == ("flushed", "done", 1)


async def test_http_tools_remember_flush_recall_context_forget(
    live: LiveServer, tenant: ProjectHandle
) -> None:
    async with http_session(live, tenant.api_key) as session:
        tools = (await session.list_tools()).tools
        assert {t.name for t in tools} == TOOLS
        for tool in tools:  # written for models: every tool and argument described
            assert len(tool.description or "") > 80, tool.name
            properties = tool.input_schema["properties"]
            assert all(p.get("description") for p in properties.values()), tool.name

        await remember_and_flush(session, "alice")  # remember created alice

        entries = ok(await session.call_tool("profile", {"user_id": "alice"}))["entries"]
        assert {(e["topic"], e["sub_topic"], e["content"]) for e in entries} == {
            ("work", "title", "chemistry teacher"),
            ("contact_info", "city", "Lyon"),
        }
        only_work = ok(await session.call_tool("profile", {"user_id": "alice", "topics": ["work"]}))
        assert [e["topic"] for e in only_work["entries"]] == ["work"]

        hits = ok(await session.call_tool("recall", {"user_id": "alice", "query": "chemistry"}))
        assert any(h.get("content") == "chemistry teacher" for h in hits["hits"])
        assert any(h["kind"] == "event" and "Lyon" in h["text"] for h in hits["hits"])

        packed = ok(
            await session.call_tool(
                "context", {"user_id": "alice", "query": "where does she live", "max_tokens": 200}
            )
        )
        assert "Lyon" in packed["text"]
        assert 0 < packed["tokens"] <= 200
        assert packed["profile_entries"] == 2

        city = next(e for e in entries if e["sub_topic"] == "city")
        forgotten = ok(
            await session.call_tool("forget", {"user_id": "alice", "entry_id": city["entry_id"]})
        )
        assert forgotten["deleted_entry_id"] == city["entry_id"]
        left = ok(await session.call_tool("profile", {"user_id": "alice"}))["entries"]
        assert [e["sub_topic"] for e in left] == ["title"]
        again = error(
            await session.call_tool("forget", {"user_id": "alice", "entry_id": city["entry_id"]})
        )
        assert "NOT_FOUND" in again

        nothing = ok(await session.call_tool("flush", {"user_id": "alice"}))
        assert nothing == {"outcome": "nothing_to_flush"}


async def test_http_tool_errors_name_the_code_and_the_argument(
    live: LiveServer, tenant: ProjectHandle, llm: ScriptedLLM
) -> None:
    async with http_session(live, tenant.api_key) as session:
        unknown = error(await session.call_tool("profile", {"user_id": "nobody"}))
        assert "NOT_FOUND" in unknown
        assert "nobody" in unknown
        ok(await session.call_tool("remember", {"user_id": "bob", "messages": CHAT}))
        limit = error(
            await session.call_tool("recall", {"user_id": "bob", "query": "x", "limit": 0})
        )
        assert "INVALID_INPUT: limit" in limit
        budget = error(await session.call_tool("context", {"user_id": "bob", "max_tokens": 0}))
        assert "INVALID_INPUT: max_tokens" in budget
        empty = error(await session.call_tool("remember", {"user_id": "bob", "messages": []}))
        assert "INVALID_INPUT: messages" in empty
        bad_id = error(
            await session.call_tool("remember", {"user_id": "no spaces", "messages": CHAT})
        )
        assert "INVALID_INPUT: user_id" in bad_id
        blank = error(
            await session.call_tool(
                "remember",
                {"user_id": "bob", "messages": [{"role": "user", "content": ""}]},
            )
        )
        assert "INVALID_INPUT: messages[0].content" in blank
        long_key = error(
            await session.call_tool(
                "remember", {"user_id": "bob", "messages": CHAT, "idempotency_key": "k" * 200}
            )
        )
        assert "INVALID_INPUT: idempotency_key" in long_key
        bad_entry = error(
            await session.call_tool("forget", {"user_id": "bob", "entry_id": "not-an-id"})
        )
        assert "INVALID_INPUT: entry_id" in bad_entry
        blob_id = ok(await session.call_tool("remember", {"user_id": "bob", "messages": CHAT}))[
            "blob_id"
        ]
        no_entry = error(  # a global id, of a blob: no such entry
            await session.call_tool("forget", {"user_id": "bob", "entry_id": blob_id})
        )
        assert "NOT_FOUND" in no_entry
        assert blob_id in no_entry
        missing = error(await session.call_tool("recall", {"user_id": "bob"}))
        assert "query" in missing  # the SDK's own argument check names the field

        llm.responder = None  # the LLM fails: a failed flush, reported, not a tool error
        failed = ok(await session.call_tool("flush", {"user_id": "bob"}))
        assert (failed["outcome"], failed["status"]) == ("flushed", "failed")
        assert failed["error"]


async def test_http_keys_of_another_project_see_nothing(
    live: LiveServer, root: Api, tenant: ProjectHandle
) -> None:
    other = await create_project(live.http_url, root, "mcp-b")
    async with http_session(live, tenant.api_key) as session:
        await remember_and_flush(session, "alice")
        entry = ok(await session.call_tool("profile", {"user_id": "alice"}))["entries"][0]
    async with http_session(live, other.api_key) as session:
        assert "NOT_FOUND" in error(await session.call_tool("profile", {"user_id": "alice"}))
        stolen = error(
            await session.call_tool("forget", {"user_id": "alice", "entry_id": entry["entry_id"]})
        )
        assert "NOT_FOUND" in stolen
        # B's own alice is another person.
        ok(await session.call_tool("remember", {"user_id": "alice", "messages": CHAT}))
        assert ok(await session.call_tool("profile", {"user_id": "alice"}))["entries"] == []
    async with http_session(live, tenant.api_key) as session:
        kept = ok(await session.call_tool("profile", {"user_id": "alice"}))["entries"]
        assert entry["entry_id"] in {e["entry_id"] for e in kept}


async def test_http_refuses_bad_revoked_and_root_tokens(
    live: LiveServer, root: Api, tenant: ProjectHandle
) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    headers = {"Accept": "application/json, text/event-stream"}

    def post(token: str | None) -> httpx.Response:
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.post(
            f"{live.http_url}/mcp", json=initialize, headers=headers | auth, timeout=10
        )

    for token, status, code in (
        (None, 401, "UNAUTHENTICATED"),
        ("pm_not-a-key", 401, "UNAUTHENTICATED"),
        (ROOT_TOKEN, 403, "FORBIDDEN"),
    ):
        refused = post(token)
        assert refused.status_code == status
        assert refused.json()["error"]["data"]["code"] == code
    assert post(tenant.api_key).status_code == 200

    with pytest.raises((MCPError, ExceptionGroup)) as refused_session:
        async with http_session(live, "pm_not-a-key"):
            pass
    assert refusal_code(refused_session.value) == "UNAUTHENTICATED"

    issued = await root.ok(CREATE_KEY, projectId=tenant.id)
    key = issued["createApiKey"]["secret"]
    async with http_session(live, key) as session:
        ok(await session.call_tool("remember", {"user_id": "alice", "messages": CHAT}))
        await root.ok(REVOKE_API_KEY, id=issued["createApiKey"]["apiKey"]["id"])
        with pytest.raises((MCPError, ExceptionGroup)) as refused_call:  # at the next request
            await session.call_tool("profile", {"user_id": "alice"})
    assert refusal_code(refused_call.value) == "UNAUTHENTICATED"
    assert post(key).status_code == 401


def test_http_requests_count_against_the_keys_rate_limit(database_url: str) -> None:
    settings = make_settings(database_url, rate_limit_per_minute=3)
    with live_server(settings) as live:
        # The root token that creates the project is not rate-limited; the key is.
        tenant = asyncio.run(create_project(live.http_url, Api(live.http_url, ROOT_TOKEN), "rl"))
        responses = [
            httpx.post(
                f"{live.http_url}/mcp",
                json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                headers={
                    "Authorization": f"Bearer {tenant.api_key}",
                    "Accept": "application/json, text/event-stream",
                },
                timeout=10,
            )
            for _ in range(4)
        ]
    assert [r.status_code == 429 for r in responses] == [False, False, False, True]
    assert responses[3].json()["error"]["data"]["code"] == "RATE_LIMITED"
    assert int(responses[3].headers["Retry-After"]) > 0


def _stdio_env(settings: Settings, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWERMEMO_")}
    env |= {
        "POWERMEMO_DATABASE_URL": settings.database_url,
        "POWERMEMO_LLM_BASE_URL": settings.llm_base_url or "",
        "POWERMEMO_LLM_MAX_RETRIES": "0",
        "POWERMEMO_MIGRATE_ON_STARTUP": "false",
    }
    if settings.redis_url:
        env["POWERMEMO_REDIS_URL"] = settings.redis_url
    return env | values


async def test_stdio_tools_on_the_configured_database(
    live: LiveServer, live_settings: Settings, tenant: ProjectHandle, tmp_path: Path
) -> None:
    params = StdioServerParameters(
        command=COMMAND,
        args=["mcp"],
        env=_stdio_env(live_settings, POWERMEMO_API_KEY=tenant.api_key),
        cwd=tmp_path,
    )
    async with (
        stdio_client(params) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        assert {t.name for t in (await session.list_tools()).tools} == TOOLS
        await remember_and_flush(session, "carol")
        entries = ok(await session.call_tool("profile", {"user_id": "carol"}))["entries"]
        assert {e["content"] for e in entries} == {"chemistry teacher", "Lyon"}
        packed = ok(await session.call_tool("context", {"user_id": "carol"}))
        assert "chemistry teacher" in packed["text"]
        assert "NOT_FOUND" in error(await session.call_tool("profile", {"user_id": "nobody"}))
    # What the stdio process wrote is the project's memory, seen over GraphQL too.
    seen = await tenant.api.ok('{ user(userId: "carol") { profile { content } } }')
    assert {e["content"] for e in seen["user"]["profile"]} == {"chemistry teacher", "Lyon"}


def test_stdio_refuses_a_missing_or_unknown_key(live_settings: Settings, tmp_path: Path) -> None:
    # (The root token is no project's key: it is looked up as one, and unknown.)
    for extra in ({}, {"POWERMEMO_API_KEY": "pm_not-a-key"}):
        result = subprocess.run(
            [COMMAND, "mcp"],
            env=_stdio_env(live_settings, **extra),
            cwd=tmp_path,
            input="",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2, result.stderr
        assert "key" in result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout == ""  # stdout belongs to the protocol
