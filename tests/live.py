"""The app served by a real uvicorn on loopback, in a thread: for websocket tests."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from powermemo_gql.app import create_app
from powermemo_gql.settings import Settings
from tests.support import SCHEMA_SDL


@dataclass(frozen=True)
class LiveServer:
    http_url: str
    ws_url: str
    server: uvicorn.Server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def live_server(settings: Settings, port: int | None = None) -> Iterator[LiveServer]:
    """On a free port, or on `port` (a restarted server keeps its URL)."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("live server did not start")
        time.sleep(0.01)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/graphql", server)
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@asynccontextmanager
async def subscribe(
    ws_url: str, token: str, document: str, **variables: Any
) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
    """A graphql-transport-ws subscription through gql (validated against schema.graphql),
    started at once; yields the `data` values of its results. The iterator raises what
    ended the subscription (e.g. the server closing it)."""
    transport = WebsocketsTransport(
        url=ws_url,
        init_payload={"Authorization": f"Bearer {token}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    async with Client(transport=transport, schema=SCHEMA_SDL) as session:
        request = GraphQLRequest(document, variable_values=variables)
        received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        async def consume() -> None:
            # gql sends "subscribe" only once iterated: iterate from the start.
            async for result in session.subscribe(request):
                await received.put(next(iter(result.values())))

        consumer = asyncio.create_task(consume())

        async def results() -> AsyncIterator[dict[str, Any]]:
            while True:
                getter = asyncio.ensure_future(received.get())
                done, _ = await asyncio.wait({getter, consumer}, return_when="FIRST_COMPLETED")
                if getter in done:
                    yield getter.result()
                    continue
                getter.cancel()
                consumer.result()  # raises what ended the subscription
                return

        try:
            await asyncio.sleep(0.3)  # the server sets the subscription up (its cursor) first
            yield results()
        finally:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await consumer
