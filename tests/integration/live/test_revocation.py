"""A revoked key's open websockets close at once (4403), and what runs on them stops."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.conftest import make_settings
from tests.integration.live.sockets import (
    REVOKE,
    closed_with,
    connect,
    init,
    issue_key,
    ready,
    still_open,
    subscribe,
)
from tests.live import LiveServer, live_server
from tests.support import ROOT_TOKEN, Api, ProjectHandle, create_project


@pytest.fixture
def in_process(database_url: str) -> Iterator[LiveServer]:
    """One instance with the in-process broker (no Redis)."""
    with live_server(make_settings(database_url, redis_url=None)) as server:
        yield server


@pytest.fixture
async def project(in_process: LiveServer) -> ProjectHandle:
    root = Api(in_process.http_url, ROOT_TOKEN)
    handle = await create_project(in_process.http_url, root, "revocation")
    await handle.api.ok('mutation { createUser(input: {userId: "alice"}) { __typename } }')
    return handle


async def test_revoking_a_key_closes_its_open_websocket_with_4403(
    in_process: LiveServer, project: ProjectHandle
) -> None:
    root = Api(in_process.http_url, ROOT_TOKEN)
    key_id, secret = await issue_key(root, project)
    socket = await ready(in_process.ws_url, secret)
    await subscribe(socket, "live")  # an operation running on the socket
    assert await still_open(socket)

    await root.ok(REVOKE, id=key_id)

    assert await closed_with(socket) == (4403, "API key revoked")


async def test_revocation_leaves_the_sockets_of_other_keys_open(
    in_process: LiveServer, project: ProjectHandle
) -> None:
    root = Api(in_process.http_url, ROOT_TOKEN)
    key_id, secret = await issue_key(root, project)
    doomed = await ready(in_process.ws_url, secret)
    kept = await ready(in_process.ws_url, project.api_key)

    await root.ok(REVOKE, id=key_id)

    assert (await closed_with(doomed))[0] == 4403
    assert await still_open(kept)
    await kept.close()


async def test_a_revoked_key_cannot_open_a_new_websocket(
    in_process: LiveServer, project: ProjectHandle
) -> None:
    root = Api(in_process.http_url, ROOT_TOKEN)
    key_id, secret = await issue_key(root, project)
    await root.ok(REVOKE, id=key_id)

    socket = await connect(in_process.ws_url)
    assert await init(socket, secret) is None
    assert (await closed_with(socket))[0] == 4403


async def test_the_socket_closes_promptly_not_at_the_periodic_recheck(
    in_process: LiveServer, project: ProjectHandle
) -> None:
    root = Api(in_process.http_url, ROOT_TOKEN)
    key_id, secret = await issue_key(root, project)
    socket = await ready(in_process.ws_url, secret)
    await root.ok(REVOKE, id=key_id)  # answered after the announcement is published

    started = time.perf_counter()
    code, _ = await closed_with(socket)
    # "At once": a generous bound, yet far below the periodic recheck (60 s).
    assert code == 4403
    assert time.perf_counter() - started < 5
