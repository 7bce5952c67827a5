"""No "Did you mean ...?" in production, whatever was misspelt, over HTTP and websockets; the
error still names what was wrong. Development keeps the suggestions."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import websockets
from asgi_lifespan import LifespanManager

from powermemo_gql.app import create_app
from tests.conftest import make_settings
from tests.live import live_server
from tests.support import ROOT_TOKEN, Api, ProjectHandle, create_project

USERS = "users(first: 1, orderBy: $order) { nodes { id } }"
# kind -> (document, variables, the misspelt name the error must still mention)
MISSPELT: dict[str, tuple[str, dict[str, Any], str]] = {
    "field": ("{ helth { ok } }", {}, "helth"),
    "argument": ("{ users(frist: 1) { nodes { id } } }", {}, "frist"),
    "type of a variable": (
        "query($order: UserOrdr) { users(orderBy: $order) { nodes { id } } }",
        {},
        "UserOrdr",
    ),
    "type of a fragment": ("{ ... on Querry { health { ok } } }", {}, "Querry"),
    "enum value": (
        "{ users(orderBy: {field: CREATED_A}) { nodes { id } } }",
        {},
        "CREATED_A",
    ),
    "input field": ("{ users(orderBy: {feld: ID}) { nodes { id } } }", {}, "feld"),
    "enum value in a variable": (
        f"query($order: UserOrder) {{ {USERS} }}",
        {"order": {"field": "CREATED_A"}},
        "CREATED_A",
    ),
    "input field in a variable": (
        f"query($order: UserOrder) {{ {USERS} }}",
        {"order": {"feld": "ID"}},
        "feld",
    ),
}


@asynccontextmanager
async def _project(database_url: str, mode: str) -> AsyncIterator[ProjectHandle]:
    app = create_app(make_settings(database_url, mode=mode))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        yield await create_project(app, Api(app, ROOT_TOKEN), uuid.uuid4().hex)


def _messages(answer: dict[str, Any]) -> str:
    return " ".join(e["message"] for e in answer.get("errors", []))


@pytest.mark.parametrize("kind", list(MISSPELT))
async def test_suggestions_only_in_development(database_url: str, kind: str) -> None:
    document, variables, name = MISSPELT[kind]
    payload = {"query": document, "variables": variables}
    async with _project(database_url, "development") as dev:
        developing = _messages((await dev.api.post(payload)).json())
    async with _project(database_url, "production") as prod:
        producing = _messages((await prod.api.post(payload)).json())
    assert "Did you mean" in developing  # the case is one graphql-core would suggest for
    assert name in producing
    assert "Did you mean" not in producing


async def _over_websocket(url: str, key: str, cases: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Each document as a graphql-transport-ws operation: the text of its errors."""
    texts = []
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}
        await socket.send(json.dumps(init))
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        for number, (document, variables) in enumerate(cases):
            payload = {"query": document, "variables": variables}
            await socket.send(
                json.dumps({"id": str(number), "type": "subscribe", "payload": payload})
            )
            errors: list[dict[str, Any]] = []
            while True:  # "next" (then "complete"), or "error" alone, ends the operation
                message = json.loads(await asyncio.wait_for(socket.recv(), timeout=10))
                if message["type"] == "error":
                    errors = message["payload"]
                    break
                if message["type"] == "next":
                    errors = message["payload"].get("errors", [])
                if message["type"] == "complete":
                    break
            texts.append(" ".join(e["message"] for e in errors))
    return texts


async def test_no_suggestions_over_websockets_in_production(database_url: str) -> None:
    cases = [(document, variables) for document, variables, _ in MISSPELT.values()]
    cases.append(('subscription { profileUpdated(usrId: "alice") { kind } }', {}))
    with live_server(make_settings(database_url, mode="production")) as server:
        project = await create_project(server.http_url, Api(server.http_url, ROOT_TOKEN), "sockets")
        texts = await _over_websocket(server.ws_url, project.api_key, cases)
    names = [name for _, _, name in MISSPELT.values()] + ["usrId"]
    for text, name in zip(texts, names, strict=True):
        assert name in text
        assert "Did you mean" not in text, text
