"""The client against a real server on loopback: the live package's fixtures, and a
server that can be stopped and started again on the same port (for reconnections)."""

from __future__ import annotations

from contextlib import AbstractContextManager

from powermemo_gql.settings import Settings

# Fixtures of tests/integration/live, found by pytest under these names.
from tests.integration.live.conftest import live, live_settings, llm, tenant  # noqa: F401
from tests.live import LiveServer, live_server


def server_at(settings: Settings, port: int) -> AbstractContextManager[LiveServer]:
    """A server on a given port, so a restarted server keeps its URL."""
    return live_server(settings, port)
