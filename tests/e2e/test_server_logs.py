"""The logs of `powermemo-gql serve` as an operator reads them."""

from __future__ import annotations

import httpx

from tests.e2e.test_cli import ServerFactory, _env, server_factory
from tests.support import ROOT_TOKEN

__all__ = ["server_factory"]  # the fixture, shared with test_cli


def test_served_access_log_hides_query_strings_and_client_mistakes_are_quiet(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(
        _env(POWERMEMO_ROOT_TOKEN=ROOT_TOKEN, POWERMEMO_LLM_BASE_URL="http://127.0.0.1:9/v1")
    )
    assert httpx.get(f"{server.url}/dashboard?key=pm_leaked-secret", timeout=5).status_code == 200
    httpx.get(f"{server.url}/healthz?token=also-secret&x=1", timeout=5)
    assert server.graphql(ROOT_TOKEN, "{ nope }").status_code in (200, 400)
    assert server.graphql("pm_wrong", "{ viewer { isRoot } }").status_code == 401
    output = server.stop()
    assert "GET /dashboard?key=*** HTTP/1.1" in output
    assert "GET /healthz?token=***&x=*** HTTP/1.1" in output
    assert "leaked-secret" not in output
    assert "also-secret" not in output
    assert "request error: GRAPHQL_ERROR" in output or "request error:" in output
    assert "Traceback" not in output
